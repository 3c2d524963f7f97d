"""Top-k eigenpairs of many symmetric matrices at once, by batched Lanczos.

One Lanczos run per matrix, all in lockstep: every step is one batched matvec (for a
bilinear layer two GEMMs through ``W_gate``, ``diag(c)`` and ``W_in``; Q is never
formed), the three-term update, and one full reorthogonalisation pass against the
stored basis (two batched vector-matrix products in the layouts that stream the basis
at memory speed; after the three-term update one pass keeps the basis orthogonal to a
few float32 ulps). Each Q is scaled by the size of its first matvec, so that no norm
over- or underflows.

At each convergence check the tridiagonal matrices T get their extreme Ritz values by
batched Sturm multisection and their Ritz vectors by inverse iteration, vectorised over
matrices in torch (a dense ``eigh`` of a thousand 100 x 100 matrices costs more than
the Lanczos steps). A direction has converged when each of its top-k Ritz pairs (by
|θ|) has

    ||Q x - θ x||² = ||T y - θ y||² + (β_s y_s)²  <=  (tol · max(|θ|, FLOOR · max|θ|))²

(x = V y: the exact residual for an orthonormal basis V; the second term is the
classical Lanczos estimate, the first is zero for an exact eigenvector of T). The bound
is relative to each pair's own |θ| (so a small eigenvalue among the top k is as accurate,
relatively, as the largest), but never tighter than ``FLOOR`` times the largest |θ| (so
eigenvalues near zero, e.g. of a rank-deficient Q, still converge). Converged
directions leave the batch; the rest continue their own Krylov bases (``matvec`` gets
the index of the directions still running) up to ``max_steps``, with the next check
predicted from how fast the residuals fell. A Krylov space that becomes invariant
(β ≈ 0, e.g. a rank-deficient Q) restarts from a random vector orthogonal to the basis.

Limitation: in exact arithmetic one start vector sees one vector per eigenspace. The
other copies of a repeated eigenvalue enter through rounding and are found when they
stand apart from the rest of the spectrum (tested), or after a restart; this is not
guaranteed for a repeated eigenvalue inside a dense part of the spectrum. Q of real or
random weights has no repeated eigenvalues except zero, which the restarts handle.
Likewise a start vector with a tiny component along one of the top eigenvectors finds
it late; the solver converges a few guard pairs beyond the k it returns so that such an
eigenvalue is not skipped (see :func:`guard_pairs`), which makes a skip rare, not
impossible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

logger = logging.getLogger(__name__)

#: A batched matvec: ``matvec(V, index)[j] = Q[index[j]] @ V[j]``.
MatVec = Callable[[Float[Tensor, "n_sub d"], Int[Tensor, "n_sub"]], Float[Tensor, "n_sub d"]]

#: Default relative residual tolerance, per dtype.
DEFAULT_TOL = {torch.float32: 1e-5, torch.float64: 1e-9}

#: The loosest tolerance accepted (measured: tol=0.1 returned wrong top-k sets on a trained model).
MAX_TOL = 1e-2

#: Residuals are measured against max(|θ_i|, FLOOR · max|θ|).
FLOOR = 0.1


def _allowed(theta: Tensor, tol: float) -> Tensor:
    """The residual each Ritz pair may have: ``tol · max(|θ_i|, FLOOR · max|θ|)`` ([r, k])."""
    magnitude = theta.abs()
    return tol * torch.maximum(magnitude, FLOOR * magnitude.amax(1, keepdim=True))


def bilinear_matvec(W_gate: Float[Tensor, "d m"], W_in: Float[Tensor, "d m"], C: Float[Tensor, "n m"]) -> MatVec:
    """The matrix-free matvec of ``Q_n = sym(W_gate diag(C[n]) W_inᵀ)``.

    ``Q_n v = ½ (W_gate (C[n] ⊙ (W_inᵀ v)) + W_in (C[n] ⊙ (W_gateᵀ v)))``, computed for
    a batch of vectors as two GEMMs: ``V @ [W_in | W_gate]`` -> [n_sub, 2m], scaled by
    the coefficients, then ``@ ½[W_gate | W_in]ᵀ`` -> [n_sub, d].

    Args:
        W_gate: [d, m] gate weights (TransformerLens ``blocks[L].mlp.W_gate``).
        W_in: [d, m] linear-branch weights (``blocks[L].mlp.W_in``).
        C: [n, m] hidden coefficients, one row ``W_out u`` per direction u.

    Returns:
        ``matvec(V [n_sub, d], index [n_sub]) -> [n_sub, d]`` with row j = ``Q_{index[j]} V[j]``.

    Raises:
        ValueError: if the shapes do not match.
    """
    if W_gate.ndim != 2 or W_gate.shape != W_in.shape or C.ndim != 2 or C.shape[1] != W_gate.shape[1]:
        raise ValueError(
            f"need W_gate, W_in [d, m] and C [n, m]; got W_gate {tuple(W_gate.shape)}, "
            f"W_in {tuple(W_in.shape)}, C {tuple(C.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(W_gate.dtype, W_in.dtype), C.dtype)
    m = W_gate.shape[1]
    W_gate, W_in, C = W_gate.detach().to(dtype), W_in.detach().to(dtype), C.detach().to(dtype)
    W_up = torch.cat([W_in, W_gate], dim=1)  # [d, 2m]
    W_down = (torch.cat([W_gate, W_in], dim=1) / 2).T.contiguous()  # [2m, d]

    gathered: list = [None, -1, None]  # the last index, its version, its rows of C (Lanczos reuses them)

    def matvec(V: Tensor, index: Tensor) -> Tensor:
        if gathered[0] is not index or gathered[1] != index._version:
            gathered[:] = index, index._version, C.index_select(0, index)[:, None, :]
        hidden = V.to(dtype) @ W_up  # [n_sub, 2m]: (W_inᵀ v, W_gateᵀ v)
        hidden.view(len(V), 2, m).mul_(gathered[2])
        return hidden @ W_down  # ½ (W_gate (c ⊙ W_inᵀ v) + W_in (c ⊙ W_gateᵀ v))

    return matvec


# ----------------------------------------------------------------------------------
# Ritz pairs of batched symmetric tridiagonal matrices (float64, vectorised over B).
# alpha [B, s] is the diagonal, beta [B, s] the off-diagonal with beta[:, s-1] the
# residual norm β_s of the Lanczos step (not part of T).


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


def _ritz(alpha: Tensor, beta: Tensor, k: int, rayleigh_ritz: bool = False) -> tuple[Tensor, Tensor, Tensor]:
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


# ----------------------------------------------------------------------------------
# The batched Lanczos iteration.


class _Batch:
    """Lanczos state of the directions still running: basis, T's entries, their index,
    and the scale of each Q (T is of Q / scale)."""

    def __init__(self, index: Tensor, V: Tensor, alpha: Tensor, beta: Tensor, tnorm: Tensor):
        self.index, self.V, self.alpha, self.beta, self.tnorm = index, V, alpha, beta, tnorm

    def keep(self, rows: Tensor, steps: int, capacity: int) -> _Batch:
        """The rows still running, with room for ``capacity`` basis vectors."""
        V = self.V.new_empty(len(rows), capacity, self.V.shape[2])
        V[:, : steps + 1] = self.V[rows, : steps + 1]
        batch = _Batch(self.index[rows], V, self.alpha[rows], self.beta[rows], self.tnorm[rows])
        batch.scale = self.scale[rows]
        return batch


def _random_unit(n: int, d: int, basis: Tensor | None, gen: torch.Generator, like: Tensor) -> Tensor:
    """Random unit vectors [n, d], orthogonal to ``basis`` [n, j, d] (twice Gram-Schmidt)."""
    r = torch.randn(n, d, generator=gen, dtype=like.dtype, device=like.device)
    for _ in range(2 if basis is not None else 0):
        r = r - torch.bmm(torch.bmm(r[:, None, :], basis.mT), basis)[:, 0]
    return r / r.norm(dim=1, keepdim=True).clamp_min(torch.finfo(r.dtype).tiny)


def _step(batch: _Batch, matvec: MatVec, j: int, last: bool, gen: torch.Generator) -> None:
    """Lanczos step j: T[j, j], β_j and (unless ``last``) basis vector j + 1."""
    w = matvec(batch.V[:, j], batch.index)  # [B, d]
    if j == 0:  # run on Q / scale, so that no norm over- or underflows
        peak = w.abs().amax(1)
        batch.scale = peak.masked_fill_(~(peak > 0), 1.0)
    w.div_(batch.scale[:, None])
    V = batch.V
    v = V[:, j]
    beta_prev = batch.beta[:, j - 1] if j > 0 else torch.zeros_like(batch.tnorm)
    if j > 0:
        w.addcmul_(beta_prev[:, None], V[:, j - 1], value=-1)
    a = torch.linalg.vecdot(w, v)
    w.addcmul_(a[:, None], v, value=-1)
    basis = V[:, : j + 1]  # full reorthogonalisation (the local terms above were the big ones)
    h = torch.bmm(w[:, None, :], basis.mT)  # [B, 1, j + 1]
    w = torch.baddbmm(w[:, None, :], h, basis, alpha=-1)[:, 0]
    a += h[:, 0, j]
    b = w.norm(dim=1)
    batch.alpha[:, j], batch.beta[:, j] = a, b
    torch.maximum(batch.tnorm, a.abs() + b + beta_prev, out=batch.tnorm)
    if last:
        return
    torch.div(w, b.clamp_min(torch.finfo(b.dtype).tiny)[:, None], out=V[:, j + 1])
    broken = b <= _BREAKDOWN * torch.finfo(b.dtype).eps * batch.tnorm
    if broken.any():  # invariant Krylov space: β_j = 0 and a fresh direction
        rows = broken.nonzero()[:, 0]
        batch.beta[rows, j] = 0
        V[rows, j + 1] = _random_unit(len(rows), V.shape[2], V[rows, : j + 1], gen, V)


#: β below this many epsilons of ||T|| counts as an invariant Krylov space.
_BREAKDOWN = 32


def default_steps(k: int, d: int) -> int:
    """The Krylov dimension of the first convergence check: ``min(d, max(2k, 32))``."""
    return min(d, max(2 * k, 32))


def guard_pairs(k: int) -> int:
    """Ritz pairs converged beyond the k returned: ``max(2, k // 8)``.

    A start vector with a tiny component along one of the top-k eigenvectors finds that
    eigenvector late; stopping as soon as the current top k have converged can then skip
    it and return the (k+1)-th eigenvalue in its place. Converging a few more pairs first
    makes that rare (measured on the trained demo model, top 16 of 1024 directions, four
    layers, three seeds: 1 skipped eigenvalue in 12,288 runs without guard pairs, none
    with 2, for 7% more matvecs).
    """
    return max(2, k // 8)


#: Rows looked at first in a convergence check of a large batch (the rest only if one has converged).
_SAMPLE = 64


def _run(
    matvec: MatVec,
    index: Tensor,
    d: int,
    k: int,
    dtype: torch.dtype,
    steps: int,
    max_steps: int,
    tol: float,
    check_every: int | None,
    gen: torch.Generator,
    out: tuple[Tensor, Tensor, Tensor],
) -> None:
    """Lanczos for the matrices ``index`` until each converges or reaches max_steps.

    ``k`` pairs are converged; the first ``values.shape[1]`` of them are kept.
    """
    values, vectors, converged = out
    n_out = values.shape[1]
    n, device = len(index), index.device
    V = torch.empty(n, min(max_steps, 4 * steps) + 1, d, dtype=dtype, device=device)
    V[:, 0] = _random_unit(n, d, None, gen, V)
    zeros = torch.zeros(n, max_steps, dtype=dtype, device=device)
    batch = _Batch(index, V, zeros, zeros.clone(), torch.zeros(n, dtype=dtype, device=device))
    live = torch.ones(n, dtype=torch.bool, device=device)  # finished rows may run on until compaction
    last_log = torch.full((n,), float("nan"), dtype=torch.float64, device=device)  # at the last check ...
    last_j = torch.zeros(n, dtype=torch.float64, device=device)  # ... of each row
    j, check = 0, steps
    while True:
        _step(batch, matvec, j, last=j + 1 == max_steps, gen=gen)
        j += 1
        if j < check:
            continue
        rows = live.nonzero()[:, 0]
        if check_every is None and len(rows) > 2 * _SAMPLE and j < max_steps:
            rows = rows[torch.linspace(0, len(rows) - 1, _SAMPLE, device=device).long()]  # a sample first
        for attempt in range(2):
            theta, _, res = _ritz(batch.alpha[rows, :j], batch.beta[rows, :j], k)
            ratio = (res / _allowed(theta, tol)).masked_fill(res == 0, 0).amax(1).double()  # <= 1: converged
            if attempt or len(rows) == int(live.sum()) or not (ratio <= 1).any():
                break
            rows = live.nonzero()[:, 0]  # someone in the sample converged: check them all
        done = (ratio <= 1) | (j == max_steps)
        logger.debug(
            "lanczos: %d steps, %d of %d checked converged (%d running)", j, int(done.sum()), len(rows), int(live.sum())
        )
        if done.any():
            fin = rows[done]
            theta, Y, res = _ritz(batch.alpha[fin, :j], batch.beta[fin, :j], k, rayleigh_ritz=True)
            X = torch.bmm(Y.mT.to(dtype), batch.V[fin, :j])  # [r, k, d]
            i = batch.index[fin]
            values[i] = theta[:, :n_out].to(dtype) * batch.scale[fin, None]
            vectors[i] = X[:, :n_out] / X[:, :n_out].norm(dim=2, keepdim=True)
            converged[i] = (res <= _allowed(theta, tol)).all(1)
            live[fin] = False
        if not live.any():
            return
        log_ratio = ratio.log()
        gap = max(8, j // 4) if check_every is None else check_every
        rate = (last_log[rows] - log_ratio) / (j - last_j[rows])
        usable = ~done & torch.isfinite(log_ratio) & torch.isfinite(rate) & (rate > 0)
        if check_every is None and usable.any():  # predict from the residuals' decay
            predicted = (log_ratio[usable] / rate[usable].clamp_min(1e-3)).quantile(0.25).item()
            gap = int(min(max(predicted, 4, j // 16), max(8, j // 4)) + 0.5)
        last_log[rows], last_j[rows] = log_ratio, float(j)
        check = min(max_steps, j + gap)
        # drop finished rows once they are worth a copy of the basis, or to make room
        if (~live).sum() * 8 >= len(live) or check + 1 > batch.V.shape[1]:
            keep = live.nonzero()[:, 0]
            batch = batch.keep(keep, j, min(max_steps, check + max(gap, j // 2)) + 1)
            live, last_log, last_j = live[keep], last_log[keep], last_j[keep]


@torch.no_grad()
def lanczos_topk(
    matvec: MatVec,
    n: int,
    d: int,
    k: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    steps: int | None = None,
    max_steps: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    check_every: int | None = None,
    batch_size: int | None = None,
) -> tuple[Float[Tensor, "n k"], Float[Tensor, "n k d"], Bool[Tensor, n]]:
    """The k eigenpairs of largest |λ| of n symmetric d x d matrices, given only matvecs.

    Args:
        matvec: ``matvec(V [n_sub, d], index [n_sub]) -> [n_sub, d]``, row j being
            ``Q_{index[j]} @ V[j]`` (see :func:`bilinear_matvec`).
        n: number of matrices.
        d: their size.
        k: eigenpairs per matrix, 0 <= k <= d.
        dtype: float32 or float64 (the basis, T and the results).
        device: where to compute (default: CPU).
        steps: Krylov dimension of the first convergence check (default
            :func:`default_steps`).
        max_steps: Krylov dimension at which the remaining directions stop (default d,
            where Lanczos is exact).
        tol: relative residual tolerance: converged means
            ``||Q v - θ v|| <= tol max(|θ|, FLOOR max|θ|)`` for each of the k pairs and
            :func:`guard_pairs` more, which bounds each eigenvalue's error by that much (default 1e-5 in float32, 1e-9
            in float64).
        seed: seed of the random start vectors.
        check_every: steps between convergence checks (default: predicted from how
            fast the residuals fell since the previous check).
        batch_size: matrices run together (default: a Krylov basis of about 1 GiB).

    Returns:
        eigenvalues [n, k] sorted by |λ| descending; eigenvectors [n, k, d], unit norm;
        converged [n]: False where a pair missed ``tol`` at ``max_steps`` (its values
        are then the best approximations found, not to be trusted).

    Raises:
        ValueError: if k, steps, max_steps, tol, check_every, batch_size or dtype are
            out of range.
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype} must be torch.float32 or torch.float64")
    if n < 0 or d < 1 or not 0 <= k <= d:
        raise ValueError(f"need n >= 0, d >= 1 and 0 <= k <= d; got n={n}, d={d}, k={k}")
    max_steps = d if max_steps is None else max_steps
    if not k <= max_steps <= d or max_steps < 1:
        raise ValueError(f"max_steps={max_steps} must lie in [max(k, 1), d={d}] (k={k})")
    k_run = min(k + guard_pairs(k), max_steps)  # converged; the top k of them are returned
    steps = min(default_steps(k_run, d) if steps is None else steps, max_steps)
    if steps < max(k, 1):
        raise ValueError(f"steps={steps} must be at least max(k, 1)={max(k, 1)}")
    steps = max(steps, k_run)
    tol = DEFAULT_TOL[dtype] if tol is None else tol
    if not 0 < tol <= MAX_TOL:
        raise ValueError(
            f"tol={tol} must lie in (0, {MAX_TOL}]: a looser residual no longer pins down which "
            "eigenvalues are the top k"
        )
    if check_every is not None and check_every < 1:
        raise ValueError(f"check_every={check_every} must be >= 1")
    itemsize = torch.finfo(dtype).bits // 8
    if batch_size is None:
        batch_size = max(1, 2**30 // (d * itemsize * min(max_steps + 1, 4 * steps)))
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    device = torch.device("cpu") if device is None else torch.device(device)
    values = torch.zeros(n, k, dtype=dtype, device=device)
    vectors = torch.zeros(n, k, d, dtype=dtype, device=device)
    converged = torch.ones(n, dtype=torch.bool, device=device)
    if k == 0:
        return values, vectors, converged
    gen = torch.Generator(device=device).manual_seed(seed)
    for index in torch.arange(n, device=device).split(batch_size):
        _run(matvec, index, d, k_run, dtype, steps, max_steps, tol, check_every, gen, (values, vectors, converged))
    return values, vectors, converged
