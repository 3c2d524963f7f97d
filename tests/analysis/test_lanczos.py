"""The batched top-k Lanczos solver against dense ``torch.linalg.eigh``."""

import pytest
import torch

from tl_bilinear.analysis.lanczos import guard_pairs, lanczos_topk
from tl_bilinear.analysis.tridiagonal import ritz


def explicit_matvec(Q, calls=None):
    """matvec over explicit matrices Q [n, d, d]; records the index of each call."""

    def matvec(V, index):
        if calls is not None:
            calls.append(index.clone())
        return torch.bmm(Q[index].to(V.dtype), V[:, :, None])[:, :, 0]

    return matvec


def with_spectrum(eigenvalues, seed=0):
    """Symmetric matrices [n, d, d] with the given eigenvalues [n, d] and random eigenvectors."""
    n, d = eigenvalues.shape
    g = torch.Generator().manual_seed(seed)
    U = torch.linalg.qr(torch.randn(n, d, d, generator=g, dtype=torch.float64)).Q
    return (U * eigenvalues[:, None, :]) @ U.mT


def goe(n, d, seed=0):
    """Random symmetric matrices with a semicircle (flat-edged) spectrum."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d, d, generator=g, dtype=torch.float64)
    return (A + A.mT) / (2 * d**0.5)


def dense_topk(Q, k):
    values, vectors = torch.linalg.eigh(Q.double())
    order = values.abs().argsort(dim=1, descending=True)[:, :k]
    return values, values.gather(1, order), vectors.gather(2, order[:, None, :].expand(-1, Q.shape[1], -1)).mT


def assert_matches_dense(Q, values, vectors, k, value_tol, cos_tol=1e-3, gap=1e-2):
    """Eigenvalues match; each vector lies in the dense eigenspace of its eigenvalue."""
    all_values, ref_values, _ = dense_topk(Q, k)
    _, all_vectors = torch.linalg.eigh(Q.double())
    scale = ref_values[:, :1].abs()
    assert ((values.double() - ref_values).abs() <= value_tol * scale).all()
    for i in range(Q.shape[0]):
        for j in range(k):
            near = (all_values[i] - ref_values[i, j]).abs() <= gap * scale[i]  # its eigenspace
            basis = all_vectors[i][:, near]
            alignment = (basis.T @ vectors[i, j].double()).norm()
            assert alignment >= 1 - cos_tol, (i, j, alignment)


def true_residuals(Q, values, vectors):
    Qx = torch.einsum("nij,nkj->nki", Q.double(), vectors.double())
    return (Qx - values.double()[..., None] * vectors.double()).norm(dim=2)


SPECTRA = {
    "semicircle": lambda: goe(12, 80),
    "outliers": lambda: goe(12, 80) + with_spectrum(torch.tensor([6.0, -5.0, 4.0] + [0.0] * 77).repeat(12, 1)),
    "negative": lambda: goe(12, 80, seed=1) * 0.2 - with_spectrum(torch.linspace(3, 0.1, 80).repeat(12, 1) ** 2),
    "low_rank": lambda: with_spectrum(torch.cat([torch.randn(12, 10, dtype=torch.float64), torch.zeros(12, 70)], 1)),
}


@pytest.mark.parametrize("name", SPECTRA)
def test_matches_dense_eigh(name):
    Q = SPECTRA[name]()
    k = 8
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), len(Q), Q.shape[1], k)
    assert converged.all()
    assert values.shape == (12, k) and vectors.shape == (12, k, 80) and values.dtype == torch.float32
    assert (values.abs().diff(dim=1) <= 1e-6).all(), "sorted by |λ| descending"
    assert torch.allclose(vectors.norm(dim=2), torch.ones(12, k), atol=1e-5)
    assert_matches_dense(Q, values, vectors, k, value_tol=2e-5)


def test_low_rank_with_zero_eigenvalues_in_top_k():
    """k > rank: the Krylov space becomes invariant, restarts find the null space."""
    eig = torch.cat([torch.tensor([[4.0, -3.0, 2.0]], dtype=torch.float64).repeat(6, 1), torch.zeros(6, 37)], 1)
    Q = with_spectrum(eig)
    for dtype in (torch.float32, torch.float64):
        values, vectors, converged = lanczos_topk(explicit_matvec(Q), 6, 40, 7, dtype=dtype, steps=20)
        assert converged.all()
        assert torch.allclose(values[:, :3].double(), eig[:, :3], atol=1e-5)
        assert values[:, 3:].abs().max() < 1e-5
        gram = vectors.double() @ vectors.double().mT
        assert torch.allclose(gram, torch.eye(7, dtype=torch.float64).expand(6, 7, 7), atol=1e-4)
        assert true_residuals(Q, values, vectors).max() < 1e-4


def test_repeated_eigenvalues_give_the_eigenspace():
    eig = torch.randn(6, 96, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.3
    eig[:, :3], eig[:, 3:5] = 3.0, -2.5
    Q = with_spectrum(eig)
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 6, 96, 6)
    assert converged.all()
    assert_matches_dense(Q, values, vectors, 6, value_tol=1e-5)
    # the three copies of 3.0 are orthonormal: they span the whole eigenspace
    gram = vectors[:, :3].double() @ vectors[:, :3].double().mT
    assert torch.allclose(gram, torch.eye(3, dtype=torch.float64).expand(6, 3, 3), atol=1e-4)


def test_residual_estimate_is_the_true_residual():
    """res² = ||T y - θ y||² + (β_s y_s)² equals ||Q V y - θ V y|| for a Lanczos basis V."""
    Q = goe(1, 60, seed=5)[0]
    s = 25
    V = torch.zeros(s + 1, 60, dtype=torch.float64)
    alpha, beta = torch.zeros(s, dtype=torch.float64), torch.zeros(s, dtype=torch.float64)
    V[0] = torch.randn(60, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    V[0] /= V[0].norm()
    for j in range(s):  # textbook Lanczos with full reorthogonalisation
        w = Q @ V[j]
        alpha[j] = V[j] @ w
        for _ in range(2):
            w = w - V[: j + 1].T @ (V[: j + 1] @ w)
        beta[j] = w.norm()
        V[j + 1] = w / beta[j]
    theta, Y, res = ritz(alpha[None], beta[None], 5)
    X = (V[:s].T @ Y[0]).T  # Ritz vectors [5, 60]
    true = (X @ Q - theta[0, :, None] * X).norm(dim=1)
    assert torch.allclose(res[0], true, rtol=1e-6, atol=1e-12)
    assert true.min() > 1e-8, "the test needs unconverged pairs too"


def test_converged_flag_is_honest():
    """Too few steps give converged=False; converged=True means the true residuals of the
    k pairs and the guard pairs beyond them meet tol."""
    Q = goe(16, 96, seed=2)
    tol = 1e-5
    seen = set()
    guarded = 8 + guard_pairs(8)
    for max_steps in (24, 40, 56, 72, 96):
        _, _, converged = lanczos_topk(explicit_matvec(Q), 16, 96, 8, steps=max_steps, max_steps=max_steps)
        # the same start vectors and Krylov spaces, returning the guard pairs too
        values, vectors, _ = lanczos_topk(explicit_matvec(Q), 16, 96, guarded, steps=max_steps, max_steps=max_steps)
        res = true_residuals(Q, values, vectors).max(1).values / values[:, 0].abs().double()
        assert (res[converged] <= 2 * tol).all()
        assert (res[~converged] > 0.5 * tol).all()
        seen.update(converged.tolist())
        if max_steps == 24:
            assert not converged.any()
    assert seen == {True, False}
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 16, 96, 8)  # default: runs until converged
    assert converged.all()
    assert_matches_dense(Q, values, vectors, 8, value_tol=1e-5)


def test_float64():
    Q = goe(8, 64, seed=4)
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 8, 64, 10, dtype=torch.float64)
    assert values.dtype == vectors.dtype == torch.float64 and converged.all()
    _, ref_values, _ = dense_topk(Q, 10)
    assert torch.allclose(values, ref_values, rtol=0, atol=1e-10)
    assert true_residuals(Q, values, vectors).max() < 1e-8
    assert_matches_dense(Q, values, vectors, 10, value_tol=1e-10, cos_tol=1e-8, gap=1e-6)


def test_subset_continuation_matches_one_long_run():
    """Directions that converge leave; the rest continue their own Krylov bases."""
    Q = torch.cat(
        [goe(6, 72, seed=6), goe(6, 72, seed=7) * 0.1 + with_spectrum(torch.tensor([[5.0, -4.0] + [0.0] * 70] * 6))]
    )
    calls = []
    values, vectors, converged = lanczos_topk(explicit_matvec(Q, calls), 12, 72, 4, steps=12, check_every=4)
    assert converged.all()
    sizes = [len(c) for c in calls]
    assert sizes[0] == 12 and sizes[-1] < 12, "converged directions stop"
    assert sorted(sizes, reverse=True) == sizes
    long_values, long_vectors, long_converged = lanczos_topk(explicit_matvec(Q), 12, 72, 4, steps=72)
    assert long_converged.all()
    assert torch.allclose(values, long_values, atol=2e-5 * values.abs().max())
    cos = (vectors * long_vectors).sum(2).abs()
    assert (cos > 0.999).all()
    # memory-bounded batches of directions give the same answer
    chunked = lanczos_topk(explicit_matvec(Q), 12, 72, 4, steps=12, check_every=4, batch_size=5)
    assert chunked[2].all()
    assert torch.allclose(chunked[0], values, atol=2e-5 * values.abs().max())


def test_sizes_and_edge_cases():
    Q = goe(3, 5, seed=8)
    for k in (5, 1):  # k == d, tiny d
        values, vectors, converged = lanczos_topk(explicit_matvec(Q), 3, 5, k, dtype=torch.float64)
        assert converged.all()
        assert torch.allclose(values, dense_topk(Q, k)[1], atol=1e-12)
    one = torch.full((2, 1, 1), -2.0, dtype=torch.float64)
    values, vectors, converged = lanczos_topk(explicit_matvec(one), 2, 1, 1)
    assert (
        converged.all()
        and torch.allclose(values, torch.full((2, 1), -2.0))
        and torch.allclose(vectors.abs(), torch.ones(2, 1, 1))
    )
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 0, 5, 2)
    assert values.shape == (0, 2) and vectors.shape == (0, 2, 5) and converged.shape == (0,)
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 3, 5, 0)
    assert values.shape == (3, 0) and converged.all()
    zero = torch.zeros(2, 10, 10, dtype=torch.float64)
    values, vectors, converged = lanczos_topk(explicit_matvec(zero), 2, 10, 3)
    assert converged.all() and (values == 0).all() and torch.allclose(vectors.norm(dim=2), torch.ones(2, 3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=6), "k <= d"),
        (dict(k=-1), "k <= d"),
        (dict(k=3, max_steps=2), "max_steps"),
        (dict(k=3, max_steps=9), "max_steps"),
        (dict(k=3, steps=2), "steps"),
        (dict(k=3, tol=0.0), "tol"),
        (dict(k=3, tol=0.1), r"tol=0.1 must lie in \(0, 0.01\]"),
        (dict(k=3, dtype=torch.float16), "dtype"),
        (dict(k=3, batch_size=0), "batch_size"),
        (dict(k=3, check_every=0), "check_every"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    Q = goe(2, 5)
    with pytest.raises(ValueError, match=match):
        lanczos_topk(explicit_matvec(Q), 2, 5, **kwargs)


@pytest.mark.parametrize("scale", [1e-25, 1e25])
def test_tiny_and_huge_matrices(scale):
    """Norms of float32 vectors would under/overflow: the solver runs on Q / scale."""
    Q = goe(4, 40) * scale
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 4, 40, 5)
    assert converged.all()
    _, ref_values, _ = dense_topk(Q, 5)
    assert torch.allclose(values.double(), ref_values, rtol=1e-5)
    assert (true_residuals(Q, values, vectors) <= 2e-5 * ref_values[:, :1].abs()).all()


def test_large_batch_checks_a_sample_first():
    """Over 128 directions a check looks at a sample first; mixed speeds still all finish right."""
    Q = torch.cat([goe(100, 40, seed=9), with_spectrum(torch.linspace(-1, 5, 40).repeat(60, 1) ** 3, seed=10)])
    values, vectors, converged = lanczos_topk(explicit_matvec(Q), 160, 40, 3, steps=8)
    assert converged.all()
    _, ref_values, _ = dense_topk(Q, 3)
    assert torch.allclose(values.double(), ref_values, atol=2e-5 * ref_values.abs().max())
    assert (true_residuals(Q, values, vectors) <= 2e-5 * ref_values[:, :1].abs()).all()
