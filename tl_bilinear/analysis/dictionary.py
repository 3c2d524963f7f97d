"""Feature dictionaries: whatever the analysis takes as an SAE.

Our ``tl_bilinear.sae.TopKSAE``, a SAELens ``SAE`` object, or anything that
exposes ``W_enc`` [d_in, d_sae] and ``W_dec`` [d_sae, d_in] (and optionally ``b_dec``
[d_in] and an ``encode`` method) becomes a :class:`FeatureDictionary`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class FeatureDictionary:
    """An SAE reduced to what the analysis needs.

    Attributes:
        W_enc: [d_in, d_sae]; column f is output feature f's direction u.
        W_dec: [d_sae, d_in]; row f is input feature f's direction.
        b_dec: [d_in], subtracted before encoding (zeros if the SAE has none).
        encoder: the SAE's own ``encode`` (activations -> [..., d_sae]) when it has one.
    """

    W_enc: Float[Tensor, "d_in d_sae"]
    W_dec: Float[Tensor, "d_sae d_in"]
    b_dec: Float[Tensor, " d_in"]
    encoder: Callable[[Tensor], Tensor] | None = None

    @property
    def d_in(self) -> int:
        """Width of the activations."""
        return self.W_enc.shape[0]

    @property
    def d_sae(self) -> int:
        """Number of features."""
        return self.W_enc.shape[1]

    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """Feature activations: the SAE's own ``encode``, else ``(x - b_dec) W_enc`` clamped at 0."""
        if self.encoder is not None:
            with torch.no_grad():
                return self.encoder(x.to(self.W_enc.dtype)).to(self.W_enc.dtype)
        return ((x.to(self.W_enc.dtype) - self.b_dec) @ self.W_enc).clamp_min(0)

    def check_features(self, index: int | Tensor | list[int] | None) -> Tensor:
        """Feature indices as a 1-d LongTensor (None: every feature).

        Raises:
            IndexError: if an index is outside ``[0, d_sae)``.
        """
        if index is None:
            return torch.arange(self.d_sae)
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        bad = index[(index < 0) | (index >= self.d_sae)]
        if len(bad):
            raise IndexError(f"feature index {bad[0].item()} is out of range: the dictionary has {self.d_sae} features")
        return index


def _tensor(obj: object, name: str) -> Tensor | None:
    value = getattr(obj, name, None)
    if value is None:
        return None
    return torch.as_tensor(value.detach() if isinstance(value, Tensor) else value)


def as_dictionary(obj: object, d_in: int | None = None) -> FeatureDictionary:
    """Read a feature dictionary from an SAE-like object.

    Args:
        obj: a FeatureDictionary, our TopKSAE, a SAELens ``SAE``, or any object with
            ``W_enc`` [d_in, d_sae] and ``W_dec`` [d_sae, d_in] (``b_dec`` optional).
        d_in: the width it must read (e.g. the model's d_model), checked when given.

    Returns:
        The FeatureDictionary (tensors detached; the object's ``encode`` kept).

    Raises:
        TypeError: if obj has no ``W_enc`` / ``W_dec``.
        ValueError: if the shapes disagree with each other or with d_in.
    """
    if isinstance(obj, FeatureDictionary):
        dictionary = obj
    else:
        W_enc, W_dec = _tensor(obj, "W_enc"), _tensor(obj, "W_dec")
        if W_enc is None or W_dec is None:
            raise TypeError(
                f"{type(obj).__name__} is not a feature dictionary: it needs W_enc [d_in, d_sae] and "
                "W_dec [d_sae, d_in] (e.g. tl_bilinear.sae.TopKSAE or a SAELens SAE)"
            )
        if W_enc.ndim != 2 or W_dec.ndim != 2 or W_dec.shape != W_enc.shape[::-1]:
            raise ValueError(
                f"W_enc has shape {tuple(W_enc.shape)} and W_dec {tuple(W_dec.shape)}; expected "
                "[d_in, d_sae] and [d_sae, d_in]"
            )
        b_dec = _tensor(obj, "b_dec")
        b_dec = W_enc.new_zeros(W_enc.shape[0]) if b_dec is None else b_dec.to(W_enc.dtype)
        if b_dec.shape != (W_enc.shape[0],):
            raise ValueError(f"b_dec has shape {tuple(b_dec.shape)}, expected ({W_enc.shape[0]},)")
        encode = getattr(obj, "encode", None)
        dictionary = FeatureDictionary(
            W_enc=W_enc, W_dec=W_dec, b_dec=b_dec, encoder=encode if callable(encode) else None
        )
    if d_in is not None and dictionary.d_in != d_in:
        raise ValueError(
            f"the dictionary reads width {dictionary.d_in}, but this layer's activations have width {d_in}: "
            "use an SAE trained on this model's d_model"
        )
    return dictionary
