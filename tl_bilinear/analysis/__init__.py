"""Weight-based analysis of bilinear MLPs: interaction matrices and their eigendecomposition.

For an output direction u, a bilinear MLP's output along u is exactly ``xᵀ Q(u) x``
(plus a bias constant), and ``Q = Σ λ_i v_i v_iᵀ`` turns it into ``Σ λ_i (v_i · x)²``.
"""

from tl_bilinear.analysis.activations import EigenActivations, eigen_activations
from tl_bilinear.analysis.contexts import DatasetTopContexts, TopContexts, top_activating_contexts
from tl_bilinear.analysis.direct_path import DirectPathTokens, direct_path_inputs, direct_path_tokens
from tl_bilinear.analysis.directions import (
    as_directions,
    contrast_directions,
    mean_contrast_directions,
    token_ids,
    unembed_directions,
)
from tl_bilinear.analysis.eigen import Eigendecomposition, eigendecompose, spectrum
from tl_bilinear.analysis.inputs import mlp_input, mlp_input_hook_names
from tl_bilinear.analysis.interaction import interaction_matrices
from tl_bilinear.analysis.layer import Layer, check_layer
from tl_bilinear.analysis.metrics import HOSVD, effective_rank, hosvd, topk_mass
from tl_bilinear.analysis.vocabulary import Vocabulary, vocab_strings, vocabulary
from tl_bilinear.analysis.weights import BilinearWeights, bilinear_weights

__all__ = [
    "BilinearWeights",
    "DatasetTopContexts",
    "DirectPathTokens",
    "EigenActivations",
    "Eigendecomposition",
    "HOSVD",
    "Layer",
    "TopContexts",
    "Vocabulary",
    "as_directions",
    "bilinear_weights",
    "check_layer",
    "contrast_directions",
    "direct_path_inputs",
    "direct_path_tokens",
    "effective_rank",
    "eigen_activations",
    "eigendecompose",
    "hosvd",
    "interaction_matrices",
    "mean_contrast_directions",
    "mlp_input",
    "mlp_input_hook_names",
    "spectrum",
    "token_ids",
    "top_activating_contexts",
    "topk_mass",
    "unembed_directions",
    "vocab_strings",
    "vocabulary",
]
