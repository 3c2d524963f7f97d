"""SAE features through the weights: which input features interact to make an output feature.

An output feature f of a dictionary trained after the MLP reads ``W_enc[:, f] · (y − b_dec)``,
so its encoder column u is an output direction and its MLP part is exactly ``xᵀ Q(u) x``.
Written in an input dictionary's decoder basis ``D`` (rows = input features),
``D Q Dᵀ`` says how strongly each pair of input features drives it (paper §5, Fig. 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

# The core through its public names (tl_bilinear.analysis imports this module last).
from tl_bilinear.analysis import BilinearWeights, Eigendecomposition, bilinear_weights, interaction_matrices
from tl_bilinear.analysis.dictionary import as_dictionary
from tl_bilinear.compat import HookedTransformer


def layer_weights(model: HookedTransformer | BilinearWeights, layer: int | None) -> BilinearWeights:
    """The layer's BilinearWeights from a model and a layer, or as given."""
    return model if isinstance(model, BilinearWeights) else bilinear_weights(model, layer)


def output_directions(
    model: HookedTransformer | BilinearWeights, layer: int | None, out_features: object, feature_idx=None
) -> tuple[Float[Tensor, "n d_model"], Tensor]:
    """The encoder columns u of the chosen output features and their indices.

    Raises:
        ValueError: if the dictionary's width is not the layer's output width.
        IndexError: for a feature index out of range.
    """
    weights = layer_weights(model, layer)
    dictionary = as_dictionary(out_features, weights.d_out)
    index = dictionary.check_features(feature_idx)
    return dictionary.W_enc[:, index].T, index


def input_basis(weights: BilinearWeights, in_features: object, dtype: torch.dtype) -> Float[Tensor, "d_sae d_in"]:
    """The input dictionary's decoder rows, padded with a zero for an augmented input ``[x, 1]``."""
    W_dec = as_dictionary(in_features, weights.d_in - weights.augmented_input).W_dec.to(dtype)
    if weights.augmented_input:
        W_dec = torch.cat([W_dec, W_dec.new_zeros(len(W_dec), 1)], dim=1)
    return W_dec


@dataclass(frozen=True)
class FeatureInteractions:
    """Interaction matrices of output features in an input dictionary's basis.

    Attributes:
        features: [n] the output feature indices.
        matrices: [n, d_sae_in, d_sae_in] ``D Q(u) Dᵀ`` (symmetric).
        top_pairs: [n, top, 2] input-feature pairs (i <= j) by |entry|, largest first.
        top_values: [n, top] their entries.
        scale: [n] the typical cross-interaction scale: the std of the off-diagonal entries.
        outlier_scores: [n, top] ``|entry| / scale``.
    """

    features: Int[Tensor, " n"]
    matrices: Float[Tensor, "n d_sae_in d_sae_in"]
    top_pairs: Int[Tensor, "n top 2"]
    top_values: Float[Tensor, "n top"]
    scale: Float[Tensor, " n"]
    outlier_scores: Float[Tensor, "n top"]


def feature_interactions(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    out_features: object,
    feature_idx: int | list[int] | Tensor | None,
    in_features: object,
    *,
    top: int = 10,
    dtype: torch.dtype = torch.float32,
    chunk_size: int = 16,
) -> FeatureInteractions:
    """Q(u) of output features, in the decoder basis of an input dictionary (``D_in Q D_inᵀ``).

    Args:
        model: a bilinear HookedTransformer, or BilinearWeights (then layer is None).
        layer: the layer index.
        out_features: the dictionary after the MLP (our TopKSAE, a SAELens SAE, anything
            with ``W_enc``/``W_dec``); its encoder columns are the output directions.
        feature_idx: output feature index or indices (None: all; mind the memory,
            ``n × d_sae_in²`` floats).
        in_features: the dictionary at the MLP input; its decoder rows are the basis.
        top: pairs reported per feature.
        dtype: float32 or float64.
        chunk_size: output features whose Q is built at once.

    Returns:
        The FeatureInteractions.

    Raises:
        ValueError: if a dictionary's width does not match the layer, or top is not positive.
        IndexError: for a feature index out of range, or a bad layer.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r} must be a positive int")
    weights = layer_weights(model, layer)
    U, index = output_directions(weights, None, out_features, feature_idx)
    D = input_basis(weights, in_features, dtype)
    s = len(D)
    top = min(top, s * (s + 1) // 2)
    upper = torch.triu_indices(s, s)
    off = upper[0] != upper[1]
    matrices = []
    for chunk in U.to(dtype).split(chunk_size):
        Q = interaction_matrices(weights, None, chunk, dtype=dtype)
        matrices.append(D @ Q @ D.T)  # [chunk, s, s]
    M = torch.cat(matrices) if matrices else D.new_zeros(0, s, s)
    entries = M[:, upper[0], upper[1]]  # [n, pairs] on and above the diagonal
    scale = entries[:, off].std(dim=1) if off.any() else entries.new_zeros(len(M))
    values, order = entries.abs().topk(top, dim=1)
    top_values = entries.gather(1, order)
    return FeatureInteractions(
        features=index,
        matrices=M,
        top_pairs=upper.T[order],
        top_values=top_values,
        scale=scale,
        outlier_scores=values / scale.clamp_min(torch.finfo(dtype).tiny)[:, None],
    )


def input_feature_projections(
    eig: Eigendecomposition, in_features: object, top: int = 10
) -> tuple[Float[Tensor, "n k d_sae_in"], Int[Tensor, "n k top"]]:
    """Projections of input features' decoder directions onto each top eigenvector (Fig. 8B).

    Args:
        eig: an output-feature decomposition (see ``feature_spectra``).
        in_features: the input dictionary.
        top: input features reported per eigenvector, largest |projection| first.

    Returns:
        ``(projections, top_features)``: [n, k, d_sae_in] ``v_i · d_j / ‖d_j‖`` (cosines),
        and [n, k, top] the indices of the largest |cosine|.

    Raises:
        ValueError: if the input dictionary's width does not match the eigenvectors.
    """
    width = eig.d_in - eig.augmented
    D = as_dictionary(in_features, width).W_dec.to(eig.eigenvectors.dtype)
    D = D / D.norm(dim=1, keepdim=True).clamp_min(torch.finfo(D.dtype).tiny)
    projections = torch.einsum("nkd,sd->nks", eig.eigenvectors[..., :width], D)
    top = min(top, D.shape[0])
    return projections, projections.abs().topk(top, dim=-1).indices
