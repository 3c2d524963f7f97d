"""Block Krylov Rayleigh–Ritz against dense eigh, and eigendecompose(method="krylov")."""

import pytest
import torch

from tl_bilinear.analysis import eigendecompose, interaction_matrices
from tl_bilinear.analysis.block_krylov import block_krylov_topk

G = torch.Generator().manual_seed(0)


@pytest.fixture(autouse=True)
def one_thread():
    """Small batched LAPACK calls in the references run far slower on 2 busy threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _with_spectrum(eigenvalues: torch.Tensor) -> torch.Tensor:
    """Random symmetric matrices O diag(λ) Oᵀ, one per row of eigenvalues [n, d]."""
    n, d = eigenvalues.shape
    O = torch.linalg.qr(torch.randn(n, d, d, generator=G, dtype=eigenvalues.dtype)).Q
    return (O * eigenvalues[:, None, :]) @ O.mT


def _reference(Q, k):
    values, vectors = torch.linalg.eigh(Q)
    order = values.abs().argsort(dim=1, descending=True, stable=True)[:, :k]
    return values.gather(1, order), vectors.gather(2, order[:, None, :].expand(-1, Q.shape[1], -1)).mT


def _check(Q, k, tol, **kwargs):
    values, vectors, krylov = block_krylov_topk(Q, k, **kwargs)
    ref, _ = _reference(Q, k)
    scale = ref.abs()[:, :1]
    assert values.shape == (len(Q), k) and vectors.shape == (len(Q), k, Q.shape[1])
    assert ((values - ref).abs() <= tol * scale).all(), (values - ref).abs().max()
    residual = (Q @ vectors.mT - vectors.mT * values[:, None, :]).norm(dim=1)
    assert (residual <= 10 * tol * scale).all()
    torch.testing.assert_close(vectors.norm(dim=2), torch.ones_like(values))
    return values, vectors, krylov


SPECTRA = {
    "flat": lambda n, d: torch.randn(n, d, generator=G, dtype=torch.float64),
    "outliers": lambda n, d: torch.cat(
        [torch.tensor([40.0, -30.0, 20.0], dtype=torch.float64).expand(n, 3),
         torch.randn(n, d - 3, generator=G, dtype=torch.float64)], 1),
    "negative": lambda n, d: -torch.rand(n, d, generator=G, dtype=torch.float64) ** 4 * 10,
    "low_rank": lambda n, d: torch.cat(
        [torch.randn(n, 5, generator=G, dtype=torch.float64) * 10, torch.zeros(n, d - 5, dtype=torch.float64)], 1),
}


@pytest.mark.parametrize("name", sorted(SPECTRA))
def test_top_k_matches_dense_eigh(name):
    Q = _with_spectrum(SPECTRA[name](6, 64))
    values, vectors, krylov = _check(Q, 8, 1e-9, block=8, max_dim=64)
    if name != "flat":  # these spectra converge long before the basis fills the space
        assert krylov.all()
    _, ref_vectors = _reference(Q, 8)
    ref_values, _ = _reference(Q, 9)
    gap = (ref_values[:, :-1].abs() - ref_values[:, 1:].abs()).abs()
    separated = torch.cat([gap[:, :1], torch.minimum(gap[:, 1:], gap[:, :-1])], 1) > 1e-3 * ref_values.abs()[:, :1]
    cos = (vectors * ref_vectors).sum(2).abs()
    assert (cos[separated] > 0.999999).all()


def test_degenerate_eigenvalues_give_the_right_eigenspace():
    lam = torch.cat([torch.full((4, 3), 5.0), torch.full((4, 2), -4.0), torch.rand(4, 43, generator=G)], 1).double()
    Q = _with_spectrum(lam)
    values, vectors, krylov = _check(Q, 5, 1e-9, block=4, max_dim=40)
    assert krylov.all()
    _, all_vectors = torch.linalg.eigh(Q)
    for value, width in ((5.0, 3), (-4.0, 2)):
        mask = (values - value).abs() < 1e-6
        assert (mask.sum(1) == width).all()
        exact = (torch.linalg.eigvalsh(Q) - value).abs() < 1e-6  # the dense eigenspace
        for i in range(len(Q)):
            basis = all_vectors[i][:, exact[i]]
            ours = vectors[i][mask[i]]
            torch.testing.assert_close(torch.linalg.svdvals(ours @ basis), torch.ones(width, dtype=torch.float64))


def test_float32_and_k_larger_than_the_block():
    top = 40 * 0.8 ** torch.arange(20.0) * (-1) ** torch.arange(20)  # 20 separated pairs over a small bulk
    lam = torch.cat([top.expand(4, 20), 0.1 * torch.randn(4, 76, generator=G)], 1).double()
    Q = _with_spectrum(lam).float()
    values, _, krylov = _check(Q, 20, 1e-5, block=6)
    assert values.dtype == torch.float32 and krylov.all()


def test_a_tiny_cap_falls_back_to_dense_and_stays_exact():
    Q = _with_spectrum(SPECTRA["flat"](5, 80))
    _, _, krylov = _check(Q, 6, 1e-9, block=6, max_dim=12)
    assert not krylov.any()  # a flat spectrum cannot converge in 12 columns: every pair came from eigh


def test_small_matrices_zero_matrices_and_k_zero():
    _check(_with_spectrum(SPECTRA["flat"](3, 5)), 5, 1e-9)  # d below the default block
    values, vectors, krylov = block_krylov_topk(torch.zeros(2, 20, 20), 4)
    assert (values == 0).all() and krylov.all()
    torch.testing.assert_close(vectors.norm(dim=2), torch.ones(2, 4))
    values, vectors, _ = block_krylov_topk(torch.eye(7).expand(3, 7, 7).contiguous(), 0)
    assert values.shape == (3, 0) and vectors.shape == (3, 0, 7)


def test_batches_do_not_change_the_result():
    Q = _with_spectrum(SPECTRA["outliers"](7, 48))
    a = block_krylov_topk(Q, 4, block=4)[0]
    b = block_krylov_topk(Q, 4, block=4, batch_size=2)[0]
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_bad_arguments_raise():
    Q = torch.zeros(2, 8, 8)
    for kwargs, match in (({"k": 9}, "k=9"), ({"k": 2, "block": 0}, "block=0"), ({"k": 2, "max_dim": 9}, "max_dim=9"),
                          ({"k": 2, "tol": 0.0}, "tol=0.0")):
        with pytest.raises(ValueError, match=match):
            block_krylov_topk(Q, **kwargs)
    with pytest.raises(ValueError, match="must be \\[n, d, d\\]"):
        block_krylov_topk(torch.zeros(2, 8, 7), 2)


def test_eigendecompose_krylov_matches_dense():
    import tl_bilinear

    model = tl_bilinear.make_model(
        tl_bilinear.bilinear_config(n_layers=1, d_model=64, n_heads=4, n_ctx=8, d_vocab=50, dtype=torch.float64), seed=1)
    U = torch.randn(5, 64, generator=G, dtype=torch.float64)
    krylov = eigendecompose(model, 0, U, k=6, method="krylov")
    dense = eigendecompose(model, 0, U, k=6, method="dense")
    torch.testing.assert_close(krylov.eigenvalues, dense.eigenvalues, rtol=1e-8, atol=1e-8 * dense.eigenvalues.abs().max())
    Q = interaction_matrices(model, 0, U)
    residual = (Q @ krylov.eigenvectors.mT - krylov.eigenvectors.mT * krylov.eigenvalues[:, None, :]).norm(dim=1)
    assert residual.max() <= 1e-8 * dense.eigenvalues.abs().max()
    with pytest.raises(ValueError, match="'krylov'"):
        eigendecompose(model, 0, U, k=6, method="block")
