"""Interaction matrices: for an output direction u, ``u · mlp(x) = xᵀ Q(u) x + constant``."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from tl_bilinear.analysis.directions import as_directions
from tl_bilinear.analysis.weights import BilinearWeights, compute_dtype, resolve_weights

#: Bytes of scratch memory one chunk of interaction matrices may use.
CHUNK_BYTES = 256 * 2**20


def hidden_coefficients(weights: BilinearWeights, directions: Tensor) -> Float[Tensor, "n d_mlp"]:
    """``c = W_out u`` for each direction: how much each hidden unit writes along u."""
    return directions @ weights.W_out.T


def bias_constant(weights: BilinearWeights, directions: Tensor) -> Float[Tensor, "n"]:
    """``u · (b_in W_out + b_out)``: the part of ``u · mlp(x)`` that does not depend on x.

    (Branch biases are not in here: they live in Q on the augmented input ``[x, 1]``.)
    """
    constant = directions.new_zeros(len(directions))
    if weights.b_in is not None:
        constant = constant + hidden_coefficients(weights, directions) @ weights.b_in.to(directions.dtype)
    if weights.b_out is not None:
        constant = constant + directions @ weights.b_out.to(directions.dtype)
    return constant


def default_chunk_size(weights: BilinearWeights, dtype: torch.dtype) -> int:
    """How many directions fit one chunk of ``CHUNK_BYTES`` scratch memory."""
    per_direction = weights.d_in * max(weights.d_mlp, weights.d_in) * torch.finfo(dtype).bits // 8
    return max(1, CHUNK_BYTES // per_direction)


def prepare(
    model: HookedTransformer | BilinearWeights, layer: int | None, directions: Tensor, dtype: torch.dtype | None
) -> tuple[BilinearWeights, Tensor]:
    """Resolve, augment and cast the weights, and validate the directions, for one analysis call."""
    weights = resolve_weights(model, layer)
    dtype = compute_dtype(weights, dtype)
    weights = weights.augmented().to(dtype)
    directions = as_directions(directions, weights.d_out).to(dtype=dtype, device=weights.W_gate.device)
    return weights, directions


def build_interaction_matrices(weights: BilinearWeights, coefficients: Tensor) -> Float[Tensor, "n d_in d_in"]:
    """``sym(W_gate diag(c) W_inᵀ)`` for each row c of ``coefficients`` [n, d_mlp], in one GEMM."""
    n, d_in = len(coefficients), weights.d_in
    scaled = weights.W_gate[None] * coefficients[:, None, :]  # [n, d_in, d_mlp]
    Q = (scaled.reshape(n * d_in, -1) @ weights.W_in.T).view(n, d_in, d_in)
    return (Q + Q.mT) / 2


def interaction_matrices(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    directions: Float[Tensor, "n d_model"] | Float[Tensor, "d_model"],
    *,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
) -> Float[Tensor, "n d_in d_in"]:
    """The symmetric interaction matrix ``Q(u) = sym(W_gate diag(W_out u) W_inᵀ)`` of each direction.

    ``u · mlp(x) = xᵀ Q(u) x + u · (b_in W_out + b_out)`` exactly, where x is the MLP's
    input (see ``mlp_input``). With branch biases (``BilinearWeights.b_pre``), Q acts on
    the augmented input ``[x, 1]`` and d_in = d_model + 1.

    Args:
        model: a bilinear HookedTransformer, or BilinearWeights (then layer is None).
        layer: the layer index.
        directions: [d_model] or [n, d_model] output directions.
        dtype: float32 or float64 (default: float64 for float64 models, else float32).
        chunk_size: directions built at once (default: about 256 MiB of scratch).

    Returns:
        [n, d_in, d_in] symmetric matrices.

    Raises:
        ValueError: if the layer is not bilinear or the directions have the wrong width.
        IndexError: if the layer is out of range.
    """
    weights, directions = prepare(model, layer, directions, dtype)
    chunk_size = chunk_size or default_chunk_size(weights, directions.dtype)
    coefficients = hidden_coefficients(weights, directions)
    return torch.cat(
        [build_interaction_matrices(weights, c) for c in coefficients.split(chunk_size)]
        or [coefficients.new_zeros(0, weights.d_in, weights.d_in)]
    )
