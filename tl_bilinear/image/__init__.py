"""Bilinear image classifiers (paper §3-4): models, data sets, training, decomposition, experiments.

The decomposition goes through ``tl_bilinear.analysis`` (``BilinearWeights`` + ``eigendecompose``).
"""

from tl_bilinear.image.adversarial import MaskAttack, eigen_mask, hidden_decomposition, mask_attack
from tl_bilinear.image.challenge import ChallengeResult, challenge_data, challenge_task
from tl_bilinear.image.datasets import DATA_FORMS, ImageData, load_data, load_digits, load_idx_folder, load_mnist_pickle
from tl_bilinear.image.decompose import ClassEigen, check_class, class_eigendecompose, layer_weights
from tl_bilinear.image.experiments import (
    Explanation,
    explain,
    hoyer_sparsity,
    rank_matched_cosines,
    regularisation_metrics,
    regularisation_sweep,
    seed_consistency,
    truncation_curve,
)
from tl_bilinear.image.idx import read_idx, read_idx_split
from tl_bilinear.image.model import BilinearClassifier, ClassifierConfig, load_classifier, read_run, save_classifier
from tl_bilinear.image.train import RECIPES, TrainConfig, accuracy, recipe, train_classifier

__all__ = [
    "DATA_FORMS",
    "RECIPES",
    "BilinearClassifier",
    "ChallengeResult",
    "ClassEigen",
    "ClassifierConfig",
    "Explanation",
    "ImageData",
    "MaskAttack",
    "TrainConfig",
    "accuracy",
    "challenge_data",
    "challenge_task",
    "check_class",
    "class_eigendecompose",
    "eigen_mask",
    "explain",
    "hidden_decomposition",
    "hoyer_sparsity",
    "layer_weights",
    "load_classifier",
    "load_data",
    "load_digits",
    "load_idx_folder",
    "load_mnist_pickle",
    "mask_attack",
    "rank_matched_cosines",
    "read_idx",
    "read_idx_split",
    "read_run",
    "recipe",
    "regularisation_metrics",
    "regularisation_sweep",
    "save_classifier",
    "seed_consistency",
    "train_classifier",
    "truncation_curve",
]
