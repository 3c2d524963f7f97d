"""Interaction matrices: for an output direction u, ``u · mlp(x) = xᵀ Q(u) x + constant``.

Two ways to build many Q's, chosen by FLOPs:

- direct: ``Q(u) = sym(W_gate diag(W_out u) W_inᵀ)``, one GEMM per chunk of directions,
  ``2 d_in² d_mlp`` FLOPs per direction;
- packed: Q is linear in u, ``Q(u)_ij = Σ_o T[(i, j), o] u_o`` with the layer's tensor
  ``T[(i, j), o] = Σ_m ½ (W_gate[i, m] W_in[j, m] + W_in[i, m] W_gate[j, m]) W_out[m, o]``
  on the upper triangle i <= j only. T costs ``d_in² d_mlp d_out`` FLOPs once (the
  Khatri–Rao rows of a block of (i, j) pairs are elementwise products, then one GEMM with
  W_out), then every direction costs ``d_in² d_out`` (one GEMM ``U Tᵀ`` and a gather that
  unpacks both triangles). It wins once n exceeds about ``d_mlp d_out / (2 d_mlp - d_out)``
  directions (about 300 for ts-medium).

:func:`interaction_builder` makes that choice once per call, and resolves the chunk size
once, into an :class:`InteractionBuilder` that every consumer (``interaction_matrices``,
the dense eigendecomposition, ``spectrum``) iterates over. :func:`bilinear_matvec` is the
matrix-free alternative: ``Q(u) v`` without forming Q, for iterative eigensolvers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from tl_bilinear.analysis.directions import as_directions
from tl_bilinear.analysis.lanczos import MatVec
from tl_bilinear.analysis.weights import BilinearWeights, compute_dtype, resolve_weights
from tl_bilinear.checks import check_int
from tl_bilinear.compat import HookedTransformer

#: Bytes of scratch memory one chunk of interaction matrices may use.
CHUNK_BYTES = 256 * 2**20
#: Largest packed tensor T (bytes) the automatic choice builds; above it the direct route runs.
PACKED_BYTES = 1024 * 2**20
#: Rows of the Khatri–Rao product formed at once while building T.
PACKED_ROWS = 4096

Build = Literal["auto", "direct", "packed"]


def hidden_coefficients(weights: BilinearWeights, directions: Tensor) -> Float[Tensor, "n d_mlp"]:
    """``c = W_out u`` for each direction: how much each hidden unit writes along u."""
    return directions @ weights.W_out.T


def bias_constant(weights: BilinearWeights, directions: Tensor) -> Float[Tensor, n]:
    """``u · (b_in W_out + b_out)``: the part of ``u · mlp(x)`` that does not depend on x.

    (Branch biases are not in here: they live in Q on the augmented input ``[x, 1]``.)
    """
    constant = directions.new_zeros(len(directions))
    if weights.b_in is not None:
        constant = constant + hidden_coefficients(weights, directions) @ weights.b_in.to(directions.dtype)
    if weights.b_out is not None:
        constant = constant + directions @ weights.b_out.to(directions.dtype)
    return constant


def prepare(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    directions: Tensor,
    dtype: torch.dtype | None,
) -> tuple[BilinearWeights, Tensor]:
    """Resolve, augment and cast the weights, and validate the directions, for one analysis call."""
    weights = resolve_weights(model, layer)
    dtype = compute_dtype(weights, dtype)
    weights = weights.augmented().to(dtype)
    directions = as_directions(directions, weights.d_out).to(dtype=dtype, device=weights.W_gate.device)
    return weights, directions


def direct_matrices(weights: BilinearWeights, coefficients: Tensor) -> Float[Tensor, "n d_in d_in"]:
    """``sym(W_gate diag(c) W_inᵀ)`` for each row c of ``coefficients`` [n, d_mlp], in one GEMM."""
    n, d_in = len(coefficients), weights.d_in
    scaled = weights.W_gate[None] * coefficients[:, None, :]  # [n, d_in, d_mlp]
    Q = (scaled.reshape(n * d_in, weights.d_mlp) @ weights.W_in.T).view(n, d_in, d_in)
    return (Q + Q.mT) / 2


@dataclass(frozen=True)
class PackedInteractions:
    """The layer's interaction tensor on the upper triangle: ``Q(u)_ij = T[(i, j)] · u`` for i <= j.

    Attributes:
        T: [d_in (d_in + 1) / 2, d_out], rows in row-major upper-triangle order
            (``torch.triu_indices``).
        unpack: [d_in²] the row of T behind each entry of a row-major d_in x d_in matrix.
    """

    T: Float[Tensor, "pairs d_out"]
    unpack: Tensor

    @property
    def d_in(self) -> int:
        """Width of the matrices."""
        return int(round((8 * self.T.shape[0] + 1) ** 0.5 - 1) // 2)

    def matrices(
        self, directions: Float[Tensor, "n d_out"], out: Float[Tensor, "n d_in d_in"] | None = None
    ) -> Float[Tensor, "n d_in d_in"]:
        """``Q(u)`` for each direction: one GEMM onto the packed triangle, then a gather to both halves.

        Args:
            directions: [n, d_out], in T's dtype.
            out: optional contiguous [n, d_in, d_in] tensor to write into.

        Returns:
            [n, d_in, d_in] symmetric matrices (``out`` when given).
        """
        n, d = len(directions), self.d_in
        out = directions.new_empty(n, d, d) if out is None else out
        packed = directions @ self.T.T  # [n, pairs]
        torch.index_select(packed, 1, self.unpack, out=out.view(n, d * d))
        return out


def packed_interactions(weights: BilinearWeights, rows: int = PACKED_ROWS) -> PackedInteractions:
    """Build the layer's packed interaction tensor T (see the module docstring).

    Args:
        weights: the layer (already augmented and cast to the compute dtype).
        rows: Khatri–Rao rows formed at once (scratch memory ``rows × d_mlp``).

    Returns:
        The PackedInteractions.
    """
    W_gate, W_in, W_out = weights.W_gate, weights.W_in, weights.W_out
    d, m = W_gate.shape
    half_gate, half_in = W_gate / 2, W_in / 2
    T = W_out.new_empty(d * (d + 1) // 2, W_out.shape[1])
    block = W_out.new_empty(max(rows, d), m)
    start, i = 0, 0
    while i < d:  # a block of whole rows i of the triangle: pairs (i, j >= i)
        filled = 0
        while i < d and (filled == 0 or filled + d - i <= rows):
            pairs = block[filled : filled + d - i]  # ½ (W_gate[i] W_in[j] + W_in[i] W_gate[j]), j >= i
            torch.mul(half_in[i:], W_gate[i], out=pairs)
            pairs.addcmul_(half_gate[i:], W_in[i])
            filled, i = filled + d - i, i + 1
        torch.mm(block[:filled], W_out, out=T[start : start + filled])
        start += filled
    upper = torch.triu_indices(d, d, device=T.device)
    unpack = torch.empty(d * d, dtype=torch.long, device=T.device)
    pair = torch.arange(upper.shape[1], device=T.device)
    unpack[upper[0] * d + upper[1]] = pair
    unpack[upper[1] * d + upper[0]] = pair
    return PackedInteractions(T=T, unpack=unpack)


def packed_bytes(weights: BilinearWeights, dtype: torch.dtype) -> int:
    """Memory of the packed tensor T of this layer."""
    return weights.d_in * (weights.d_in + 1) // 2 * weights.d_out * torch.finfo(dtype).bits // 8


def packed_is_faster(weights: BilinearWeights, n: int, dtype: torch.dtype) -> bool:
    """Whether the packed route needs fewer FLOPs than the direct one for n directions, and T fits.

    Packed: ``d_in (d_in + 1) d_out (d_mlp + n)``; direct: ``2 n d_in² d_mlp`` (the
    packed route's unpacking and T's memory traffic are charged a 25% margin).
    """
    d, m, d_out = weights.d_in, weights.d_mlp, weights.d_out
    packed = d * (d + 1) * d_out * (m + n)
    direct = 2 * n * d * d * m
    return direct > 1.25 * packed and packed_bytes(weights, dtype) <= PACKED_BYTES


@dataclass(frozen=True)
class InteractionBuilder:
    """Builds the interaction matrices of a layer chunk by chunk, by a route chosen once.

    Attributes:
        weights: the layer (augmented and cast to the compute dtype).
        chunk_size: directions whose Q's are built at once.
        packed: the layer's packed tensor for the packed route; None for the direct route.
    """

    weights: BilinearWeights
    chunk_size: int
    packed: PackedInteractions | None = None

    def matrices(self, directions: Float[Tensor, "n d_out"], out: Tensor | None = None) -> Float[Tensor, "n d_in d_in"]:
        """The Q's of one chunk of directions (in the weights' dtype), written into ``out`` if given."""
        if self.packed is not None:
            return self.packed.matrices(directions, out=out)
        Q = direct_matrices(self.weights, hidden_coefficients(self.weights, directions))
        return Q if out is None else out.copy_(Q)

    def chunks(
        self, directions: Float[Tensor, "n d_out"], progress: bool = False, desc: str = "Q"
    ) -> Iterator[Float[Tensor, "chunk d_in d_in"]]:
        """Yield the Q's of ``chunk_size`` directions at a time, in order."""
        for part in tqdm(directions.split(self.chunk_size), desc=desc, disable=not progress, leave=False):
            yield self.matrices(part)

    def all(self, directions: Float[Tensor, "n d_out"]) -> Float[Tensor, "n d_in d_in"]:
        """The Q's of all directions, built chunk by chunk into one [n, d_in, d_in] tensor."""
        d = self.weights.d_in
        out = directions.new_empty(len(directions), d, d)
        for start in range(0, len(directions), self.chunk_size):
            part = directions[start : start + self.chunk_size]
            self.matrices(part, out=out[start : start + len(part)])
        return out


def interaction_builder(
    weights: BilinearWeights, n: int, build: Build = "auto", chunk_size: int | None = None
) -> InteractionBuilder:
    """Choose the route for n directions and the chunk size, once.

    Args:
        weights: the layer (augmented and cast to the compute dtype, see ``prepare``).
        n: how many directions will be built (the packed route pays off for many).
        build: "direct", "packed" or "auto" (packed when it takes fewer FLOPs and its
            tensor fits in ``PACKED_BYTES``; see :func:`packed_is_faster`).
        chunk_size: directions built at once (default: about ``CHUNK_BYTES`` of scratch
            and Q's per chunk, for the chosen route).

    Returns:
        The InteractionBuilder.

    Raises:
        ValueError: if ``build`` is unknown or ``chunk_size`` is not None or a positive int.
    """
    if build not in ("auto", "direct", "packed"):
        raise ValueError(f"build={build!r} must be 'auto', 'direct' or 'packed'")
    check_int("chunk_size", chunk_size, allow_none=True)
    dtype, d = weights.W_gate.dtype, weights.d_in
    packed = build == "packed" or (build == "auto" and packed_is_faster(weights, n, dtype))
    per_direction = d * (d + 1) // 2 + d * d if packed else d * max(weights.d_mlp, d)  # scratch + Q, elements
    chunk_size = chunk_size or max(1, CHUNK_BYTES // (per_direction * torch.finfo(dtype).bits // 8))
    return InteractionBuilder(weights, chunk_size, packed_interactions(weights) if packed else None)


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


def interaction_matrices(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    directions: Float[Tensor, "n d_model"] | Float[Tensor, d_model],
    *,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    build: Build = "auto",
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
        build: "direct" (one GEMM per chunk of directions), "packed" (the layer's packed
            tensor once, then one GEMM per chunk; see the module docstring) or "auto"
            (packed when it takes fewer FLOPs and its tensor fits in ``PACKED_BYTES``).

    Returns:
        [n, d_in, d_in] symmetric matrices.

    Raises:
        ValueError: if the layer is not bilinear, the directions have the wrong width,
            ``build`` is unknown or ``chunk_size`` is not a positive int.
        IndexError: if the layer is out of range.
    """
    weights, directions = prepare(model, layer, directions, dtype)
    return interaction_builder(weights, len(directions), build, chunk_size).all(directions)
