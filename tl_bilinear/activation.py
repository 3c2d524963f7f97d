"""Registration of the ``"bilinear"`` activation name with TransformerLens.

A bilinear MLP is TransformerLens's gated MLP with an identity activation on the gate
branch: ``mlp(x) = ((x @ W_gate) * (x @ W_in)) @ W_out``. TransformerLens looks
activation names up in ``SUPPORTED_ACTIVATIONS``; registering mutates that dict in place
(never rebinds it), so every module that imported it sees the new name.
"""

from __future__ import annotations

import torch
from transformer_lens.utilities import activation_functions

from tl_bilinear.compat import TL4, register_native_activation

ACT_FN_NAME = "bilinear"


def bilinear(x: torch.Tensor) -> torch.Tensor:
    """The identity: the gate branch of a bilinear MLP has no nonlinearity."""
    return x


def register() -> None:
    """Register ``act_fn="bilinear"`` with TransformerLens (idempotent); under 4.x with its native model too.

    Raises:
        RuntimeError: if another function is already registered under the name.
    """
    registry = activation_functions.SUPPORTED_ACTIVATIONS
    existing = registry.get(ACT_FN_NAME)
    if existing is not None and existing is not bilinear:
        raise RuntimeError(
            f"TransformerLens already has an activation named {ACT_FN_NAME!r} ({existing!r}); refusing to overwrite it."
        )
    registry[ACT_FN_NAME] = bilinear
    if TL4:
        register_native_activation(ACT_FN_NAME, bilinear)


def is_bilinear_act(act_fn: str | None) -> bool:
    """Whether ``act_fn`` names the bilinear (identity) activation."""
    return act_fn == ACT_FN_NAME
