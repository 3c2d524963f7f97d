"""SAELens on-disk format (proved against the real sae_lens when installed) and the paper's released layout."""

import json

import pytest
import torch
from safetensors.torch import save_file

from tl_bilinear.analysis import as_dictionary
from tl_bilinear.sae import SAEConfig, TopKSAE, load_paper_sae, load_saelens, save_saelens


def trained_like(d_in=16, d_sae=64, k=4, seed=0):
    sae = TopKSAE(SAEConfig(d_in, d_sae, k, "blocks.1.hook_mlp_out", 1), seed=seed)
    with torch.no_grad():
        sae.b_dec.normal_(std=0.1, generator=torch.Generator().manual_seed(seed))
    return sae


def positive_inputs(sae, n=200):
    """Inputs whose k largest pre-activations are positive (where a ReLU after TopK changes nothing)."""
    x = torch.randn(n, sae.d_in, generator=torch.Generator().manual_seed(1)) * 3
    values, _ = sae.encode_topk(x)
    return x[values.min(-1).values > 0]


def test_saelens_round_trip_without_saelens(tmp_path):
    sae = trained_like()
    save_saelens(sae, tmp_path / "sl")
    config = json.loads((tmp_path / "sl" / "cfg.json").read_text())
    assert (
        config["architecture"] == "topk" and config["k"] == 4 and config["metadata"]["hook_name"] == sae.cfg.hook_name
    )
    back = load_saelens(tmp_path / "sl")
    x = positive_inputs(sae)
    torch.testing.assert_close(back.encode(x), sae.encode(x))
    torch.testing.assert_close(back(x), sae(x))


def test_saelens_unrepresentable(tmp_path):
    sae = trained_like()
    save_saelens(sae, tmp_path / "sl")
    config = json.loads((tmp_path / "sl" / "cfg.json").read_text())
    (tmp_path / "sl" / "cfg.json").write_text(json.dumps({**config, "architecture": "jumprelu"}))
    with pytest.raises(ValueError, match="architecture 'jumprelu' cannot be represented"):
        load_saelens(tmp_path / "sl")
    (tmp_path / "sl" / "cfg.json").write_text(json.dumps({**config, "normalize_activations": "layer_norm"}))
    with pytest.raises(ValueError, match="normalize_activations='layer_norm' cannot be represented"):
        load_saelens(tmp_path / "sl")


def test_against_real_saelens(tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    ours = trained_like()
    save_saelens(ours, tmp_path / "ours")
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path / "ours"))
    x = positive_inputs(ours)
    assert len(x) > 50
    torch.testing.assert_close(theirs.encode(x), ours.encode(x))
    torch.testing.assert_close(theirs.decode(theirs.encode(x)), ours(x))
    # and the reverse: SAELens writes, we read
    cfg = sae_lens.TopKSAEConfig(d_in=16, d_sae=48, k=5, dtype="float32", device="cpu")
    native = sae_lens.TopKSAE(cfg)
    with torch.no_grad():
        native.W_enc.normal_()
        native.W_dec.normal_()
        native.b_dec.normal_()
    native.save_model(str(tmp_path / "theirs"))
    read = load_saelens(tmp_path / "theirs")
    y = torch.randn(300, 16) * 3
    y = y[read.encode_topk(y)[0].min(-1).values > 0]
    torch.testing.assert_close(read.encode(y), native.encode(y))
    torch.testing.assert_close(read(y), native.decode(native.encode(y)))
    # the analysis accepts the SAELens object itself
    torch.testing.assert_close(as_dictionary(native, 16).W_enc, native.W_enc.detach())


def test_paper_layout(tmp_path):
    d_model, d_sae = 12, 48
    g = torch.Generator().manual_seed(3)
    w_enc, w_dec, b_dec = (
        torch.randn(d_sae, d_model, generator=g),
        torch.randn(d_model, d_sae, generator=g),
        torch.randn(d_model, generator=g),
    )
    folder = tmp_path / "snapshot" / "4-mlp-in-x4-k30"
    folder.mkdir(parents=True)
    save_file({"w_enc.weight": w_enc, "w_dec.weight": w_dec, "b_dec": b_dec}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"k": 30, "expansion": 4}))
    sae = load_paper_sae(tmp_path / "snapshot", "4-mlp-in-x4-k30")
    assert (sae.cfg.layer, sae.k, sae.cfg.hook_name) == (4, 30, "blocks.4.ln2.hook_normalized")
    x = torch.randn(5, d_model, generator=g)
    pre = (x - b_dec) @ w_enc.T  # the paper's code: a Linear without bias on x - b_dec
    values, indices = pre.topk(30, dim=-1)
    expected = torch.zeros_like(pre).scatter(-1, indices, values) @ w_dec.T + b_dec
    torch.testing.assert_close(sae(x), expected)
    save_file(
        {"w_enc.weight": w_enc, "w_dec.weight": w_dec[:, :5].contiguous(), "b_dec": b_dec},
        str(folder / "model.safetensors"),
    )
    with pytest.raises(ValueError, match=r"'w_dec.weight' has shape \(12, 5\), expected \(12, 48\)"):
        load_paper_sae(folder)
    with pytest.raises(FileNotFoundError, match="name a folder of the snapshot"):
        load_paper_sae(tmp_path / "snapshot", "3-mlp-out-x4-k30")
    with pytest.raises(FileNotFoundError, match="neither a local directory nor a reachable hub repo"):
        load_paper_sae("tdooms/no-such-repo-here", "4-mlp-in-x4-k30")


def test_open_sae_detects_the_format(tmp_path):
    from tl_bilinear.sae import open_sae, save_sae

    sae = trained_like()
    save_sae(sae, tmp_path / "ours")
    save_saelens(sae, tmp_path / "saelens")
    x = positive_inputs(sae)
    for name in ("ours", "saelens"):
        torch.testing.assert_close(open_sae(tmp_path / name)(x), sae(x))
    with pytest.raises(FileNotFoundError, match="holds no SAE"):
        open_sae(tmp_path)
