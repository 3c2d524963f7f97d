"""How well the top few eigenvectors of Q(u) predict an output feature (paper §5, Fig. 9).

For output feature f with encoder column u, its pre-activation on MLP output y is
``u · (y − b_dec) = Σ_i λ_i (v_i · x)² + c − u · b_dec`` exactly; keeping the top k
eigenpairs gives ŷ_k. The Pearson correlation of ŷ_k with the actual pre-activation, over
the tokens where the feature is active, measures how low-rank the feature is.
Statistics are accumulated in float64 per (feature, k), so memory does not grow with tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.analysis import Eigendecomposition, eigendecompose, mlp_input, mlp_input_hook_names
from tl_bilinear.analysis.dictionary import as_dictionary
from tl_bilinear.compat import HookedTransformer

#: Features active on at most this many tokens are excluded (and reported).
MIN_ACTIVE = 10


@dataclass(frozen=True)
class LowRankCorrelation:
    """Correlation of rank-k approximations with output features' actual pre-activations.

    Attributes:
        ks: [K] the ranks, 1..K.
        features: [m] the features included (more than ``min_active`` active tokens, varying).
        correlation: [m, K] Pearson correlation at each k over each feature's active tokens.
        active_counts: [n] active tokens of every feature asked for.
        all_features: [n] every feature asked for.
        excluded: [e] features left out (too few active tokens, or constant there).
        max_abs_error: [m] ``max |y − ŷ_K|`` over active tokens at the largest k (≈ 0 when K = d_in).
    """

    ks: Int[Tensor, " K"]
    features: Int[Tensor, " m"]
    correlation: Float[Tensor, "m K"]
    active_counts: Int[Tensor, " n"]
    all_features: Int[Tensor, " n"]
    excluded: Int[Tensor, " e"]
    max_abs_error: Float[Tensor, " m"]

    def mean_curve(self) -> Float[Tensor, " K"]:
        """Mean correlation over the included features at each k (Fig. 9A)."""
        return self.correlation.mean(0)

    def at(self, k: int) -> Float[Tensor, " m"]:
        """The per-feature correlations at rank k (Fig. 9B is their histogram at k = 2).

        Raises:
            ValueError: if k is not one of ``ks``.
        """
        if not 1 <= k <= len(self.ks):
            raise ValueError(f"k={k} must be in 1..{len(self.ks)}")
        return self.correlation[:, k - 1]

    def fraction_above(self, k: int, threshold: float = 0.75) -> float:
        """Share of the included features whose correlation at rank k exceeds ``threshold``."""
        values = self.at(k)
        return float((values > threshold).float().mean()) if len(values) else float("nan")


def _batches(tokens) -> Iterable[Tensor]:
    if isinstance(tokens, Tensor):
        return tokens.split(8) if tokens.ndim == 2 else [tokens[None]]
    return tokens


@torch.no_grad()
def low_rank_correlation(
    model: HookedTransformer,
    layer: int,
    out_features: object,
    tokens: Int[Tensor, "batch pos"] | Iterable[Int[Tensor, "batch pos"]],
    *,
    feature_idx: int | list[int] | Tensor | None = None,
    max_k: int = 64,
    min_active: int = MIN_ACTIVE,
    eigendecomposition: Eigendecomposition | None = None,
    token_chunk: int = 256,
) -> LowRankCorrelation:
    """Pearson correlation of rank-k approximations with output features' pre-activations, k = 1..max_k.

    Args:
        model: the bilinear HookedTransformer.
        layer: the layer; the output dictionary reads its ``hook_mlp_out``.
        out_features: the output dictionary (active = its ``encode`` is non-zero).
        tokens: [batch, pos] token ids, or an iterable of such batches.
        feature_idx: the output features (None: all).
        max_k: the largest rank (at most the MLP input width).
        min_active: features active on at most this many tokens are excluded.
        eigendecomposition: precomputed top eigenpairs of these features (at least max_k),
            e.g. ``feature_spectra(...).eigendecomposition``; computed when None.
        token_chunk: tokens projected at once (memory ``token_chunk × n × max_k`` floats).

    Returns:
        The LowRankCorrelation.

    Raises:
        ValueError: if the dictionary does not match the layer, or max_k is out of range.
        IndexError: for a feature index out of range, or a bad layer.
    """
    dictionary = as_dictionary(out_features, model.cfg.d_model)
    index = dictionary.check_features(feature_idx)
    if isinstance(max_k, bool) or not isinstance(max_k, int) or not 1 <= max_k <= model.cfg.d_model:
        raise ValueError(f"max_k={max_k!r} must be an int in [1, {model.cfg.d_model}]")
    U = dictionary.W_enc[:, index].T.float()
    eig = eigendecomposition or eigendecompose(model, layer, U, max_k)
    if eig.k < max_k or len(eig) != len(index):
        raise ValueError(f"the eigendecomposition has {len(eig)} features × {eig.k} pairs; need {len(index)} × {max_k}")
    eig = eig.truncate(max_k)
    n, dtype = len(index), eig.eigenvalues.dtype
    offset = eig.constant - eig.directions @ dictionary.b_dec.to(dtype)  # [n]
    stats = torch.zeros(6, n, max_k, dtype=torch.float64)  # count, Σy, Σy², Σŷ, Σŷ², Σyŷ
    max_err = torch.zeros(n, dtype=torch.float64)
    names = set(mlp_input_hook_names(model, layer)) | {f"blocks.{layer}.hook_mlp_out"}
    for batch in _batches(tokens):
        _, cache = model.run_with_cache(
            batch.to(model.cfg.device), names_filter=lambda name: name in names, stop_at_layer=layer + 1
        )
        x = mlp_input(model, layer, cache).reshape(-1, model.cfg.d_model).to(dtype)
        y = cache[f"blocks.{layer}.hook_mlp_out"].reshape(-1, model.cfg.d_model)
        actual = (y.to(dtype) - dictionary.b_dec.to(dtype)) @ U.to(dtype).T  # [T, n]
        active = dictionary.encode(y)[:, index] != 0  # [T, n]
        for start in range(0, len(x), token_chunk):
            rows, cols = active[start : start + token_chunk].nonzero(as_tuple=True)
            if not len(rows):
                continue
            proj = eig.projections(x[start : start + token_chunk])  # [t, n, K]
            approx = (eig.eigenvalues * proj.square())[rows, cols].cumsum(-1) + offset[cols, None]  # [p, K]
            target = actual[start + rows, cols].double()[:, None].expand_as(approx)
            approx = approx.double()
            for slot, value in enumerate(
                (torch.ones_like(approx), target, target.square(), approx, approx.square(), target * approx)
            ):
                stats[slot].index_add_(0, cols, value)
            max_err.scatter_reduce_(0, cols, (target[:, -1] - approx[:, -1]).abs(), reduce="amax")
    count, sy, syy, sa, saa, sya = stats
    var_y = syy - sy.square() / count.clamp_min(1)
    var_a = saa - sa.square() / count.clamp_min(1)
    cov = sya - sy * sa / count.clamp_min(1)
    counts = count[:, 0].long()
    tiny = torch.finfo(torch.float64).tiny
    varies = var_y[:, 0] > 1e-12 * syy[:, 0].clamp_min(tiny)
    keep = (counts > min_active) & varies
    correlation = torch.where(var_a > 0, cov / (var_y * var_a).clamp_min(tiny).sqrt(), 0.0)
    return LowRankCorrelation(
        ks=torch.arange(1, max_k + 1),
        features=index[keep],
        correlation=correlation[keep],
        active_counts=counts,
        all_features=index,
        excluded=index[~keep],
        max_abs_error=max_err[keep],
    )
