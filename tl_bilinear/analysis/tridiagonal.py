"""Ritz pairs of batched symmetric tridiagonal matrices, for the Lanczos solver.

Each Lanczos run leaves a tridiagonal T: ``alpha`` [B, s] its diagonal, ``beta`` [B, s]
its off-diagonal with ``beta[:, s-1]`` the residual norm β_s of the last step (not part
of T). :func:`ritz` returns the top-k Ritz values by |θ| (batched Sturm multisection),
their vectors (inverse iteration) and the exact residuals, vectorised over the batch in
float64 torch (a dense ``eigh`` of a thousand 100 x 100 matrices costs more than the
Lanczos steps).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _sturm_bisect(alpha: Tensor, beta: Tensor, ranks: Tensor, bits: int = 20) -> Tensor:
    """Eigenvalues of rank ``ranks`` [B, K] (0 = smallest) of each T, by multisection.

    Sturm counts in float32 (T scaled to norm ~1) to ``bits`` bits of the Gershgorin
    width; inverse iteration and Rayleigh quotients refine the values. Each sweep probes M
    points per interval, as many as keep one sweep's tensors small.
    """
    B, s = alpha.shape
    K = ranks.shape[1]
    scale = (alpha.abs().amax(1, keepdim=True) + beta.abs().amax(1, keepdim=True)).clamp_min(1e-300)
    a, b = (alpha / scale).float(), (beta[:, : s - 1] / scale).float()
    b2 = b.square().clamp_min(torch.finfo(a.dtype).tiny).T.contiguous()  # [s-1, B]
    radius = torch.nn.functional.pad(b.abs(), (0, 1)) + torch.nn.functional.pad(b.abs(), (1, 0))
    lo = (a - radius).amin(1)
    hi = (a + radius).amax(1)
    pad = 1e-6 * (hi - lo).abs() + 1e-30
    lo, hi = (lo - pad)[:, None].expand(B, K).contiguous(), (hi + pad)[:, None].expand(B, K).contiguous()
    M = 1
    while 2 * (M + 1) * B * K <= 2**14 and M < 255:  # per-op tensors small: op overhead dominates
        M = 2 * M + 1
    frac = torch.arange(1, M + 1, dtype=a.dtype, device=a.device) / (M + 1)  # [M]
    q = torch.empty(s, B, K * M, dtype=a.dtype, device=a.device)
    aT, b2 = a.T.contiguous()[:, :, None], b2[:, :, None]
    for _ in range(-(-bits // ((M + 1).bit_length() - 1))):
        probes = lo[:, :, None] + (hi - lo)[:, :, None] * frac  # [B, K, M]
        torch.sub(aT, probes.view(1, B, K * M), out=q)  # q_i = (α_i - x) - β_{i-1}² / q_{i-1}
        for i in range(1, s):
            q[i].addcdiv_(b2[i - 1], q[i - 1], value=-1)
        below = q.lt(0).view(torch.uint8).sum(0, dtype=torch.int32).view(B, K, M)  # eigenvalues < probe
        t = (below <= ranks[:, :, None]).sum(2, keepdim=True)  # probes left of the wanted one
        edges = torch.cat([lo[:, :, None], probes, hi[:, :, None]], 2)
        lo, hi = edges.gather(2, t)[..., 0], edges.gather(2, t + 1)[..., 0]
    return (lo + hi).to(alpha.dtype) / 2 * scale


def _tridiag_apply(alpha: Tensor, beta: Tensor, Y: Tensor) -> Tensor:
    """T @ Y for Y [B, s, K]."""
    out = alpha[:, :, None] * Y
    off = beta[:, :-1, None]
    out[:, :-1] += off * Y[:, 1:]
    out[:, 1:] += off * Y[:, :-1]
    return out


def _inverse_iteration(alpha: Tensor, beta: Tensor, theta: Tensor, iters: int = 3) -> Tensor:
    """Unit eigenvectors Y [B, s, K] of T for the eigenvalue estimates theta [B, K].

    Inverse iteration through ``T - θ I = L D Lᵀ`` (no pivoting: a tiny pivot only makes
    its component large, which is the point; the caller's residuals catch any failure),
    from random start vectors, so that shifts inside a cluster give independent vectors.
    """
    B, s = alpha.shape
    K = theta.shape[1]
    gen = torch.Generator(device=alpha.device).manual_seed(1234)
    rand = lambda *shape: torch.rand(*shape, generator=gen, dtype=alpha.dtype, device=alpha.device)  # noqa: E731
    scale = alpha.abs().amax(1, keepdim=True) + beta.abs().amax(1, keepdim=True) + torch.finfo(alpha.dtype).tiny
    theta = theta + (rand(1, K) - 0.5) * 1e-13 * scale  # no exactly singular pivots for exact-zero T entries
    b = beta[:, : s - 1].T[:, :, None]  # [s-1, B, 1]
    b2 = b.square()
    dg = alpha.T[:, :, None] - theta  # [s, B, K]: pivots d_i = (α_i - θ) - β_{i-1}² / d_{i-1}
    for i in range(1, s):
        dg[i].addcdiv_(b2[i - 1], dg[i - 1], value=-1)
    ell = b / dg[: s - 1]  # l_i = β_i / d_i
    y = (rand(s, 1, K) + 0.5).expand(s, B, K).contiguous()  # independent starts for the K shifts
    for _ in range(iters):
        for i in range(1, s):  # L u = y
            y[i].addcmul_(ell[i - 1], y[i - 1], value=-1)
        y /= dg
        for i in range(s - 2, -1, -1):  # Lᵀ y = D⁻¹ u
            y[i].addcmul_(ell[i], y[i + 1], value=-1)
        y /= y.abs().amax(0, keepdim=True)  # keeps the next sweep finite
    y = y.nan_to_num_(0.0)
    return (y / y.norm(dim=0, keepdim=True).clamp_min(torch.finfo(y.dtype).tiny)).permute(1, 0, 2)


class _single_thread:
    """Run small-tensor code on one intra-op thread: there, threads only add sync cost
    (measured: 10x slower on 2 threads when another process holds a core)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def ritz(alpha: Tensor, beta: Tensor, k: int, rayleigh_ritz: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Top-k Ritz values by |θ|, Ritz vectors in the Lanczos basis, and residual norms.

    Returns theta [B, k] (|θ| descending), Y [B, s, k] and res [B, k] with
    ``res² = ||T y - θ y||² + (β_s y_s)²``, the true residual ``||Q V y - θ V y||``.
    """
    with _single_thread():
        return _ritz_pairs(alpha.double(), beta.double(), k, rayleigh_ritz)


def _ritz_pairs(alpha: Tensor, beta: Tensor, k: int, rayleigh_ritz: bool) -> tuple[Tensor, Tensor, Tensor]:
    B, s = alpha.shape
    if 2 * k >= s:
        ranks = torch.arange(s, device=alpha.device)
    else:
        ranks = torch.cat([torch.arange(k, device=alpha.device), torch.arange(s - k, s, device=alpha.device)])
    ranks = ranks[None].expand(B, -1)
    theta = _sturm_bisect(alpha, beta, ranks)
    order = theta.abs().argsort(dim=1, descending=True, stable=True)[:, :k]
    theta = theta.gather(1, order)
    Y = _inverse_iteration(alpha, beta, theta)
    if rayleigh_ritz:  # orthonormal Ritz vectors, also inside clusters
        Z = torch.linalg.qr(Y).Q
        theta, W = torch.linalg.eigh(Z.mT @ _tridiag_apply(alpha, beta, Z))
        order = theta.abs().argsort(dim=1, descending=True, stable=True)
        theta, Y = theta.gather(1, order), Z @ W.gather(2, order[:, None, :].expand_as(W))
    TY = _tridiag_apply(alpha, beta, Y)
    theta = (Y * TY).sum(1)  # Rayleigh quotients
    res2 = (TY - theta[:, None, :] * Y).square().sum(1) + (beta[:, s - 1, None] * Y[:, s - 1]).square()
    return theta, Y, res2.sqrt()
