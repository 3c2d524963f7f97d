"""Top-k eigenpairs of many symmetric matrices at once, by batched Lanczos.

One Lanczos run per matrix, all in lockstep: every step is one batched matvec of any
symmetric operator (for a bilinear layer ``interaction.bilinear_matvec``: two GEMMs
through ``W_gate``, ``diag(c)`` and ``W_in``; Q is never formed), the three-term update, and one full reorthogonalisation pass against the
stored basis (two batched vector-matrix products in the layouts that stream the basis
at memory speed; after the three-term update one pass keeps the basis orthogonal to a
few float32 ulps). Each Q is scaled by the size of its first matvec, so that no norm
over- or underflows.

At each convergence check the tridiagonal matrices T get their top Ritz pairs from
:mod:`tl_bilinear.analysis.tridiagonal`. A direction has converged when each of its top-k Ritz pairs (by
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
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from tl_bilinear.analysis.tridiagonal import ritz
from tl_bilinear.checks import check_int

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


class _Batch:
    """Lanczos state of the directions still running.

    Attributes:
        index: [B] the directions (rows of the results) in the batch.
        V: [B, capacity, d] the Krylov bases.
        alpha, beta: [B, max_steps] T's diagonal and off-diagonal (of Q / scale).
        tnorm: [B] a running bound on ||T||.
        scale: [B] each Q's scale (set by the first step).
        live: [B] rows not yet finished (finished ones may run on until compaction).
        last_log, last_j: [B] each row's log residual ratio and step at its last check.
    """

    def __init__(self, index: Tensor, V: Tensor, alpha: Tensor, beta: Tensor, tnorm: Tensor):
        self.index, self.V, self.alpha, self.beta, self.tnorm = index, V, alpha, beta, tnorm
        n, device = len(index), index.device
        self.scale = tnorm.new_ones(n)
        self.live = torch.ones(n, dtype=torch.bool, device=device)
        self.last_log = torch.full((n,), float("nan"), dtype=torch.float64, device=device)
        self.last_j = torch.zeros(n, dtype=torch.float64, device=device)

    def keep(self, rows: Tensor, steps: int, capacity: int) -> _Batch:
        """The rows still running, with room for ``capacity`` basis vectors."""
        V = self.V.new_empty(len(rows), capacity, self.V.shape[2])
        V[:, : steps + 1] = self.V[rows, : steps + 1]
        batch = _Batch(self.index[rows], V, self.alpha[rows], self.beta[rows], self.tnorm[rows])
        batch.scale, batch.live = self.scale[rows], self.live[rows]
        batch.last_log, batch.last_j = self.last_log[rows], self.last_j[rows]
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


@dataclass
class _Solver:
    """One ``lanczos_topk`` call: its operator and settings, and the results it fills in.

    Attributes:
        matvec: the operator.
        d: the matrices' size.
        k: Ritz pairs converged per matrix (the k returned plus the guard pairs).
        steps, max_steps: Krylov dimension of the first check and of the last step.
        tol: relative residual tolerance.
        check_every: steps between checks (None: predicted).
        gen: the random generator of start vectors.
        values, vectors, converged: the results [n, k_out], [n, k_out, d], [n].
    """

    matvec: MatVec
    d: int
    k: int
    steps: int
    max_steps: int
    tol: float
    check_every: int | None
    gen: torch.Generator
    values: Tensor
    vectors: Tensor
    converged: Tensor

    def run(self, index: Tensor) -> None:
        """Lanczos for the matrices ``index`` until each converges or reaches ``max_steps``."""
        batch = self._start(index)
        j, check = 0, self.steps
        while True:
            _step(batch, self.matvec, j, last=j + 1 == self.max_steps, gen=self.gen)
            j += 1
            if j < check:
                continue
            rows, ratio = self._check(batch, j)
            done = (ratio <= 1) | (j == self.max_steps)
            logger.debug(
                "lanczos: %d steps, %d of %d checked converged (%d running)",
                j,
                int(done.sum()),
                len(rows),
                int(batch.live.sum()),
            )
            if done.any():
                self._store(batch, rows[done], j)
            if not batch.live.any():
                return
            gap = self._gap(batch, rows, ratio, done, j)
            check = min(self.max_steps, j + gap)
            # drop finished rows once they are worth a copy of the basis, or to make room
            if (~batch.live).sum() * 8 >= len(batch.live) or check + 1 > batch.V.shape[1]:
                batch = batch.keep(batch.live.nonzero()[:, 0], j, min(self.max_steps, check + max(gap, j // 2)) + 1)

    def _start(self, index: Tensor) -> _Batch:
        n, d, dtype, device = len(index), self.d, self.values.dtype, index.device
        V = torch.empty(n, min(self.max_steps, 4 * self.steps) + 1, d, dtype=dtype, device=device)
        V[:, 0] = _random_unit(n, d, None, self.gen, V)
        zeros = torch.zeros(n, self.max_steps, dtype=dtype, device=device)
        return _Batch(index, V, zeros, zeros.clone(), torch.zeros(n, dtype=dtype, device=device))

    def _check(self, batch: _Batch, j: int) -> tuple[Tensor, Tensor]:
        """The live rows checked and their worst residual ratio (<= 1: converged).

        A large batch is checked on a sample first; all live rows only once one of the
        sample has converged.
        """
        rows = batch.live.nonzero()[:, 0]
        if self.check_every is None and len(rows) > 2 * _SAMPLE and j < self.max_steps:
            rows = rows[torch.linspace(0, len(rows) - 1, _SAMPLE, device=rows.device).long()]
        for attempt in range(2):
            theta, _, res = ritz(batch.alpha[rows, :j], batch.beta[rows, :j], self.k)
            ratio = (res / _allowed(theta, self.tol)).masked_fill(res == 0, 0).amax(1).double()
            if attempt or len(rows) == int(batch.live.sum()) or not (ratio <= 1).any():
                break
            rows = batch.live.nonzero()[:, 0]
        return rows, ratio

    def _store(self, batch: _Batch, fin: Tensor, j: int) -> None:
        """Write the Ritz pairs of the finished rows ``fin`` into the results; they stop running."""
        n_out = self.values.shape[1]
        theta, Y, res = ritz(batch.alpha[fin, :j], batch.beta[fin, :j], self.k, rayleigh_ritz=True)
        X = torch.bmm(Y.mT.to(batch.V.dtype), batch.V[fin, :j])  # [r, k, d]
        i = batch.index[fin]
        self.values[i] = theta[:, :n_out].to(batch.V.dtype) * batch.scale[fin, None]
        self.vectors[i] = X[:, :n_out] / X[:, :n_out].norm(dim=2, keepdim=True)
        self.converged[i] = (res <= _allowed(theta, self.tol)).all(1)
        batch.live[fin] = False

    def _gap(self, batch: _Batch, rows: Tensor, ratio: Tensor, done: Tensor, j: int) -> int:
        """Steps to the next check: ``check_every``, or predicted from how fast the residuals fell."""
        log_ratio = ratio.log()
        gap = max(8, j // 4) if self.check_every is None else self.check_every
        rate = (batch.last_log[rows] - log_ratio) / (j - batch.last_j[rows])
        usable = ~done & torch.isfinite(log_ratio) & torch.isfinite(rate) & (rate > 0)
        if self.check_every is None and usable.any():
            predicted = (log_ratio[usable] / rate[usable].clamp_min(1e-3)).quantile(0.25).item()
            gap = int(min(max(predicted, 4, j // 16), max(8, j // 4)) + 0.5)
        batch.last_log[rows], batch.last_j[rows] = log_ratio, float(j)
        return gap


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
            ``Q_{index[j]} @ V[j]``, for any batch of symmetric operators (e.g.
            ``interaction.bilinear_matvec``).
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
    check_int("check_every", check_every, allow_none=True)
    if check_int("batch_size", batch_size, allow_none=True) is None:
        batch_size = max(1, 2**30 // (d * torch.finfo(dtype).bits // 8 * min(max_steps + 1, 4 * steps)))
    device = torch.device("cpu") if device is None else torch.device(device)
    values = torch.zeros(n, k, dtype=dtype, device=device)
    vectors = torch.zeros(n, k, d, dtype=dtype, device=device)
    converged = torch.ones(n, dtype=torch.bool, device=device)
    if k == 0:
        return values, vectors, converged
    gen = torch.Generator(device=device).manual_seed(seed)
    solver = _Solver(matvec, d, k_run, steps, max_steps, tol, check_every, gen, values, vectors, converged)
    for index in torch.arange(n, device=device).split(batch_size):
        solver.run(index)
    return values, vectors, converged
