"""Per-class eigendecomposition of a bilinear classifier, through the analysis core.

For the last layer and class c, the output direction is the head column ``u = W_U[:, c]``; the
layer becomes ``BilinearWeights`` (branch biases on the augmented input ``[x, 1]``, paper App. L)
and ``tl_bilinear.analysis.eigendecompose`` does the rest. In ``"pixel"`` space (first layer only)
the embedding is folded into both branches (``W_E W_gate``, ``W_E W_in``), so the eigenvectors are
images (eigen-images) and ``logit_c(x) = Σ_i λ_i (v_i · x)² (+ (W_E u) · x with a residual) + constant``
exactly for every flattened image x. In ``"hidden"`` space the input is the layer's
``hook_resid_pre``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.analysis import BilinearWeights, Eigendecomposition, eigendecompose
from tl_bilinear.image.model import BilinearClassifier

Space = Literal["pixel", "hidden"]


@dataclass(frozen=True)
class ClassEigen:
    """The eigendecomposition of every class logit of one layer.

    Attributes:
        eig: the core decomposition, one direction per class (eigenvalues sorted by |λ|).
        linear: [n, d_in] the residual stream's direct linear term per class, or None.
        space: "pixel" (inputs are flattened images) or "hidden" (``hook_resid_pre``).
        layer: the bilinear layer decomposed.
        image_shape: (height, width) of the model's images.
    """

    eig: Eigendecomposition
    linear: Float[Tensor, "n d_in"] | None
    space: Space
    layer: int
    image_shape: tuple[int, int]

    @property
    def n_classes(self) -> int:
        """Number of classes (directions)."""
        return len(self.eig)

    def logits(self, x: Float[Tensor, "... d_in"], k: int | None = None) -> Float[Tensor, "... n"]:
        """``Σ_{i<k} λ_i (v_i · x)² + linear · x + constant`` per class: the logits for k = None.

        Args:
            x: inputs in this decomposition's space (flattened images in pixel space).
            k: eigenpairs kept per class (None: all).

        Raises:
            ValueError: if k is out of range or x has the wrong width.
        """
        out = (self.eig if k is None else self.eig.truncate(k)).reconstruct(x)  # only the k pairs used
        if self.linear is not None:
            out = out + x.to(self.linear.dtype) @ self.linear.T
        return out

    def inputs(self, model: BilinearClassifier, images: Float[Tensor, "batch ..."]) -> Float[Tensor, "batch d_in"]:
        """Images as this decomposition's inputs, in its dtype: flattened pixels in pixel space, the layer's
        ``blocks.{layer}.hook_resid_pre`` (read with ``run_with_cache``) in hidden space.

        Raises:
            ValueError: if the images do not fit the model.
        """
        dtype = self.eig.eigenvectors.dtype
        if self.space == "pixel":
            return model.flatten(images).to(dtype)
        name = f"blocks.{self.layer}.hook_resid_pre"
        with torch.no_grad():
            _, cache = model.run_with_cache(images, names_filter=name)
        return cache[name].to(dtype)

    def eigen_images(self, k: int | None = None) -> Float[Tensor, "n k height width"]:
        """The top-k eigenvectors per class as images (the augmented bias entry dropped).

        Raises:
            ValueError: if this is not a pixel-space decomposition, or k is out of range.
        """
        if self.space != "pixel":
            raise ValueError("eigen-images need space='pixel' (a decomposition of the first layer)")
        eig = self.eig if k is None else self.eig.truncate(k)
        d_pixels = self.image_shape[0] * self.image_shape[1]
        return eig.eigenvectors[..., :d_pixels].reshape(*eig.eigenvectors.shape[:2], *self.image_shape)


def check_class(model: BilinearClassifier, index: int) -> int:
    """Return ``index`` if it is a valid class of ``model``.

    Raises:
        IndexError: naming the index and the number of classes.
    """
    n = model.cfg.n_classes
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise IndexError(f"class index {index!r} is out of range: the model has {n} classes (0..{n - 1})")
    return index


def layer_weights(model: BilinearClassifier, layer: int = -1, space: Space = "hidden") -> BilinearWeights:
    """One bilinear layer of ``model`` as core ``BilinearWeights`` (branch biases as ``b_pre``/``b_pre_linear``).

    Args:
        model: the classifier.
        layer: the layer index (negative counts from the end).
        space: "hidden" (input ``hook_resid_pre``) or "pixel" (embedding folded in; layer 0 only).

    Returns:
        The weights (detached views or products).

    Raises:
        IndexError: if the layer is out of range.
        ValueError: for an unknown space, or "pixel" on a layer other than the first.
    """
    n_layers = model.cfg.n_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_layers <= layer < n_layers:
        raise IndexError(f"layer {layer!r} is out of range: the model has {n_layers} bilinear layers")
    layer %= n_layers
    if space not in ("pixel", "hidden"):
        raise ValueError(f"space={space!r} must be 'pixel' or 'hidden'")
    if space == "pixel" and layer != 0:
        raise ValueError(f"space='pixel' needs layer 0 (layer {layer}'s input is not linear in the pixels)")
    mlp = model.blocks[layer].mlp
    W_gate, W_in = mlp.W_gate.detach(), mlp.W_in.detach()
    if space == "pixel":
        W_E = model.W_E.detach()
        W_gate, W_in = W_E @ W_gate, W_E @ W_in

    def bias(value):
        return None if value is None else value.detach()

    return BilinearWeights(
        W_gate=W_gate,
        W_in=W_in,
        W_out=mlp.W_out.detach(),
        b_pre=bias(mlp.b_pre),
        b_pre_linear=bias(mlp.b_pre_linear),
        layer=layer,
    )


def class_eigendecompose(
    model: BilinearClassifier,
    layer: int = -1,
    space: Space = "pixel",
    directions: Float[Tensor, "n d_model"] | None = None,
    k: int | None = None,
    dtype: torch.dtype | None = None,
) -> ClassEigen:
    """Eigendecompose each class logit (or given output directions) of one bilinear layer.

    Args:
        model: the classifier.
        layer: the layer (default the last); other than the last, ``directions`` are required.
        space: "pixel" (eigen-images; single-layer models or layer 0) or "hidden".
        directions: [n, d_model] output directions; default the head columns ``W_U.T``.
        k: eigenpairs per class, largest |λ| first (None: all).
        dtype: float32 or float64 (default: the model's, at least float32).

    Returns:
        The ClassEigen.

    Raises:
        ValueError: for a bad space, k out of range, or missing directions for an inner layer.
        IndexError: if the layer is out of range.
    """
    weights = layer_weights(model, layer, space)
    last = weights.layer == model.cfg.n_layers - 1
    if directions is None:
        if not last:
            raise ValueError(
                f"layer {weights.layer} is not the last: pass its output directions (the head only reads the last)"
            )
        directions = model.W_U.detach().T
    eig = eigendecompose(weights, None, directions, k, dtype=dtype)
    linear = None
    if model.cfg.residual and last and directions is not None:
        # logit = u · (h + mlp(h)): the residual adds u · h, i.e. (W_E u) · x in pixel space
        linear = eig.directions if space == "hidden" else eig.directions @ model.W_E.detach().to(eig.directions.dtype).T
    return ClassEigen(eig=eig, linear=linear, space=space, layer=weights.layer, image_shape=model.cfg.image_shape)
