"""Building bilinear HookedTransformers."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from tl_bilinear.config import get_config


def freeze_biases(model: HookedTransformer) -> HookedTransformer:
    """Zero every bias (``b_*``) of ``model`` and stop it from training.

    HookedTransformer always allocates biases; the paper's models have none. Frozen
    biases get no gradient, so optimizers (AdamW weight decay included) leave them at
    exactly zero.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.rsplit(".", 1)[-1].startswith("b_"):
                param.zero_()
                param.requires_grad_(False)
    return model


def make_model(
    config: HookedTransformerConfig | str,
    seed: int = 0,
    device: str | torch.device | None = None,
    **overrides,
) -> HookedTransformer:
    """A freshly initialised model: bilinear by default, biases zero and frozen.

    Args:
        config: a HookedTransformerConfig or a preset name (see ``list_presets``).
        seed: initialisation seed; the same seed gives the same weights. The global
            torch RNG is left untouched.
        device: where to put the model (default: the config's device).
        **overrides: config fields applied on top of a preset name.

    Returns:
        The HookedTransformer, without a tokenizer.

    Raises:
        KeyError: for an unknown preset name (the message lists the presets).
        TypeError: for overrides together with a config object.
    """
    if isinstance(config, str):
        config = get_config(config, **overrides)
    elif overrides:
        raise TypeError("overrides are only accepted with a preset name, not a config object")
    if device is not None:
        config = HookedTransformerConfig.from_dict({**config.to_dict(), "device": str(device)})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HookedTransformer(config, move_to_device=True)
    return freeze_biases(model)
