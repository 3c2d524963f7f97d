"""Eigendecomposition of interaction matrices: ``u · mlp(x) = Σ_i λ_i (v_i · x)² + constant``."""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.analysis.interaction import (
    InteractionBuilder,
    bias_constant,
    bilinear_matvec,
    hidden_coefficients,
    interaction_builder,
    prepare,
)
from tl_bilinear.analysis.lanczos import lanczos_topk
from tl_bilinear.analysis.weights import BilinearWeights
from tl_bilinear.checks import check_int
from tl_bilinear.compat import HookedTransformer


@dataclass(frozen=True)
class Eigendecomposition:
    """The top eigenpairs of the interaction matrices of n output directions.

    Attributes:
        eigenvalues: [n, k], sorted by |λ| descending. The sign says whether the
            eigenvector pushes the direction up (+) or down (−).
        eigenvectors: [n, k, d_in], unit norm; the sign of each is arbitrary (fixed here
            so its largest-magnitude entry is positive).
        directions: [n, d_out], the output directions u.
        constant: [n], ``u · (b_in W_out + b_out)``, the input-independent part.
        augmented: whether the eigenvectors act on ``[x, 1]`` (branch biases present).
        layer: the layer the decomposition came from, if known.
    """

    eigenvalues: Float[Tensor, "n k"]
    eigenvectors: Float[Tensor, "n k d_in"]
    directions: Float[Tensor, "n d_out"]
    constant: Float[Tensor, n]
    augmented: bool = False
    layer: int | None = None

    def __len__(self) -> int:
        return self.eigenvalues.shape[0]

    @property
    def k(self) -> int:
        """Number of eigenpairs kept per direction."""
        return self.eigenvalues.shape[1]

    @property
    def d_in(self) -> int:
        """Width of the eigenvectors (d_model, plus one when augmented)."""
        return self.eigenvectors.shape[2]

    def __getitem__(self, index) -> Eigendecomposition:
        """The decomposition of a subset of the directions (an int keeps the axis).

        Raises:
            IndexError: for an integer index outside ``[-n, n)``.
        """
        if not isinstance(index, (bool, slice, list, tuple)) and not (isinstance(index, Tensor) and index.ndim > 0):
            try:  # numpy and 0-d tensor integers too: indexing with them would drop the axis
                index = operator.index(index)
            except TypeError:
                pass
        if isinstance(index, int) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"direction index {index} is out of range for {n} directions")
            index = slice(index % n, index % n + 1)
        return replace(
            self,
            eigenvalues=self.eigenvalues[index],
            eigenvectors=self.eigenvectors[index],
            directions=self.directions[index],
            constant=self.constant[index],
        )

    def _input(self, x: Tensor) -> Tensor:
        width = self.d_in - self.augmented
        if x.shape[-1] != width and not (self.augmented and x.shape[-1] == self.d_in):
            raise ValueError(f"x has width {x.shape[-1]}, expected {width} (the MLP input width)")
        x = x.to(self.eigenvectors.dtype)
        if self.augmented and x.shape[-1] == width:
            x = torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)
        return x

    def projections(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... n k"]:
        """``v_i · x`` for each direction and eigenvector."""
        return torch.einsum("...d,nkd->...nk", self._input(x), self.eigenvectors)

    def contributions(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... n k"]:
        """``λ_i (v_i · x)²``: each eigenvector's signed share of ``u · mlp(x)``."""
        return self.eigenvalues * self.projections(x).square()

    def reconstruct(self, x: Float[Tensor, "... d_model"], k: int | None = None) -> Float[Tensor, "... n"]:
        """``Σ_{i<k} λ_i (v_i · x)² + constant``: exact for k = all eigenpairs.

        Raises:
            ValueError: if k is negative or more than the eigenpairs kept.
        """
        k = self.k if k is None else k
        self._check_k(k)
        return self.contributions(x)[..., :k].sum(-1) + self.constant

    def truncate(self, k: int) -> Eigendecomposition:
        """Keep only the top-k eigenpairs (by |λ|) of every direction."""
        self._check_k(k)
        return replace(self, eigenvalues=self.eigenvalues[:, :k], eigenvectors=self.eigenvectors[:, :k])

    def matrices(self, k: int | None = None) -> Float[Tensor, "n d_in d_in"]:
        """``Σ_{i<k} λ_i v_i v_iᵀ``: Q itself, or its best rank-k approximation (Frobenius)."""
        eig = self if k is None else self.truncate(k)
        return torch.einsum("nk,nki,nkj->nij", eig.eigenvalues, eig.eigenvectors, eig.eigenvectors)

    def _check_k(self, k: int) -> None:
        check_int("k", k, low=0, high=self.k)


def _magnitude_order(values: Tensor) -> Tensor:
    """Indices that sort each row of eigenvalues by |λ| descending (ties keep their order)."""
    return values.abs().argsort(dim=-1, descending=True, stable=True)


def _sort_by_magnitude(values: Tensor, vectors: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k of eigh output (vectors as columns) by |λ|, vectors as rows with a fixed sign."""
    order = _magnitude_order(values)[:, :k]
    values = values.gather(-1, order)
    vectors = vectors.gather(-1, order[:, None, :].expand(-1, vectors.shape[1], -1)).mT
    return values, canonical_sign(vectors)


def canonical_sign(vectors: Float[Tensor, "... d"]) -> Float[Tensor, "... d"]:
    """Flip each vector so that its largest-magnitude entry is positive."""
    pivot = vectors.gather(-1, vectors.abs().argmax(dim=-1, keepdim=True))
    return vectors * torch.where(pivot < 0, -1.0, 1.0).to(vectors.dtype)


def _dense_topk(builder: InteractionBuilder, directions: Tensor, k: int, progress: bool) -> tuple[Tensor, Tensor]:
    """Top-k eigenpairs by |λ| of each direction's Q, built chunk by chunk and run through ``eigh``."""
    values, vectors = [], []
    for Q in builder.chunks(directions, progress, "eigh"):
        v, V = _sort_by_magnitude(*torch.linalg.eigh(Q), k)
        values.append(v)
        vectors.append(V)
    if not values:
        return directions.new_zeros(0, k), directions.new_zeros(0, k, builder.weights.d_in)
    return torch.cat(values), torch.cat(vectors)


def lanczos_is_faster(k: int, d_in: int) -> bool:
    """The automatic choice: matrix-free Lanczos when few eigenpairs of a wide layer are wanted.

    Measured (benchmarks/bench_eigen.py: ts-medium shape, d_in 512, d_mlp 2048, top 16 of
    1024 directions, 2 cores): it beats building Q (packed, ~2.7 s) and then dense eigh,
    and a block Krylov Rayleigh-Ritz on the built Q on flat spectra (random weights;
    6.4 s vs 18 s: block Krylov needs a polynomial degree near 100) and on low-rank ones
    (1.6 s vs 5.4 s).
    """
    return d_in >= 64 and 4 * k <= d_in


def eigendecompose(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    directions: Float[Tensor, "n d_model"] | Float[Tensor, d_model],
    k: int | None = None,
    *,
    method: Literal["auto", "dense", "lanczos"] = "auto",
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Eigendecomposition:
    """Eigendecompose the interaction matrix of each output direction.

    Args:
        model: a bilinear HookedTransformer, or BilinearWeights (then layer is None).
        layer: the layer index.
        directions: [d_model] or [n, d_model] output directions (see ``unembed_directions``).
        k: eigenpairs to keep per direction, largest |λ| first; None keeps all.
        method: "dense" builds each Q and runs ``torch.linalg.eigh``; "lanczos" runs a
            batched matrix-free Lanczos that never forms Q and checks convergence, falling
            back to the dense route for any direction that did not converge; "auto" uses Lanczos when
            ``4 k <= d_in`` and ``d_in >= 64`` (see ``lanczos_is_faster``), else dense. Every
            route that builds Q picks the faster build for the number of directions
            (``interaction.packed_is_faster``). No route returns unconverged pairs.
        dtype: float32 or float64 (default: float64 for float64 models, else float32).
        chunk_size: directions per dense chunk (default: about 256 MiB of scratch).
        tol: Lanczos relative residual tolerance (default: the solver's,
            1e-5 in float32 and 1e-9 in float64, relative to the largest |λ|).
        seed: start-vector seed.
        progress: show a progress bar over dense chunks.

    Returns:
        The Eigendecomposition.

    Raises:
        ValueError: if the layer is not bilinear, the directions have the wrong width,
            k is out of range, the method is unknown, or ``chunk_size`` is not a positive int.
        IndexError: if the layer is out of range.
    """
    weights, directions = prepare(model, layer, directions, dtype)
    d_in = weights.d_in
    k = d_in if check_int("k", k, low=0, high=d_in, allow_none=True) is None else k
    if method not in ("auto", "dense", "lanczos"):
        raise ValueError(f"method={method!r} must be 'auto', 'dense' or 'lanczos'")
    check_int("chunk_size", chunk_size, allow_none=True)
    if method == "lanczos" or (method == "auto" and lanczos_is_faster(k, d_in)):
        values, vectors, converged = lanczos_topk(
            bilinear_matvec(weights.W_gate, weights.W_in, hidden_coefficients(weights, directions)),
            len(directions),
            d_in,
            k,
            dtype=directions.dtype,
            device=directions.device,
            seed=seed,
            **({} if tol is None else {"tol": tol}),
        )
        vectors = canonical_sign(vectors)
        if not converged.all():
            todo = (~converged).nonzero().squeeze(1)
            builder = interaction_builder(weights, len(todo), chunk_size=chunk_size)
            values[todo], vectors[todo] = _dense_topk(builder, directions[todo], k, progress)
    else:
        builder = interaction_builder(weights, len(directions), chunk_size=chunk_size)
        values, vectors = _dense_topk(builder, directions, k, progress)
    return Eigendecomposition(
        eigenvalues=values,
        eigenvectors=vectors,
        directions=directions,
        constant=bias_constant(weights, directions),
        augmented=weights.augmented_input,
        layer=weights.layer,
    )


def spectrum(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    directions: Float[Tensor, "n d_model"] | Float[Tensor, d_model],
    *,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> Float[Tensor, "n d_in"]:
    """All eigenvalues of each direction's Q (no eigenvectors: cheaper), sorted by |λ| descending.

    Raises:
        ValueError / IndexError: as ``eigendecompose``.
    """
    weights, directions = prepare(model, layer, directions, dtype)
    out = []
    for Q in interaction_builder(weights, len(directions), chunk_size=chunk_size).chunks(
        directions, progress, "eigvalsh"
    ):
        values = torch.linalg.eigvalsh(Q)
        out.append(values.gather(-1, _magnitude_order(values)))
    return torch.cat(out) if out else directions.new_zeros(0, weights.d_in)
