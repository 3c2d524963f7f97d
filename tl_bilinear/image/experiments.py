"""The paper's image experiments as functions returning data: explanation, truncation, consistency, regularisation.

Plots of these results live in ``tl_bilinear.image.plots``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.analysis import effective_rank
from tl_bilinear.image.datasets import ImageData
from tl_bilinear.image.decompose import ClassEigen, class_eigendecompose
from tl_bilinear.image.model import BilinearClassifier, ClassifierConfig
from tl_bilinear.image.train import TrainConfig, accuracy, train_classifier


@dataclass(frozen=True)
class Explanation:
    """Why one input got its logits (paper App. C): per-eigenvector contributions for the top classes.

    Attributes:
        classes: [c] the top classes by logit.
        logits: [c] their logits.
        eigenvalues: [c, k] λ of the top-k eigenvectors (by |λ|) of each class.
        contributions: [c, k] λ_i (v_i · x)² of those eigenvectors.
        rest: [c] everything else in the logit (the other eigenvectors, linear term and constant).
    """

    classes: Int[Tensor, c]
    logits: Float[Tensor, c]
    eigenvalues: Float[Tensor, "c k"]
    contributions: Float[Tensor, "c k"]
    rest: Float[Tensor, c]


def explain(ce: ClassEigen, x: Float[Tensor, d_in], top: int = 3, k: int = 10) -> Explanation:
    """Per-eigenvector contributions to the ``top`` highest logits of one input.

    Args:
        ce: a class decomposition; x must be in its space (a flattened image in pixel space).
        x: [d_in] one input.
        top: how many classes, highest logit first.
        k: eigenvectors shown per class.

    Raises:
        ValueError: if top or k is out of range, or x has the wrong width.
    """
    if not 1 <= top <= ce.n_classes:
        raise ValueError(f"top={top!r} must be in [1, {ce.n_classes}] (the number of classes)")
    logits = ce.logits(x)
    classes = logits.argsort(descending=True)[:top]
    sub = replace(ce, eig=ce.eig[classes], linear=None if ce.linear is None else ce.linear[classes])
    contributions = sub.eig.truncate(k).contributions(x)
    return Explanation(
        classes, logits[classes], sub.eig.eigenvalues[:, :k], contributions, sub.logits(x) - contributions.sum(-1)
    )


def truncation_curve(
    ce: ClassEigen,
    images: Float[Tensor, "n d_in"],
    labels: Int[Tensor, n],
    ks: Iterable[int] = range(31),
    batch_size: int = 2048,
) -> dict[int, float]:
    """Accuracy when every class keeps only its top-k eigenvectors (by |λ|), for each k (Fig. 5B).

    Args:
        ce: a class decomposition holding at least ``max(ks)`` eigenpairs.
        images: inputs in its space (flattened images in pixel space).
        labels: the true classes.
        ks: the k to evaluate (0 keeps only the constant and linear terms).
        batch_size: images per batch.

    Returns:
        ``{k: accuracy}`` (0-1).

    Raises:
        ValueError: if a k is negative or more than the eigenpairs kept (at most the input width).
    """
    ks = sorted(set(ks))
    if not ks or ks[0] < 0 or ks[-1] > ce.eig.k:
        raise ValueError(f"ks={ks} must be non-empty ints in [0, {ce.eig.k}] (the eigenpairs per class, d_in)")
    eig = ce.eig.truncate(ks[-1])
    correct = torch.zeros(len(ks), dtype=torch.long)
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        base = ce.logits(x, k=0)  # [b, n]: constants and the linear term
        cumulative = torch.cat([torch.zeros_like(base)[..., None], eig.contributions(x).cumsum(-1)], -1)
        predictions = (base[..., None] + cumulative[..., ks]).argmax(-2)  # [b, len(ks)]
        correct += (predictions == y[:, None]).sum(0)
    return {k: correct[i].item() / len(labels) for i, k in enumerate(ks)}


def rank_matched_cosines(eigens: Sequence[ClassEigen], rank: int = 1) -> Float[Tensor, "pairs n rank"]:
    """``|cos|`` of rank-matched top eigenvectors of every class, for every pair of decompositions (Fig. 5A).

    Args:
        eigens: pixel-space decompositions of models of the same image size and classes
            (different seeds or widths).
        rank: how many top eigenvectors (by |λ|) to match per class.

    Returns:
        [pairs, n_classes, rank]; the mean over pairs and classes at rank 0 is the headline number.

    Raises:
        ValueError: with fewer than two decompositions, or ones that do not share a pixel space.
    """
    if len(eigens) < 2:
        raise ValueError(f"need at least two decompositions to compare, got {len(eigens)}")
    d_pixels = eigens[0].image_shape[0] * eigens[0].image_shape[1]
    for ce in eigens:
        if ce.space != "pixel" or ce.image_shape != eigens[0].image_shape or ce.n_classes != eigens[0].n_classes:
            raise ValueError("consistency needs pixel-space decompositions of the same image shape and classes")
    vectors = [
        torch.nn.functional.normalize(ce.eig.eigenvectors[:, :rank, :d_pixels].double(), dim=-1) for ce in eigens
    ]
    pairs = [(a * b).sum(-1).abs() for a, b in itertools.combinations(vectors, 2)]
    return torch.stack(pairs)


def hoyer_sparsity(vectors: Float[Tensor, "... d"]) -> Float[Tensor, ...]:
    """Hoyer's sparsity ``(√d − ‖v‖₁/‖v‖₂) / (√d − 1)``: 0 for a flat vector, 1 for a one-hot."""
    d = vectors.shape[-1]
    ratio = vectors.abs().sum(-1) / vectors.norm(dim=-1).clamp_min(torch.finfo(vectors.dtype).tiny)
    return (d**0.5 - ratio) / (d**0.5 - 1)


def regularisation_metrics(ce: ClassEigen, top: int = 1) -> dict[str, float]:
    """Mean effective rank of the class spectra and mean sparsity of their top eigenvectors (Fig. 4, App. E).

    Args:
        ce: a full decomposition (all eigenvalues kept).
        top: eigenvectors per class whose sparsity is averaged.
    """
    d = ce.eig.d_in - ce.eig.augmented
    return {
        "effective_rank": effective_rank(ce.eig.eigenvalues).mean().item(),
        "sparsity": hoyer_sparsity(ce.eig.eigenvectors[:, :top, :d]).mean().item(),
    }


def regularisation_sweep(
    data: ImageData,
    noises: Sequence[float],
    weight_decays: Sequence[float],
    model_config: ClassifierConfig,
    train_config: TrainConfig,
) -> list[dict[str, float]]:
    """Train one model per (noise, weight decay) and measure accuracy, effective rank and sparsity.

    Returns:
        One row per setting: ``noise``, ``weight_decay``, ``accuracy``, ``effective_rank``, ``sparsity``.
    """
    rows = []
    for noise, weight_decay in itertools.product(noises, weight_decays):
        config = replace(train_config, noise=noise, weight_decay=weight_decay)
        model, _ = train_classifier(data, model_config, config)
        metrics = regularisation_metrics(class_eigendecompose(model))
        rows.append({"noise": noise, "weight_decay": weight_decay, **metrics})
        rows[-1]["accuracy"] = accuracy(model, data.test_images, data.test_labels)
    return rows


def seed_consistency(
    data: ImageData, seeds: Sequence[int], model_config: ClassifierConfig, train_config: TrainConfig, rank: int = 1
) -> tuple[list[BilinearClassifier], Float[Tensor, "pairs n rank"]]:
    """Train one model per seed (initialisation and batch order) and compare their top eigenvectors.

    Returns:
        ``(models, cosines)`` with cosines as in ``rank_matched_cosines``.
    """
    models = [
        train_classifier(data, replace(model_config, seed=seed), replace(train_config, seed=seed))[0] for seed in seeds
    ]
    return models, rank_matched_cosines([class_eigendecompose(m, k=rank) for m in models], rank)
