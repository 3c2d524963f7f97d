"""Eigendecomposition: sorting, exactness, truncation, indexing, the dense and Lanczos routes."""

import itertools

import numpy as np
import pytest
import torch

import tl_bilinear
from tests.helpers.reference import random_directions
from tl_bilinear.analysis import (
    eigendecompose,
    hosvd,
    interaction_matrices,
    spectrum,
)

G = torch.Generator().manual_seed(0)  # for inputs x


def test_eigenpairs_sorted_by_magnitude_orthonormal_and_exact(tiny_model):
    U = random_directions(tiny_model)
    eig = eigendecompose(tiny_model, 0, U)
    assert eig.eigenvalues.shape == (6, 32) and eig.eigenvectors.shape == (6, 32, 32)
    assert (eig.eigenvalues.abs().diff(dim=-1) <= 0).all()
    eye = torch.eye(32, dtype=torch.float64).expand(6, -1, -1)
    torch.testing.assert_close(eig.eigenvectors @ eig.eigenvectors.mT, eye)
    torch.testing.assert_close(eig.matrices(), interaction_matrices(tiny_model, 0, U))
    # largest-magnitude entry of every eigenvector is positive (a fixed sign convention)
    pivot = eig.eigenvectors.gather(-1, eig.eigenvectors.abs().argmax(-1, keepdim=True))
    assert (pivot > 0).all()


def test_reconstruct_full_is_exact_and_k0_is_zero(tiny_model):
    U = random_directions(tiny_model)
    eig = eigendecompose(tiny_model, 1, U)
    x = torch.randn(3, 5, 32, generator=G, dtype=torch.float64)
    Q = interaction_matrices(tiny_model, 1, U)
    quadratic = torch.einsum("bpi,nij,bpj->bpn", x, Q, x)
    torch.testing.assert_close(eig.reconstruct(x, k=32), quadratic)
    assert eig.reconstruct(x, k=0).abs().max() == 0
    torch.testing.assert_close(eig.contributions(x).sum(-1), quadratic)
    torch.testing.assert_close(eig.truncate(4).reconstruct(x), eig.reconstruct(x, k=4))


def test_top_k_is_the_best_rank_k_approximation(tiny_model):
    U = random_directions(tiny_model, 2)
    Q = interaction_matrices(tiny_model, 0, U)
    eig = eigendecompose(tiny_model, 0, U)
    all_values, all_vectors = torch.linalg.eigh(Q)
    for k in (1, 3, 8):
        best = (Q - eig.matrices(k)).norm(dim=(-2, -1))
        # Eckart-Young: the truncated SVD's error, computed independently
        sv = torch.linalg.svdvals(Q)
        torch.testing.assert_close(best, sv[:, k:].square().sum(-1).sqrt())
        # and no other choice of k eigenpairs does better
        for subset in itertools.islice(itertools.combinations(range(32), k), 200):
            idx = list(subset)
            other = torch.einsum("nk,nik,njk->nij", all_values[:, idx], all_vectors[:, :, idx], all_vectors[:, :, idx])
            assert ((Q - other).norm(dim=(-2, -1)) >= best - 1e-9).all()


def test_top_k_equals_dense_truncation(tiny_model):
    U = random_directions(tiny_model)
    full = eigendecompose(tiny_model, 0, U)
    top = eigendecompose(tiny_model, 0, U, k=5)
    torch.testing.assert_close(top.eigenvalues, full.eigenvalues[:, :5])
    torch.testing.assert_close(top.eigenvectors, full.eigenvectors[:, :5])


def test_spectrum_matches_eigendecompose(tiny_model):
    U = random_directions(tiny_model)
    torch.testing.assert_close(spectrum(tiny_model, 0, U, chunk_size=2), eigendecompose(tiny_model, 0, U).eigenvalues)


def test_indexing_keeps_the_direction_axis(tiny_model):
    eig = eigendecompose(tiny_model, 0, random_directions(tiny_model))
    assert len(eig[2]) == 1 and len(eig[1:4]) == 3 and len(eig[-1]) == 1
    torch.testing.assert_close(eig[-1].eigenvalues, eig.eigenvalues[-1:])


def test_lanczos_and_dense_agree_on_a_wide_layer():
    model = tl_bilinear.make_model("ts-micro", d_model=128, d_vocab=97, dtype=torch.float64)
    U = model.W_U[:, :4].T
    dense = eigendecompose(model, 0, U, k=6, method="dense")
    fast = eigendecompose(model, 0, U, k=6, method="auto")
    torch.testing.assert_close(fast.eigenvalues, dense.eigenvalues, rtol=1e-8, atol=1e-10)
    cos = (fast.eigenvectors * dense.eigenvectors).sum(-1).abs()
    assert cos.min() > 1 - 1e-6


# ---- bad input -------------------------------------------------------------------------


def test_bad_k_and_method(tiny_model):
    u = tiny_model.W_U[:, 0]
    with pytest.raises(ValueError, match=r"k=33 must be None or an int in \[0, 32\]"):
        eigendecompose(tiny_model, 0, u, k=33)
    with pytest.raises(ValueError, match="method='fast'"):
        eigendecompose(tiny_model, 0, u, method="fast")
    eig = eigendecompose(tiny_model, 0, u, k=4)
    with pytest.raises(ValueError, match=r"k=5 must be an int in \[0, 4\]"):
        eig.reconstruct(torch.zeros(32, dtype=torch.float64), k=5)
    with pytest.raises(ValueError, match="x has width 31"):
        eig.contributions(torch.zeros(31, dtype=torch.float64))


def test_results_carry_no_autograd_graph(tiny_model):
    U = tiny_model.W_U[:, :3].T  # a slice of a parameter: requires grad
    assert U.requires_grad
    assert not interaction_matrices(tiny_model, 0, U).requires_grad
    assert not eigendecompose(tiny_model, 0, U).eigenvalues.requires_grad
    assert not hosvd(tiny_model, 0, U).singular_values.requires_grad


@pytest.fixture(scope="module")
def eig(tiny_model):
    return eigendecompose(tiny_model, 0, tiny_model.W_U[:, :3].T, k=4)


@pytest.mark.parametrize("index", [3, -4, 10])
def test_an_int_index_past_the_end_raises(eig, index):
    # not an empty decomposition (which slice(3, 4) would give)
    with pytest.raises(IndexError, match=f"direction index {index} is out of range for 3 directions"):
        eig[index]


@pytest.mark.parametrize("index", [1, -2, np.int64(1), torch.tensor(1)])
def test_integer_likes_keep_the_direction_axis(eig, index):
    # numpy and 0-d tensor ints index like Python ints: the axis stays, eigenvalues [1, k]
    part = eig[index]
    assert len(part) == 1 and part.eigenvalues.shape == (1, 4) and part.directions.shape == (1, 32)
    torch.testing.assert_close(part.eigenvectors[0], eig.eigenvectors[1], rtol=0, atol=0)
