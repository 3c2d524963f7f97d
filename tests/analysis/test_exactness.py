"""u · hook_mlp_out == Σ λ_i (v_i · x)² (+ bias constant) on real HookedTransformers."""

import pytest
import torch

import tl_bilinear
from tests.helpers.reference import bilinear_mlp, relative_error
from tl_bilinear.analysis import BilinearWeights, eigendecompose, mlp_input, mlp_input_hook_names


def _check_identity(model, tokens, n_directions=4, **kwargs):
    _, cache = model.run_with_cache(tokens)
    errors = []
    g = torch.Generator().manual_seed(1)
    for layer in range(model.cfg.n_layers):
        U = torch.randn(n_directions, model.cfg.d_model, generator=g).to(model.cfg.dtype)
        eig = eigendecompose(model, layer, U, **kwargs)
        x = mlp_input(model, layer, cache)
        exact = cache[f"blocks.{layer}.hook_mlp_out"] @ U.T  # [batch, pos, n]
        errors.append(relative_error(eig.reconstruct(x), exact))
    return max(errors)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_identity_every_layer(dtype, tol):
    model = tl_bilinear.make_model("ts-tiny", d_vocab=211, dtype=dtype, seed=0)
    tokens = torch.randint(0, 211, (4, 40), generator=torch.Generator().manual_seed(0))
    assert _check_identity(model, tokens) < tol


def test_identity_with_rms_gain_and_mlp_biases():
    model = tl_bilinear.make_model("ts-micro", n_layers=2, normalization_type="RMS", d_vocab=97, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for block in model.blocks:
            block.ln2.w.copy_(1 + torch.rand(model.cfg.d_model, generator=g, dtype=torch.float64))
            block.mlp.b_in.copy_(torch.randn(model.cfg.d_mlp, generator=g, dtype=torch.float64))
            block.mlp.b_out.copy_(torch.randn(model.cfg.d_model, generator=g, dtype=torch.float64))
    tokens = torch.randint(0, 97, (2, 30), generator=g)
    assert _check_identity(model, tokens) < 1e-10
    eig = eigendecompose(model, 0, torch.randn(3, 64, dtype=torch.float64, generator=g))
    assert eig.constant.abs().min() > 0


def test_identity_with_branch_biases_on_augmented_input():
    g = torch.Generator().manual_seed(2)
    d, m, o = 12, 30, 7
    w = {
        name: torch.randn(*shape, generator=g, dtype=torch.float64)
        for name, shape in dict(
            W_gate=(d, m), W_in=(d, m), W_out=(m, o), b_pre=(m,), b_pre_linear=(m,), b_in=(m,), b_out=(o,)
        ).items()
    }
    weights = BilinearWeights(**w)
    U = torch.randn(5, o, generator=g, dtype=torch.float64)
    eig = eigendecompose(weights, None, U)
    assert eig.augmented and eig.d_in == d + 1
    x = torch.randn(50, d, generator=g, dtype=torch.float64)
    exact = bilinear_mlp(x, **w) @ U.T
    assert relative_error(eig.reconstruct(x), exact) < 1e-12


def test_identity_with_lanczos_top_k_on_a_wide_layer():
    model = tl_bilinear.make_model("ts-micro", n_layers=1, d_model=128, d_vocab=97, dtype=torch.float64)
    tokens = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    _, cache = model.run_with_cache(tokens, names_filter=mlp_input_hook_names(model, 0) + ["blocks.0.hook_mlp_out"])
    U = model.W_U[:, :3].T
    dense = eigendecompose(model, 0, U, method="dense")
    top = eigendecompose(model, 0, U, k=8, method="lanczos")
    torch.testing.assert_close(top.eigenvalues, dense.eigenvalues[:, :8], rtol=1e-6, atol=1e-9)
    x = mlp_input(model, 0, cache)
    torch.testing.assert_close(top.reconstruct(x), dense.reconstruct(x, k=8), rtol=1e-5, atol=1e-8)
    assert relative_error(dense.reconstruct(x), cache["blocks.0.hook_mlp_out"] @ U.T) < 1e-10
