"""Adversarial masks from the weights alone (paper Fig. 7).

Stack the top-k positive eigen-images of every class (each oriented so the mean image projects
positively on it) into V ([n_classes k, d]); the mask is ``V⁺ b`` with b = 1 on the target
class's rows and 0 elsewhere: it raises the target's strongest positive features and leaves the
other classes' untouched. Scaled to an L2 norm (the strength) and added to images of other
classes, it is compared with the same mask's pixels randomly permuted (same norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.image.decompose import ClassEigen
from tl_bilinear.image.model import BilinearClassifier


@dataclass(frozen=True)
class MaskAttack:
    """Accuracy and target rate of an eigen-mask against a permuted mask, per strength.

    Attributes:
        target: the class the mask pushes towards.
        strengths: the mask norms (pixel units, L2).
        accuracy_eigen, accuracy_permuted: accuracy on the non-target images with each mask.
        target_rate_eigen, target_rate_permuted: share of them classified as the target.
        mask: [height, width] the unit-norm eigen-mask.
    """

    target: int
    strengths: list[float]
    accuracy_eigen: list[float]
    accuracy_permuted: list[float]
    target_rate_eigen: list[float]
    target_rate_permuted: list[float]
    mask: Float[Tensor, "height width"]


def _positive_eigenvectors(ce: ClassEigen, k: int, reference: Tensor) -> Tensor:
    """[n_classes, k, d] top-k positive eigenvectors per class, signed so the reference projects positively."""
    d = ce.image_shape[0] * ce.image_shape[1]
    rows = []
    for c in range(ce.n_classes):
        positive = ce.eig.eigenvectors[c, ce.eig.eigenvalues[c] > 0, :d]
        if len(positive) < k:
            raise ValueError(f"class {c} has {len(positive)} positive eigenvalues among those kept, fewer than k={k}")
        rows.append(positive[:k])
    vectors = torch.stack(rows)
    sign = torch.where(vectors @ reference.to(vectors.dtype) < 0, -1.0, 1.0).to(vectors.dtype)
    return vectors * sign[..., None]


def eigen_mask(ce: ClassEigen, target: int, reference: Float[Tensor, d], k: int = 10) -> Float[Tensor, d]:
    """The unit-norm mask ``V⁺ b`` that excites the target's top-k positive eigen-images only.

    Args:
        ce: a pixel-space decomposition with enough eigenpairs kept.
        target: the target class.
        reference: [d] an image that orients the eigenvectors (e.g. the mean training image).
        k: positive eigenvectors per class.

    Raises:
        ValueError: if ``ce`` is not pixel-space or a class has fewer than k positive eigenvalues.
        IndexError: if the target class is out of range.
    """
    if ce.space != "pixel":
        raise ValueError("adversarial masks need a pixel-space decomposition (space='pixel')")
    if not 0 <= target < ce.n_classes:
        raise IndexError(f"target class {target} is out of range: there are {ce.n_classes} classes")
    vectors = _positive_eigenvectors(ce, k, reference)  # [n, k, d]
    b = torch.zeros(vectors.shape[:2], dtype=vectors.dtype)
    b[target] = 1.0
    mask = torch.linalg.pinv(vectors.flatten(0, 1)) @ b.flatten()
    return mask / mask.norm()


@torch.no_grad()
def mask_attack(
    model: BilinearClassifier,
    ce: ClassEigen,
    images: Float[Tensor, "n height width"],
    labels: Int[Tensor, n],
    target: int,
    strengths: Sequence[float] = (1, 2, 3, 4, 5, 6, 8, 10),
    k: int = 10,
    reference: Float[Tensor, "height width"] | None = None,
    seed: int = 0,
) -> MaskAttack:
    """Add the eigen-mask and a permuted copy at each strength to the non-target images.

    Args:
        model: the classifier ``ce`` decomposes.
        ce: its pixel-space decomposition (all eigenpairs, or at least enough positive ones).
        images, labels: test images (those of the target class are skipped).
        target: the class to push towards.
        strengths: L2 norms of the added mask, in pixel units.
        k: positive eigenvectors per class in the mask.
        reference: orients the eigenvectors (default: the mean of ``images``).
        seed: seed of the pixel permutation.

    Returns:
        The MaskAttack.
    """
    flat = model.flatten(images)
    keep = labels != target
    flat, labels = flat[keep], labels[keep]
    reference = flat.mean(0) if reference is None else model.flatten(reference)
    mask = eigen_mask(ce, target, reference, k).to(flat.dtype)
    permuted = mask[torch.randperm(len(mask), generator=torch.Generator().manual_seed(seed))]
    out = {name: [] for name in ("accuracy_eigen", "accuracy_permuted", "target_rate_eigen", "target_rate_permuted")}
    for strength in strengths:
        for name, m in (("eigen", mask), ("permuted", permuted)):
            predictions = model.predict(flat + strength * m)
            out[f"accuracy_{name}"].append((predictions == labels).double().mean().item())
            out[f"target_rate_{name}"].append((predictions == target).double().mean().item())
    return MaskAttack(target, [float(s) for s in strengths], mask=mask.reshape(ce.image_shape), **out)
