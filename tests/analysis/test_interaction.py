"""Interaction matrices: the direct and packed builds against the paper's einsum, chunking, the matvec."""

import pytest
import torch

from tests.helpers.reference import paper_interaction_matrices, random_directions, relative_error
from tl_bilinear.analysis import (
    BilinearWeights,
    eigendecompose,
    interaction_matrices,
    spectrum,
)
from tl_bilinear.analysis.interaction import bilinear_matvec, packed_interactions, packed_is_faster, prepare
from tl_bilinear.analysis.lanczos import lanczos_topk


def test_q_matches_the_paper_einsum_and_is_symmetric(tiny_model):
    U = random_directions(tiny_model)
    mlp = tiny_model.blocks[1].mlp
    Q = interaction_matrices(tiny_model, 1, U, chunk_size=4)
    torch.testing.assert_close(Q, paper_interaction_matrices(mlp.W_gate, mlp.W_in, mlp.W_out, U).detach())
    torch.testing.assert_close(Q, Q.mT, rtol=0, atol=0)


def test_q_is_linear_in_u(tiny_model):
    u, w = random_directions(tiny_model, 2)
    Q = interaction_matrices(tiny_model, 0, torch.stack([u, w, 2.5 * u - 3 * w]))
    torch.testing.assert_close(Q[2], 2.5 * Q[0] - 3 * Q[1])


def test_single_direction_and_float32(tiny_model):
    u = random_directions(tiny_model, 1)[0]
    Q = interaction_matrices(tiny_model, 0, u, dtype=torch.float32)
    assert Q.shape == (1, 32, 32) and Q.dtype == torch.float32


def _weights(d, m, o, dtype=torch.float64, seed=0, branch_biases=False):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    biases = dict(b_pre=randn(m), b_pre_linear=randn(m)) if branch_biases else {}
    return BilinearWeights(W_gate=randn(d, m), W_in=randn(d, m), W_out=randn(m, o), **biases)


@pytest.mark.parametrize("shape", [(1, 3, 2), (7, 13, 5), (33, 50, 40), (48, 96, 20)])
def test_packed_equals_direct_and_the_paper_einsum_in_float64(shape):
    w = _weights(*shape)
    U = torch.randn(9, shape[2], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    packed = interaction_matrices(w, None, U, build="packed")
    direct = interaction_matrices(w, None, U, build="direct")
    paper = paper_interaction_matrices(w.W_gate, w.W_in, w.W_out, U)
    assert packed.shape == (9, shape[0], shape[0]) and packed.dtype == torch.float64
    assert relative_error(packed, paper) < 1e-12
    assert relative_error(direct, paper) < 1e-12
    torch.testing.assert_close(packed, packed.mT, rtol=0, atol=0)


def test_packed_on_the_model_and_with_branch_biases(tiny_model):
    U = torch.randn(5, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mlp = tiny_model.blocks[1].mlp
    packed = interaction_matrices(tiny_model, 1, U, build="packed")
    assert relative_error(packed, paper_interaction_matrices(mlp.W_gate, mlp.W_in, mlp.W_out, U).detach()) < 1e-12
    w = _weights(16, 40, 12, branch_biases=True)  # Q on the augmented input [x, 1]
    V = torch.randn(4, 12, dtype=torch.float64)
    packed = interaction_matrices(w, None, V, build="packed")
    assert packed.shape == (4, 17, 17)
    assert relative_error(packed, interaction_matrices(w, None, V, build="direct")) < 1e-12


def test_chunking_and_block_rows_do_not_change_the_result():
    w = _weights(24, 64, 16)
    U = torch.randn(11, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    reference = interaction_matrices(w, None, U, build="packed")
    for chunk_size in (1, 3, 11, 100):
        out = interaction_matrices(w, None, U, build="packed", chunk_size=chunk_size)
        torch.testing.assert_close(out, reference, rtol=1e-13, atol=1e-13)
    T = packed_interactions(w).T
    for rows in (1, 24, 25, 70, 10_000):  # one triangle row per block, row boundaries, all at once
        torch.testing.assert_close(packed_interactions(w, rows=rows).T, T, rtol=1e-13, atol=1e-13)


def test_float32_matches_float64():
    w = _weights(40, 80, 24)
    U = torch.randn(6, 24, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    exact = interaction_matrices(w, None, U, build="direct")
    single = interaction_matrices(w, None, U, build="packed", dtype=torch.float32)
    assert single.dtype == torch.float32 and relative_error(single.double(), exact) < 1e-5


def test_automatic_choice_follows_the_flop_count():
    w, _ = prepare(_weights(64, 256, 64), None, torch.zeros(1, 64), torch.float32)
    # crossover near d_mlp d_out / (2 d_mlp - d_out) = 256 * 64 / 448 ~ 37 directions (+25% margin)
    assert not packed_is_faster(w, 8, torch.float32)
    assert packed_is_faster(w, 200, torch.float32)
    U = torch.randn(200, 64, dtype=torch.float64)
    auto = interaction_matrices(w, None, U)
    assert relative_error(auto, interaction_matrices(w, None, U, build="direct")) < 1e-5


def test_empty_directions_and_bad_build_value():
    w = _weights(8, 16, 4)
    assert interaction_matrices(w, None, torch.zeros(0, 4), build="packed").shape == (0, 8, 8)
    assert interaction_matrices(w, None, torch.zeros(0, 4), build="direct").shape == (0, 8, 8)
    with pytest.raises(ValueError, match="build='fast'"):
        interaction_matrices(w, None, torch.zeros(2, 4), build="fast")


def test_bilinear_matvec_and_bilinear_q():
    g = torch.Generator().manual_seed(0)
    d, m, n = 48, 192, 10
    W_gate, W_in = torch.randn(d, m, generator=g) / d**0.5, torch.randn(d, m, generator=g) / d**0.5
    C = torch.randn(n, m, generator=g) / m**0.5
    M = torch.einsum("im,nm,jm->nij", W_gate.double(), C.double(), W_in.double())
    Q = (M + M.mT) / 2
    matvec = bilinear_matvec(W_gate, W_in, C)
    V, index = torch.randn(7, d, generator=g), torch.tensor([3, 0, 9, 3, 1, 2, 5])
    assert torch.allclose(matvec(V, index).double(), torch.bmm(Q[index], V.double()[:, :, None])[:, :, 0], atol=1e-5)
    values, vectors, converged = lanczos_topk(matvec, n, d, 6)
    assert converged.all()
    dense = torch.linalg.eigvalsh(Q)
    top = dense.gather(1, dense.abs().argsort(1, descending=True)[:, :6])
    assert ((values.double() - top).abs() <= 2e-5 * top[:, :1].abs()).all()


def test_bilinear_matvec_rejects_bad_shapes():
    with pytest.raises(ValueError, match="W_gate"):
        bilinear_matvec(torch.zeros(4, 8), torch.zeros(4, 9), torch.zeros(2, 8))
    with pytest.raises(ValueError, match="C"):
        bilinear_matvec(torch.zeros(4, 8), torch.zeros(4, 8), torch.zeros(2, 7))


@pytest.mark.parametrize(
    "call",
    [
        lambda m, U, c: interaction_matrices(m, 0, U, chunk_size=c, build="direct"),
        lambda m, U, c: interaction_matrices(m, 0, U, chunk_size=c, build="packed"),
        lambda m, U, c: eigendecompose(m, 0, U, k=2, method="dense", chunk_size=c),
        lambda m, U, c: spectrum(m, 0, U, chunk_size=c),
    ],
)
@pytest.mark.parametrize("chunk_size", [0, -1, 2.0])
def test_a_bad_chunk_size_is_a_clear_error(tiny_model, call, chunk_size):
    with pytest.raises(ValueError, match=f"chunk_size={chunk_size!r} must be None"):
        call(tiny_model, tiny_model.W_U[:, :3].T, chunk_size)
