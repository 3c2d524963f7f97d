"""Baseline MLPs for the paper's comparison (Pearce et al. 2025, App. I, Table 6).

The same preset and trainer with a different MLP:

==========  ==========================================  =====================
name        MLP                                         parameters vs bilinear
==========  ==========================================  =====================
bilinear    (x W_gate) * (x W_in), then W_out           (reference)
reglu       relu(x W_gate) * (x W_in)                   equal (same d_mlp)
geglu       gelu(x W_gate) * (x W_in)                   equal (same d_mlp)
swiglu      silu(x W_gate) * (x W_in)                   equal (same d_mlp)
mlp-gelu    gelu(x W_in) W_out, ungated                 equal (d_mlp x 3/2)
==========  ==========================================  =====================
"""

from __future__ import annotations

from typing import Any

from transformer_lens import HookedTransformerConfig

from tl_bilinear.config import get_config

BASELINES: dict[str, dict[str, Any]] = {
    "bilinear": {},
    "reglu": {"act_fn": "relu"},
    "geglu": {"act_fn": "gelu"},
    "swiglu": {"act_fn": "silu"},
    "mlp-gelu": {"act_fn": "gelu", "gated_mlp": False},
}

#: The paper's Table 6: TinyStories validation loss at equal epochs.
PAPER_TABLE_6 = {"bilinear": 1.337, "reglu": 1.332, "swiglu": 1.321}


def baseline_overrides(name: str, preset: str, **overrides: Any) -> dict[str, Any]:
    """``model_overrides`` that turn ``preset`` into baseline ``name`` at matched parameters.

    Args:
        name: one of ``BASELINES``.
        preset: the preset the bilinear model uses.
        **overrides: other config fields (e.g. ``d_vocab``) applied first.

    Returns:
        The overrides for ``TrainConfig.model_overrides`` / ``get_config``.

    Raises:
        KeyError: for an unknown baseline (the message lists them).
    """
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    fields = {**overrides, **BASELINES[name]}
    if fields.get("gated_mlp", True) is False:
        gated_d_mlp = get_config(preset, **overrides).d_mlp
        fields["d_mlp"] = (3 * gated_d_mlp) // 2  # 3 d d_mlp (gated) == 2 d d_mlp' (ungated)
    return fields


def baseline_config(name: str, preset: str, **overrides: Any) -> HookedTransformerConfig:
    """The HookedTransformerConfig of baseline ``name`` on ``preset`` (see ``baseline_overrides``).

    Args:
        name: one of ``BASELINES``.
        preset: the preset the bilinear model uses.
        **overrides: other config fields applied first.

    Returns:
        The baseline's config.

    Raises:
        KeyError: for an unknown baseline or preset.
    """
    return get_config(preset, **baseline_overrides(name, preset, **overrides))
