"""The TopK SAE, its buffer, trainer, evaluation and directory format, on real tiny models."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tl_bilinear.data import TokenBlockStream
from tl_bilinear.sae import (
    ActivationBuffer,
    SAEConfig,
    SAETrainConfig,
    TopKSAE,
    collect_activations,
    evaluate_sae,
    load_sae,
    resolve_hook,
    save_sae,
    train_sae,
)
from tl_bilinear.sae.io import WEIGHTS_FILE
from tl_bilinear.train import restore_stock_forwards, swap_in_sdpa_forwards
from tl_bilinear.train.sdpa import FastAttention, sdpa_forwards

TINY = dict(batch_size=128, buffer_tokens=1024, model_batch_size=8, eval_batches=2, expansion=2, k=4, lr=3e-3)


def reference_encode(x, W_enc, b_dec, k):
    """The paper's encoder written out: keep the k largest of (x - b_dec) W_enc, with their values."""
    pre = (x - b_dec) @ W_enc
    kth = pre.sort(dim=-1, descending=True).values[..., k - 1 : k]
    return torch.where(pre >= kth, pre, torch.zeros_like(pre))


def validation(model, n=2):
    stream = TokenBlockStream("builtin", model.tokenizer, model.cfg.n_ctx, split="validation")
    batches = stream.batches(8)
    return [next(batches) for _ in range(n)]


def test_encode_decode_match_reference():
    sae = TopKSAE(SAEConfig(d_in=16, d_sae=48, k=5), seed=1, dtype=torch.float64)
    with torch.no_grad():
        sae.b_dec.normal_()
    x = torch.randn(7, 3, 16, dtype=torch.float64)
    f = sae.encode(x)
    torch.testing.assert_close(f, reference_encode(x, sae.W_enc, sae.b_dec, 5))
    assert ((f != 0).sum(-1) == 5).all()
    torch.testing.assert_close(sae(x), f @ sae.W_dec + sae.b_dec)
    torch.testing.assert_close(sae.W_enc, sae.W_dec.T)  # initialised as the decoder's transpose
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(48, dtype=torch.float64))


def test_decoder_gradient_projection_keeps_unit_norm():
    sae = TopKSAE(SAEConfig(d_in=8, d_sae=16, k=3), dtype=torch.float64)
    x = torch.randn(32, 8, dtype=torch.float64)
    (sae(x) - x).square().sum().backward()
    sae.project_decoder_grad_()
    along = (sae.W_dec.grad * sae.W_dec).sum(1)
    assert along.abs().max() < 1e-12
    with torch.no_grad():
        sae.W_dec.add_(torch.randn_like(sae.W_dec))
    sae.normalize_decoder_()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(16, dtype=torch.float64))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="k=40 must be at most d_sae=32"):
        SAEConfig(d_in=8, d_sae=32, k=40)
    with pytest.raises(ValueError, match="d_in=0"):
        SAEConfig(d_in=0, d_sae=32)


def test_identity_sae_recovers_everything(text_model):
    """An SAE with k = d_sae = d_in and W_dec = I reconstructs exactly: VE 1, loss recovered 1."""
    d = text_model.cfg.d_model
    for site in ("mlp_in", "mlp_out"):
        hook = resolve_hook(text_model, 1, site)
        sae = TopKSAE(SAEConfig(d, d, d), dtype=torch.float64)
        with torch.no_grad():
            sae.W_dec.copy_(torch.eye(d))
            sae.W_enc.copy_(torch.eye(d))
        metrics = evaluate_sae(text_model, sae, hook, validation(text_model))
        assert metrics.nmse < 1e-20 and abs(metrics.variance_explained - 1) < 1e-12
        assert abs(metrics.loss_spliced - metrics.loss_clean) < 1e-9
        assert abs(metrics.loss_recovered - 1) < 1e-6


def test_buffer_bounded_shuffled_and_complete(text_model):
    hook = resolve_hook(text_model, 0, "mlp_out")
    blocks = [torch.randint(0, text_model.cfg.d_vocab, (4, text_model.cfg.n_ctx)) for _ in range(6)]
    buffer = ActivationBuffer(text_model, hook, iter(blocks), batch_size=40, capacity=200, skip_first=False)
    batches = list(buffer)
    assert buffer.storage.shape == (200, text_model.cfg.d_model)  # memory stays at capacity
    total = 6 * 4 * text_model.cfg.n_ctx
    assert all(b.shape == (40, text_model.cfg.d_model) for b in batches)
    assert total - 40 < 40 * len(batches) <= total  # everything served once, but a last partial batch
    served = torch.cat(batches)
    _, cache = text_model.run_with_cache(torch.cat(blocks), names_filter=hook)
    rows = cache[hook].reshape(-1, text_model.cfg.d_model).float()
    distance = torch.cdist(served, rows, compute_mode="donot_use_mm_for_euclid_dist")
    assert distance.min(1).values.max() < 1e-5  # every served row is a real activation
    assert len(set(distance[:40].argmin(1).div(text_model.cfg.n_ctx * 4, rounding_mode="floor").tolist())) > 1


def test_bad_hook_lists_close_names(text_model):
    with pytest.raises(ValueError, match="close names: .*blocks.1.hook_mlp_out"):
        resolve_hook(text_model, 1, "blocks.1.hook_mlp_outt")


def test_train_save_load_resume(text_model, tmp_path):
    cfg = SAETrainConfig(layer=1, total_tokens=128 * 6, eval_every=3, save_every=3, **TINY)
    first = train_sae(text_model, cfg, tmp_path / "sae", progress=False)
    assert [r["step"] for r in first.history] == [3, 6]
    assert 0 <= first.dead_fraction <= 1 and first.hook_name == "blocks.1.ln2.hook_normalized"
    loaded = load_sae(tmp_path / "sae")
    torch.testing.assert_close(loaded.W_enc, first.sae.W_enc)
    x = torch.randn(5, text_model.cfg.d_model)
    torch.testing.assert_close(loaded(x), first.sae(x))
    longer = SAETrainConfig(layer=1, total_tokens=128 * 9, eval_every=3, **TINY)
    resumed = train_sae(text_model, longer, tmp_path / "sae", resume=True, progress=False)
    assert [r["step"] for r in resumed.history] == [3, 6, 9]
    meta = json.loads((tmp_path / "sae" / "sae_config.json").read_text())
    assert meta["step"] == 9
    with pytest.raises(ValueError, match="k=4, this run has k=5"):
        train_sae(text_model, SAETrainConfig(layer=1, **{**TINY, "k": 5}), tmp_path / "sae", resume=True)
    train_sae(text_model, cfg, tmp_path / "sae", progress=False)  # a fresh run replaces the old history
    lines = (tmp_path / "sae" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3, 6]


def test_out_dir_refused_before_any_work(text_model, tmp_path, monkeypatch):
    import tl_bilinear.sae.train as sae_train
    from tests.helpers.runs import lock_held_elsewhere
    from tl_bilinear.rundir import RunLocked

    def no_work(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(sae_train, "_start", no_work)
    cfg = SAETrainConfig(layer=1, **TINY)
    run = tmp_path / "lm-run"
    (run / "checkpoint").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="holds a training run"):
        train_sae(text_model, cfg, run, progress=False)
    with lock_held_elsewhere(tmp_path / "sae") as holder, pytest.raises(RunLocked, match=f"pid {holder}"):
        train_sae(text_model, cfg, tmp_path / "sae", progress=False)


def test_training_improves_reconstruction(text_model):
    cfg = SAETrainConfig(layer=1, total_tokens=128 * 30, eval_every=0, **TINY)
    untrained = evaluate_sae(
        text_model, TopKSAE(SAEConfig(32, 64, 4)), resolve_hook(text_model, 1, "mlp_in"), validation(text_model)
    )
    trained = train_sae(text_model, cfg, progress=False).metrics
    assert trained.variance_explained > untrained.variance_explained + 0.1


def test_missing_and_misshaped_tensors(tmp_path):
    sae = TopKSAE(SAEConfig(8, 16, 2))
    save_sae(sae, tmp_path / "s")
    tensors = load_file(str(tmp_path / "s" / WEIGHTS_FILE))
    save_file({**tensors, "W_dec": torch.zeros(16, 9)}, str(tmp_path / "s" / WEIGHTS_FILE))
    with pytest.raises(ValueError, match=r"'W_dec' has shape \(16, 9\), expected \(16, 8\)"):
        load_sae(tmp_path / "s")
    del tensors["b_dec"]
    save_file(tensors, str(tmp_path / "s" / WEIGHTS_FILE))
    with pytest.raises(ValueError, match="no tensor 'b_dec'"):
        load_sae(tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="sae_config.json is missing"):
        load_sae(tmp_path / "nothing")


def test_sdpa_forwards_same_activations_and_classes_restored(text_model):
    tokens = validation(text_model, 1)[0]
    classes = [type(m) for m in text_model.modules()]
    stock = collect_activations(text_model, "blocks.1.hook_mlp_out", tokens)
    with pytest.raises(RuntimeError, match="inside"), sdpa_forwards(text_model):
        assert any(type(m) is FastAttention for m in text_model.modules())
        fast = collect_activations(text_model, "blocks.1.hook_mlp_out", tokens)
        raise RuntimeError("inside")
    assert [type(m) for m in text_model.modules()] == classes
    torch.testing.assert_close(fast, stock, rtol=1e-9, atol=1e-9)  # float64 model
    swap_in_sdpa_forwards(text_model)
    try:
        swapped = [type(m) for m in text_model.modules()]
        train_sae(text_model, SAETrainConfig(layer=1, total_tokens=128 * 2, eval_every=0, **TINY), progress=False)
        assert [type(m) for m in text_model.modules()] == swapped  # a swapped model stays swapped
    finally:
        restore_stock_forwards(text_model)
    train_sae(text_model, SAETrainConfig(layer=1, total_tokens=128 * 2, eval_every=0, **TINY), progress=False)
    assert [type(m) for m in text_model.modules()] == classes
