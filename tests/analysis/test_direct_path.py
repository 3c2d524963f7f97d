"""Direct-path reading: W_E through ln2 into the eigenvectors."""

import pytest
import torch

from tl_bilinear.analysis import eigendecompose
from tl_bilinear.analysis.direct_path import direct_path_inputs, direct_path_tokens


def test_inputs_are_rms_normalised_embeddings(short_model):
    x = direct_path_inputs(short_model, 1)
    W_E = short_model.W_E.detach()
    eps = short_model.cfg.eps
    expected = W_E / (W_E.square().mean(-1, keepdim=True) + eps).sqrt()
    torch.testing.assert_close(x, expected)
    with pytest.raises(IndexError, match="out of range"):
        direct_path_inputs(short_model, 2)


def test_top_and_bottom_tokens_match_brute_force(short_model):
    U = torch.randn(2, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eig = eigendecompose(short_model, 0, U, k=3)
    x = direct_path_inputs(short_model, 0)
    proj = torch.einsum("vd,nkd->nkv", x, eig.eigenvectors)
    res = direct_path_tokens(short_model, eig, n_tokens=5)
    for n in range(2):
        for i in range(3):
            order = proj[n, i].argsort(descending=True)
            assert res.top_ids[n, i].tolist() == order[:5].tolist()
            assert res.bottom_ids[n, i].tolist() == order.flip(0)[:5].tolist()
            torch.testing.assert_close(res.top_values[n, i], proj[n, i, order[:5]])
    contrib = direct_path_tokens(short_model, eig, n_tokens=4, by="contribution")
    c = eig.eigenvalues[..., None] * proj.square()
    assert contrib.top_ids[1, 2].tolist() == c[1, 2].abs().argsort(descending=True)[:4].tolist()
    assert (contrib.top_values.abs() >= contrib.bottom_values.abs().max()).all()
    top, bottom = res.strings([f"t{i}" for i in range(97)])
    assert top[0][0][0] == f"t{res.top_ids[0, 0, 0].item()}" and len(bottom[1][2]) == 5


def test_bad_arguments(short_model):
    eig = eigendecompose(short_model, 0, torch.randn(1, 32, dtype=torch.float64), k=2)
    with pytest.raises(ValueError, match="by="):
        direct_path_tokens(short_model, eig, by="magic")
    with pytest.raises(ValueError, match="n_tokens"):
        direct_path_tokens(short_model, eig, n_tokens=0)
