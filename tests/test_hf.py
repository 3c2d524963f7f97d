"""Hugging Face export/import: our bilinear models are exactly linear-activation Llamas."""

import contextlib
import io
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, LlamaConfig, LlamaForCausalLM

import tl_bilinear
from tl_bilinear.compat import TL4
from tl_bilinear.hf import from_hf, rotary_permutation, to_hf

#: TL 4's native bridge has no MLP biases and exposes the others as read-only views.
NO_BIAS_EDITS = pytest.mark.skipif(TL4, reason="editing biases in place needs a 3.9 HookedTransformer")


def sharp_model(dtype=torch.float32, **overrides):
    """A random 2-layer bilinear model whose attention is sharp (so a rotary mix-up shows)."""
    fields = {**dict(n_layers=2, d_model=32, n_heads=4, n_ctx=32, d_vocab=97, dtype=dtype), **overrides}
    model = tl_bilinear.make_model(tl_bilinear.bilinear_config(**fields), seed=0)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_Q.mul_(4)
            block.attn.W_K.mul_(4)
    return model


def linear_llama(seed=0, **overrides):
    """A random ``LlamaForCausalLM`` with ``hidden_act='linear'`` built by transformers itself."""
    fields = dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        hidden_act="linear",
        max_position_embeddings=32,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**fields, **overrides})).eval()


TOKENS = torch.randint(0, 97, (3, 24), generator=torch.Generator().manual_seed(1))


def test_rotary_permutation():
    assert rotary_permutation(8).tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert rotary_permutation(8, adjacent_pairs=False).tolist() == list(range(8))


def test_export_loads_with_transformers_and_logits_match(tmp_path):
    model = sharp_model()
    to_hf(model, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_act"] == "linear"
    assert config["tie_word_embeddings"] is False and config["rms_norm_eps"] == model.cfg.eps
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert type(hf) is LlamaForCausalLM
    with torch.no_grad():
        ours, theirs = model(TOKENS), hf(TOKENS).logits
    assert (ours - theirs).abs().max() <= 1e-4
    assert ours.std() > 0.1  # logits that differ would show


def test_permutation_is_needed(tmp_path):
    """Without the rotary permutation the exported model is a different model (the test can fail)."""
    model = sharp_model()
    to_hf(model, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    with torch.no_grad():
        for layer, block in enumerate(model.blocks):
            attn = hf.model.layers[layer].self_attn
            for proj, weight in ((attn.q_proj, block.attn.W_Q), (attn.k_proj, block.attn.W_K)):
                proj.weight.copy_(weight.permute(0, 2, 1).reshape(-1, 32))  # adjacent pairs, unpermuted
        assert (model(TOKENS) - hf(TOKENS).logits).abs().max() > 1e-2


@NO_BIAS_EDITS
def test_round_trip_is_bit_exact(tmp_path):
    model = sharp_model()
    with torch.no_grad():  # biases survive too
        model.blocks[0].attn.b_Q.normal_()
        model.blocks[1].mlp.b_out.normal_()
    to_hf(model, tmp_path / "hf")
    back = from_hf(tmp_path / "hf")
    assert back.state_dict().keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    assert not any(p.requires_grad for n, p in back.named_parameters() if ".b_" in n)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    with torch.no_grad():
        assert (hf(TOKENS).logits - model(TOKENS)).abs().max() <= 1e-4
    for field in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "d_vocab", "eps", "act_fn", "dtype"):
        assert getattr(back.cfg, field) == getattr(model.cfg, field), field


def test_from_hf_model_object_and_folded_norms():
    hf = linear_llama(tie_word_embeddings=True)
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    model = from_hf(hf)
    with torch.no_grad():
        assert (model(TOKENS) - hf(TOKENS).logits).abs().max() <= 1e-4
    with pytest.raises(ValueError, match="norm has non-unit weights.*fold_norms=True"):
        from_hf(hf, fold_norms=False)


def test_generate_matches_the_cli(tmp_path, tokenizer_dir, capsys):
    from tests.helpers.cli import run_main

    model = tl_bilinear.load(tl_bilinear.save(text_model_f32(tokenizer_dir), tmp_path / "ckpt"))
    to_hf(model, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    prompt, n_new = "Once upon a time", 12
    args = ("generate", tmp_path / "ckpt", "--prompt", prompt, "-n", 1, "--max-new-tokens", n_new, "--temperature", 0)
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        status, err = run_main(*args, capsys=capsys)
    assert status == 0, err
    cli_text = stdout.getvalue().strip()
    assert cli_text.startswith(prompt) and len(cli_text) > len(prompt)
    ids = model.to_tokens(prompt)
    out = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n_new)
    ours = model.generate(ids, max_new_tokens=n_new, do_sample=False, verbose=False)
    first_eos = [i for i, t in enumerate(ours[0].tolist()) if i >= ids.shape[1] and t == tokenizer.eos_token_id]
    end = first_eos[0] + 1 if first_eos else ours.shape[1]
    assert out[0, :end].tolist() == ours[0, :end].tolist()
    text = tokenizer.decode(out[0], clean_up_tokenization_spaces=False)
    assert text.replace(tokenizer.eos_token, "").strip() == cli_text


def text_model_f32(tokenizer_dir):
    """A float32 model with the test tokenizer and sharp attention."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = sharp_model(d_vocab=len(tokenizer), n_ctx=24)
    model.set_tokenizer(tokenizer, default_padding_side="right")
    return model


@pytest.mark.parametrize(
    ("hf", "message"),
    [
        (lambda: linear_llama(hidden_act="silu"), "hidden_act='silu'.*not bilinear"),
        (lambda: linear_llama(num_key_value_heads=2), "grouped-query"),
        (lambda: linear_llama(rope_parameters={"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0}), "rope_type"),
    ],
)
def test_from_hf_refuses(hf, message):
    with pytest.raises(ValueError, match=message):
        from_hf(hf())


@pytest.mark.parametrize("proj", ["gate_proj", "up_proj"])
def test_from_hf_refuses_a_bias_inside_the_product(proj):
    hf = linear_llama(mlp_bias=True)
    with torch.no_grad():
        getattr(hf.model.layers[0].mlp, proj).bias.fill_(0.1)
    with pytest.raises(ValueError, match=f"{proj}.bias is non-zero"):
        from_hf(hf)


def test_from_hf_refuses_other_architectures(tmp_path):
    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type='gpt2' is not supported"):
        from_hf(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        from_hf(tmp_path / "nowhere")


@NO_BIAS_EDITS
def test_to_hf_refuses_what_llama_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="act_fn='gelu'"):
        to_hf(tl_bilinear.make_model(tl_bilinear.bilinear_config(act_fn="gelu", d_model=16, n_heads=2)), tmp_path)
    model = sharp_model()
    with torch.no_grad():
        model.unembed.b_U.fill_(1.0)
    with pytest.raises(ValueError, match="b_U is non-zero"):
        to_hf(model, tmp_path / "out")
    with torch.no_grad():
        model.unembed.b_U.zero_()
        model.blocks[0].mlp.b_in.fill_(1.0)
    with pytest.raises(ValueError, match="b_in is non-zero: TransformerLens adds b_in after the product"):
        to_hf(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export(tmp_path, capsys):
    from tests.helpers.cli import run_main

    model = sharp_model()
    tl_bilinear.save(model, tmp_path / "run" / "checkpoint")
    status, err = run_main("export", tmp_path / "run", "--format", "hf", "--out", tmp_path / "hf", capsys=capsys)
    assert status == 0, err
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    with torch.no_grad():
        assert (hf(TOKENS).logits - model(TOKENS)).abs().max() <= 1e-4
    capsys.readouterr()  # the loading progress bar
    status, err = run_main("export", tmp_path / "nowhere", "--out", tmp_path / "x", capsys=capsys)
    assert status == 2 and "tl-bilinear export: error: no checkpoint at" in err and err.count("\n") == 1
