"""The MLP's input x, read from a TransformerLens activation cache."""

from __future__ import annotations

from collections.abc import Mapping

from jaxtyping import Float
from torch import Tensor

from tl_bilinear.analysis.layer import check_layer
from tl_bilinear.compat import HookedTransformer


def mlp_input_hook_names(model: HookedTransformer, layer: int) -> list[str]:
    """The hook names ``mlp_input`` reads; pass them as ``names_filter`` to ``run_with_cache``."""
    layer = check_layer(model, layer)
    cfg = model.cfg
    if cfg.normalization_type is not None:
        return [f"blocks.{layer}.ln2.hook_normalized"]
    return [f"blocks.{layer}.hook_resid_pre" if cfg.parallel_attn_mlp else f"blocks.{layer}.hook_resid_mid"]


def mlp_input(model: HookedTransformer, layer: int, cache: Mapping[str, Tensor]) -> Float[Tensor, "batch pos d_model"]:
    """x exactly as layer ``layer``'s MLP sees it: the ln2 output, its gain and bias included.

    With it, ``u · hook_mlp_out == eig.reconstruct(x)`` at every position.

    Args:
        model: the HookedTransformer the cache came from.
        layer: the layer index.
        cache: an ActivationCache (or dict) holding ``mlp_input_hook_names(model, layer)``.

    Returns:
        [batch, pos, d_model] MLP inputs.

    Raises:
        IndexError: if the layer is out of range.
        KeyError: if the cache lacks the needed hook (the message names it).
        ValueError: for post-norm models, where the MLP input is not a cached hook.
    """
    cfg = model.cfg
    if getattr(cfg, "use_normalization_before_and_after", False) or getattr(cfg, "post_norm", False):
        raise ValueError("post-norm blocks are not supported: their MLP input is not a cached hook")
    layer = check_layer(model, layer)
    (name,) = mlp_input_hook_names(model, layer)
    if name not in cache:
        raise KeyError(f"the cache has no {name!r}; run run_with_cache with names_filter including it")
    x = cache[name]
    ln2 = model.blocks[layer].ln2
    if hasattr(ln2, "w"):
        x = x * ln2.w
    if hasattr(ln2, "b"):
        x = x + ln2.b
    return x
