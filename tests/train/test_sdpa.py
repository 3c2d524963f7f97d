"""The SDPA training forwards equal TransformerLens's, and hooks keep working."""

import pytest
import torch

import tl_bilinear
from tl_bilinear.train import restore_stock_forwards, swap_in_sdpa_forwards
from tl_bilinear.train.sdpa import FastAttention, FastGatedMLP, FastUnembed


def model_with_biases(**kw):
    cfg = tl_bilinear.bilinear_config(
        n_layers=2, d_model=32, n_heads=4, n_ctx=24, d_vocab=50, dtype=torch.float64, **kw
    )
    model = tl_bilinear.make_model(cfg, seed=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-zero biases so the bias paths are tested too
        for name, p in model.named_parameters():
            if name.rsplit(".", 1)[-1].startswith("b_"):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"rotary_adjacent_pairs": False},
        {"rotary_dim": 4},
        {"positional_embedding_type": "standard"},
        {"act_fn": "silu"},
    ],
)
def test_fast_forward_equals_stock(kw):
    model = model_with_biases(**kw)
    tokens = torch.randint(0, 50, (3, 24), generator=torch.Generator().manual_seed(1))
    stock_logits, cache = model.run_with_cache(tokens)
    swap_in_sdpa_forwards(model)
    assert isinstance(model.blocks[0].attn, FastAttention) and isinstance(model.blocks[1].mlp, FastGatedMLP)
    assert isinstance(model.unembed, FastUnembed)
    torch.testing.assert_close(model(tokens), stock_logits, atol=1e-10, rtol=0)
    seen = {}
    names = ["blocks.0.attn.hook_q", "blocks.1.attn.hook_z", "blocks.0.mlp.hook_post", "blocks.1.hook_resid_post"]
    model.run_with_hooks(tokens, fwd_hooks=[(n, lambda x, hook: seen.__setitem__(hook.name, x)) for n in names])
    for name in names:  # hooks fire on the fast path with TransformerLens's shapes and values
        torch.testing.assert_close(seen[name], cache[name], atol=1e-10, rtol=0)


def test_gradients_match_and_pattern_hooks_fall_back():
    model = model_with_biases()
    tokens = torch.randint(0, 50, (2, 24), generator=torch.Generator().manual_seed(2))
    model(tokens, return_type="loss").backward()
    stock_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    swap_in_sdpa_forwards(model)
    model(tokens, return_type="loss").backward()
    for name, grad in stock_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-10, rtol=0)
    _, cache = model.run_with_cache(tokens)  # needs patterns: the stock path runs
    assert cache["blocks.0.attn.hook_pattern"].shape == (2, 4, 24, 24)
    restore_stock_forwards(model)
    assert type(model.blocks[0].attn).__name__ == "Attention"
