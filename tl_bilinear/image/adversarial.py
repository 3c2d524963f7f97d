"""Adversarial masks from the weights alone (paper Fig. 7), as the paper's code builds them.

Eigendecompose every class logit in the embedding (hidden) space of the first bilinear layer and
stack the top-k positive eigenvectors of every class into V ([n_classes k, d_model]). The rows of
the pseudo-inverse ``V⁺`` are "encoders": ``V e_j = δ_j``, so adding ``e_j`` to the embedding raises
eigenvector j's activation and leaves the other stacked eigenvectors' activations unchanged. The
mask for a target class is the encoder of one of its eigenvectors (``rank``; the paper's notebook
uses the top three) or the sum of all k of its encoders (``rank=None``), mapped to pixels through
the embedding (``W_E e``, the pixel pattern that moves the embedding along ``e``). Scaled to an L2
norm or, as in the paper's notebook, to a multiple of the standard deviation of its positive pixels
(the strength) and added to images, it is compared with the same mask's pixels randomly permuted
(same norm). The pseudo-inverse is taken in the embedding space, not of the pixel-space
eigen-images: the latter asks for the smallest pixel pattern with exactly those projections, which
spends its norm on pixels the embedding barely sees and attacks far less than a permuted copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.image.decompose import ClassEigen, class_eigendecompose
from tl_bilinear.image.model import BilinearClassifier

PAPER_STRENGTHS = tuple(round(0.025 * i, 3) for i in range(1, 13))  # the paper's notebook: 0.025, 0.05, ..., 0.3


@dataclass(frozen=True)
class MaskAttack:
    """Accuracy and target rate of an eigen-mask against a permuted mask, per strength.

    Attributes:
        target: the class the mask pushes towards.
        strengths: the mask strengths (see ``scale``).
        scale: "paper" (strength = multiples of the std of the mask's positive pixels) or "l2" (L2 norm).
        accuracy_eigen, accuracy_permuted: accuracy on the non-target images with each mask.
        target_rate_eigen, target_rate_permuted: share of them classified as the target.
        mask: [height, width] the eigen-mask at strength 1.
    """

    target: int
    strengths: list[float]
    scale: str
    accuracy_eigen: list[float]
    accuracy_permuted: list[float]
    target_rate_eigen: list[float]
    target_rate_permuted: list[float]
    mask: Float[Tensor, "height width"]


def hidden_decomposition(model: BilinearClassifier) -> ClassEigen:
    """The float64 per-class decomposition of the first bilinear layer in its embedding space.

    Raises:
        ValueError: if the model has more than one bilinear layer (the head is not the first
            layer's output direction).
    """
    if model.cfg.n_layers != 1:
        raise ValueError(
            f"adversarial masks need a single-layer classifier (this one has {model.cfg.n_layers} layers): "
            "the class logits are quadratic in the embedding only for one layer"
        )
    return class_eigendecompose(model, layer=0, space="hidden", dtype=torch.float64)


def _positive_eigenvectors(ce: ClassEigen, k: int, reference: Tensor) -> Tensor:
    """[n_classes, k, d] top-k positive eigenvectors per class, signed so the reference projects positively."""
    d = ce.eig.eigenvectors.shape[-1] - ce.eig.augmented  # drop the augmented bias entry
    rows = []
    for c in range(ce.n_classes):
        positive = ce.eig.eigenvectors[c, ce.eig.eigenvalues[c] > 0, :d]
        if len(positive) < k:
            raise ValueError(f"class {c} has {len(positive)} positive eigenvalues among those kept, fewer than k={k}")
        rows.append(positive[:k])
    vectors = torch.stack(rows)
    sign = torch.where(vectors @ reference.to(vectors.dtype) < 0, -1.0, 1.0).to(vectors.dtype)
    return vectors * sign[..., None]


def eigen_mask(
    model: BilinearClassifier,
    target: int,
    reference: Float[Tensor, " d_input"],
    k: int = 10,
    rank: int | None = 0,
    ce: ClassEigen | None = None,
) -> Float[Tensor, " d_input"]:
    """The unit-norm pixel mask ``W_E V⁺ b`` that excites the target's top positive eigenvectors.

    Args:
        model: a single-layer classifier.
        target: the target class.
        reference: [d_input] a flattened image that orients the eigenvectors (e.g. the mean image).
        k: positive eigenvectors per class stacked into V.
        rank: which of the target's k eigenvectors to excite (0 = the largest eigenvalue), or None
            for all k (b = 1 on the target's rows).
        ce: the model's embedding-space decomposition (default: computed, ``hidden_decomposition``).

    Returns:
        [d_input] the mask, unit L2 norm.

    Raises:
        ValueError: for a multi-layer model, a pixel-space ``ce``, a rank outside 0..k-1, or a class
            with fewer than k positive eigenvalues.
        IndexError: if the target class is out of range.
    """
    ce = hidden_decomposition(model) if ce is None or model.cfg.n_layers != 1 else ce
    if ce.space != "hidden":
        raise ValueError("eigen_mask needs the embedding-space decomposition: pass ce=hidden_decomposition(model)")
    if not 0 <= target < ce.n_classes:
        raise IndexError(f"target class {target} is out of range: there are {ce.n_classes} classes")
    if rank is not None and not 0 <= rank < k:
        raise ValueError(f"rank={rank} must be in 0..{k - 1} (k={k}) or None for all k")
    W_E = model.W_E.detach().to(torch.float64)  # [d_input, d_model]
    vectors = _positive_eigenvectors(ce, k, reference.to(torch.float64) @ W_E)  # [n, k, d_model]
    b = torch.zeros(vectors.shape[:2], dtype=vectors.dtype)
    b[target, slice(None) if rank is None else rank] = 1.0
    encoder = torch.linalg.pinv(vectors.flatten(0, 1)) @ b.flatten()  # [d_model]
    mask = W_E @ encoder
    return mask / mask.norm()


@torch.no_grad()
def mask_attack(
    model: BilinearClassifier,
    images: Float[Tensor, "n height width"],
    labels: Int[Tensor, " n"],
    target: int,
    strengths: Sequence[float] = PAPER_STRENGTHS,
    k: int = 10,
    rank: int | None = 0,
    reference: Float[Tensor, "height width"] | None = None,
    seed: int = 0,
    ce: ClassEigen | None = None,
    scale: Literal["paper", "l2"] = "paper",
) -> MaskAttack:
    """Add the eigen-mask and a permuted copy at each strength to the non-target images.

    Args:
        model: a single-layer classifier.
        images, labels: test images (those of the target class are skipped).
        target: the class to push towards.
        strengths: strengths of the added mask, in units of ``scale``.
        k: positive eigenvectors per class stacked into the pseudo-inverse.
        rank: the target eigenvector whose encoder is the mask (0 = top), or None for all k.
        reference: orients the eigenvectors (default: the mean of ``images``).
        seed: seed of the pixel permutation.
        ce: the embedding-space decomposition, if already computed.
        scale: "paper" divides the mask by the std of its positive pixels (the paper's notebook:
            strengths 0.025-0.3); "l2" leaves it at unit L2 norm (strengths are pixel-space norms).

    Returns:
        The MaskAttack.

    Raises:
        ValueError, IndexError: as ``eigen_mask``; ValueError for an unknown scale.
    """
    if scale not in ("paper", "l2"):
        raise ValueError(f"scale={scale!r} must be 'paper' (std of the positive pixels) or 'l2'")
    flat = model.flatten(images)
    keep = labels != target
    reference = flat.mean(0) if reference is None else model.flatten(reference[None])[0]
    mask = eigen_mask(model, target, reference, k, rank, ce).to(flat.dtype)
    if scale == "paper":
        mask = mask / mask[mask > 0].std()
    flat, labels = flat[keep], labels[keep]
    permuted = mask[torch.randperm(len(mask), generator=torch.Generator().manual_seed(seed))]
    out = {name: [] for name in ("accuracy_eigen", "accuracy_permuted", "target_rate_eigen", "target_rate_permuted")}
    for strength in strengths:
        for name, m in (("eigen", mask), ("permuted", permuted)):
            predictions = model.predict(flat + strength * m)
            out[f"accuracy_{name}"].append((predictions == labels).double().mean().item())
            out[f"target_rate_{name}"].append((predictions == target).double().mean().item())
    strengths = [float(s) for s in strengths]
    return MaskAttack(target, strengths, scale, mask=mask.reshape(model.cfg.image_shape), **out)
