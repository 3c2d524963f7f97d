"""Bilinear-MLP HookedTransformer configs, the preset registry and the paper's baselines.

``bilinear_config`` fills in the paper's architecture (gated MLP with the identity
activation, ``d_mlp = 4 * d_model``, RMS norm without gain, rotary positions with
adjacent pairs, untied embeddings, no biases); presets name the paper's models
(Pearce et al. 2025, Appendix G) and CPU-scale ones; ``baseline_overrides`` turns a
preset into one of the gated baselines of App. I at matched parameters.
``validate_model_fields`` is the one check of model fields, used by ``bilinear_config``,
``TrainConfig`` and the CLI.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tl_bilinear.activation import ACT_FN_NAME, register
from tl_bilinear.compat import HookedTransformerConfig, config_fields, new_config

register()

#: Architecture defaults of the paper's bilinear transformers.
BILINEAR_DEFAULTS: dict[str, Any] = dict(
    n_layers=1,
    d_model=128,
    n_heads=4,
    n_ctx=256,
    d_vocab=4096,
    act_fn=ACT_FN_NAME,
    gated_mlp=True,
    normalization_type="RMSPre",
    positional_embedding_type="rotary",
    rotary_adjacent_pairs=True,
    tie_word_embeddings=False,
    init_mode="gpt2",
)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def validate_model_fields(
    fields: Mapping[str, Any], *, where: str = "model config", flags: Mapping[str, str] | None = None
) -> None:
    """Check HookedTransformerConfig fields: names, sizes, head split, rotary, activation.

    Args:
        fields: the fields (a preset's with overrides applied, or just overrides: checks
            that need ``d_model``/``n_heads`` run when both are present).
        where: where the fields came from, for the unknown-name message (e.g.
            ``"--set or --config model_overrides"``).
        flags: how the user wrote a field, for messages (e.g. ``{"act_fn": "--act-fn "}``;
            default ``"act_fn="``).

    Raises:
        ValueError: naming the bad field and value, and what would fix it (near-match
            names for a misspelt field or activation).
    """
    from transformer_lens.utilities.activation_functions import SUPPORTED_ACTIVATIONS

    known = config_fields()
    for name in (n for n in fields if n not in known):
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else "see transformer_lens.HookedTransformerConfig"
        raise ValueError(f"unknown model field {name!r} ({where}); {hint}")
    for name in ("n_layers", "d_model", "n_heads", "n_ctx", "d_vocab", "d_mlp", "d_head"):
        value = fields.get(name)
        if value is not None and not _is_positive_int(value):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    act_fn = fields.get("act_fn")
    if act_fn is not None and act_fn not in SUPPORTED_ACTIVATIONS:
        flag = (flags or {}).get("act_fn", "act_fn=")
        raise ValueError(
            f"{flag}{act_fn!r} is not an activation TransformerLens knows; use one of "
            f"{', '.join(sorted(SUPPORTED_ACTIVATIONS))}"
        )
    d_model, n_heads = fields.get("d_model"), fields.get("n_heads")
    if d_model is None or n_heads is None:
        return
    if fields.get("d_head") is None and d_model % n_heads:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}; choose n_heads that "
            f"divides d_model (e.g. {[h for h in (1, 2, 4, 8, 16) if d_model % h == 0]}) "
            "or set d_head explicitly"
        )
    if fields.get("positional_embedding_type") == "rotary":
        d_head = fields.get("d_head") or d_model // n_heads
        if d_head % 2:
            raise ValueError(
                f"rotary positions need an even d_head, got d_head={d_head} (d_model={d_model}, n_heads={n_heads}); "
                "choose d_model and n_heads with an even quotient, or set d_head"
            )


def is_bias(name: str) -> bool:
    """Whether a parameter (state-dict name) is a bias: leaf ``b_*`` (HookedTransformer) or ``bias`` (TL 4 bridge).

    HookedTransformer has no switch to drop biases, so a bilinear model keeps them at
    zero and frozen (``make_model``); parameter counts list them apart.

    Args:
        name: a parameter name such as ``"blocks.0.mlp.b_in"`` or ``"blocks.0.attn.q.bias"``.

    Returns:
        True for a bias.
    """
    leaf = name.rsplit(".", 1)[-1]
    return leaf.startswith("b_") or leaf == "bias"


def bilinear_config(**overrides: Any) -> HookedTransformerConfig:
    """Build a HookedTransformerConfig with the paper's bilinear architecture.

    Any HookedTransformerConfig field can be overridden. ``d_head`` defaults to
    ``d_model // n_heads`` and ``d_mlp`` to ``4 * d_model``.

    Args:
        **overrides: HookedTransformerConfig fields, e.g. ``n_layers=6, d_model=512``.

    Returns:
        The config; ``HookedTransformer(cfg)`` builds the model (see ``make_model``).

    Raises:
        ValueError: for a field name that is not a HookedTransformerConfig field, a size
            that is not a positive integer, ``d_model`` not divisible by ``n_heads``, or an
            unknown activation (see ``validate_model_fields``).
    """
    fields = {**BILINEAR_DEFAULTS, **overrides}
    validate_model_fields(fields)
    if fields.get("d_head") is None:
        fields["d_head"] = fields["d_model"] // fields["n_heads"]
    if fields.get("d_mlp") is None:
        fields["d_mlp"] = 4 * fields["d_model"]
    return new_config(**fields)


@dataclass(frozen=True)
class Preset:
    """A named set of ``bilinear_config`` fields and where they come from."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    source: str = ""


_PRESETS: dict[str, Preset] = {}


def register_preset(name: str, *, source: str = "user-defined", overwrite: bool = False, **fields: Any) -> Preset:
    """Add a preset to the registry.

    Args:
        name: the preset's name (also written to ``cfg.model_name``).
        source: where the numbers come from (paper section, "CPU-scale", ...).
        overwrite: replace an existing preset of the same name.
        **fields: ``bilinear_config`` overrides.

    Returns:
        The registered preset.

    Raises:
        ValueError: if the name is taken and ``overwrite`` is false, or the fields do
            not make a valid config.
    """
    if name in _PRESETS and not overwrite:
        raise ValueError(f"preset {name!r} already exists; pass overwrite=True to replace it")
    bilinear_config(**fields)  # fail now, not when the preset is first used
    preset = Preset(name=name, fields=dict(fields), source=source)
    _PRESETS[name] = preset
    return preset


def list_presets() -> list[str]:
    """Names of all registered presets, sorted."""
    return sorted(_PRESETS)


def get_preset(name: str) -> Preset:
    """The registered preset called ``name``.

    Raises:
        KeyError: if there is no such preset; the message lists the known ones.
    """
    if name not in _PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(list_presets())}")
    return _PRESETS[name]


def get_config(name: str, **overrides: Any) -> HookedTransformerConfig:
    """The config of preset ``name`` with ``overrides`` applied.

    Raises:
        KeyError: if there is no such preset; the message lists the known ones.
    """
    preset = get_preset(name)
    return bilinear_config(**{"model_name": name, **preset.fields, **overrides})


_PAPER = "Pearce et al. 2025 (arXiv 2410.08417), Appendix G"
register_preset(
    "ts-medium",
    source=f"{_PAPER}: the TinyStories model",
    n_layers=6,
    d_model=512,
    d_mlp=2048,
    n_heads=8,
    n_ctx=256,
    d_vocab=4096,
)
register_preset(
    "fw-small",
    source=f"{_PAPER}: FineWeb, 12 layers (Mixtral tokenizer)",
    n_layers=12,
    d_model=768,
    d_mlp=3072,
    n_heads=12,
    n_ctx=512,
    d_vocab=32000,
)
register_preset(
    "fw-medium",
    source=f"{_PAPER}: FineWeb, 16 layers (Mixtral tokenizer)",
    n_layers=16,
    d_model=1024,
    d_mlp=4096,
    n_heads=16,
    n_ctx=512,
    d_vocab=32000,
)
_CPU = "CPU-scale (this project): trains in minutes on 2 cores"
register_preset("ts-micro", source=_CPU, n_layers=1, d_model=64, n_heads=4, n_ctx=128, d_vocab=4096)
register_preset("ts-tiny", source=_CPU, n_layers=2, d_model=128, n_heads=4, n_ctx=256, d_vocab=4096)
register_preset("ts-small", source=_CPU, n_layers=4, d_model=256, n_heads=8, n_ctx=256, d_vocab=4096)


# --------------------------------------------------------------------------------------
# Baseline MLPs for the paper's comparison (Pearce et al. 2025, App. I, Table 6): the same
# preset and trainer with another MLP, at matched parameters.
#
# ==========  ==========================================  =====================
# name        MLP                                         parameters vs bilinear
# ==========  ==========================================  =====================
# bilinear    (x W_gate) * (x W_in), then W_out           (reference)
# reglu       relu(x W_gate) * (x W_in)                   equal (same d_mlp)
# geglu       gelu(x W_gate) * (x W_in)                   equal (same d_mlp)
# swiglu      silu(x W_gate) * (x W_in)                   equal (same d_mlp)
# mlp-gelu    gelu(x W_in) W_out, ungated                 equal (d_mlp x 3/2)
# ==========  ==========================================  =====================
# --------------------------------------------------------------------------------------

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
