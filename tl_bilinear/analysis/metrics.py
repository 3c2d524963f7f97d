"""Spectrum metrics and the HOSVD of a layer restricted to output directions (paper §3.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.analysis.interaction import hidden_coefficients, interaction_matrices, prepare
from tl_bilinear.analysis.weights import BilinearWeights
from tl_bilinear.checks import check_int
from tl_bilinear.compat import HookedTransformer


def _relative_magnitudes(eigenvalues: Tensor) -> Tensor:
    """``|λ| / max|λ|`` per row, in at least float32.

    Both metrics are scale-free; without this their squares under- or overflow for
    |λ| below about 1e-19 or above 1e19 in float32 (and near 1e-3 or 1e2 in float16).
    """
    magnitudes = eigenvalues.to(torch.promote_types(eigenvalues.dtype, torch.float32)).abs()
    if magnitudes.shape[-1] == 0:
        return magnitudes
    peak = magnitudes.amax(-1, keepdim=True)
    return magnitudes / torch.where(peak > 0, peak, torch.ones_like(peak))


def effective_rank(eigenvalues: Float[Tensor, "... k"]) -> Float[Tensor, ...]:
    """``(Σ|λ|)² / Σλ²``: 1 for a rank-one Q, k for k equal-magnitude eigenvalues, 0 for Q = 0."""
    magnitudes = _relative_magnitudes(eigenvalues)
    l1 = magnitudes.sum(-1)
    l2 = magnitudes.square().sum(-1)
    return torch.where(l2 > 0, l1.square() / l2.clamp_min(torch.finfo(l2.dtype).tiny), 0.0)


def topk_mass(eigenvalues: Float[Tensor, "... k"], k: int) -> Float[Tensor, ...]:
    """Share of ``‖Q‖_F² = Σλ²`` held by the top-k eigenvalues by |λ| (1 − the rank-k error²).

    Raises:
        ValueError: if k is negative.
    """
    check_int("k", k, low=0)
    squares = _relative_magnitudes(eigenvalues).square().sort(dim=-1, descending=True).values
    total = squares.sum(-1)
    return torch.where(total > 0, squares[..., :k].sum(-1) / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)


@dataclass(frozen=True)
class HOSVD:
    """The SVD of the layer's [n, d_in²] tensor restricted to n output directions.

    Component r is the interaction matrix ``Q(output_directions[r]) / singular_values[r]``,
    because Q is linear in u: eigendecompose ``output_directions`` to read each component.

    Attributes:
        singular_values: [r], descending.
        coefficients: [r, n], the left singular vectors (weights over the given directions).
        output_directions: [r, d_out], ``Σ_j coefficients[r, j] directions[j]``.
    """

    singular_values: Float[Tensor, r]
    coefficients: Float[Tensor, "r n"]
    output_directions: Float[Tensor, "r d_out"]

    def component_matrices(
        self, model: HookedTransformer | BilinearWeights, layer: int | None
    ) -> Float[Tensor, "r d_in d_in"]:
        """The unit-Frobenius-norm right singular vectors as symmetric [d_in, d_in] matrices."""
        Q = interaction_matrices(model, layer, self.output_directions, dtype=self.singular_values.dtype)
        return Q / self.singular_values[:, None, None]


def hosvd(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    directions: Float[Tensor, "n d_model"],
    k: int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> HOSVD:
    """HOSVD of a layer's interaction tensor restricted to output directions (paper §3.3).

    Never forms the [n, d_in²] tensor: its Gram matrix is ``C K Cᵀ`` with ``C = U W_outᵀ``
    and ``K = ½[(W_gateᵀW_gate)⊙(W_inᵀW_in) + (W_gateᵀW_in)⊙(W_inᵀW_gate)]``, the Gram
    matrix of the hidden units' symmetric outer products.

    Args:
        model: a bilinear HookedTransformer, or BilinearWeights (then layer is None).
        layer: the layer index.
        directions: [n, d_model] output directions (e.g. the unembeddings of a vocabulary).
        k: components to keep (default: all non-zero, at most n).
        dtype: computation dtype (float64 by default: the Gram route squares the condition number).

    Returns:
        The HOSVD components, largest singular value first.

    Raises:
        ValueError: as ``interaction_matrices``, or if k is not None or a non-negative int.
        IndexError: as ``interaction_matrices``.
    """
    check_int("k", k, low=0, allow_none=True)
    weights, U = prepare(model, layer, directions, dtype)
    W_gate, W_in = weights.W_gate, weights.W_in
    K = ((W_gate.T @ W_gate) * (W_in.T @ W_in) + (W_gate.T @ W_in) * (W_in.T @ W_gate)) / 2
    C = hidden_coefficients(weights, U)
    gram = C @ K @ C.T
    values, vectors = torch.linalg.eigh((gram + gram.T) / 2)
    values, vectors = values.flip(0), vectors.flip(1)
    keep = values > values[:1].clamp_min(0) * len(values) * torch.finfo(dtype).eps
    if k is not None:
        keep[k:] = False
    values, vectors = values[keep], vectors[:, keep]
    singular = values.sqrt()
    coefficients = vectors.T
    return HOSVD(singular_values=singular, coefficients=coefficients, output_directions=coefficients @ U)
