"""The one module that knows which TransformerLens is installed: 3.9 or 4.x.

TransformerLens 3.9 builds our models as ``HookedTransformer``; 4.x removed it, and we
build a ``TransformerBridge`` around TransformerLens's native model (``boot_native``)
instead. Measured on a 2-layer model (CPU): the native bridge loads our checkpoints'
state dict directly (``convert_tl_checkpoint``), rotates adjacent pairs like our
configs, needs no tokenizer, and matches the 3.9 HookedTransformer's logits to 3e-6; the
Hugging Face route (``to_hf`` then ``boot_transformers``) matches too (6e-6) but needs a
tokenizer and exposes ``hook_q`` / ``W_Q`` in the permuted rotate-half order.

Everything else imports ``HookedTransformer`` / ``HookedTransformerConfig`` from here:
under 4.x they name ``TransformerBridge`` / ``TransformerBridgeConfig``, which carry the
same ``cfg`` fields, hook names (``blocks.L.ln2.hook_normalized``, ``mlp.hook_pre``,
``hook_mlp_out``, ...) and TransformerLens-orientation weights (``W_gate``, ``W_in``,
``W_out``, ``W_U``).

Trap guarded here: TL 4's ``enable_compatibility_mode()`` with weight processing (its
default) silently swaps the bilinear MLP for SwiGLU (``resolve_activation_fn`` falls back
to SiLU for unknown names); our bridges refuse it unless ``no_processing=True``, which is
exact.
"""

from __future__ import annotations

import copy
import inspect
import types
from importlib.metadata import version
from typing import Any

import torch
from torch import Tensor

#: The TransformerLens versions tl-bilinear supports: [3.9, 5).
SUPPORTED = ((3, 9), (5, 0))
SUPPORTED_TEXT = "transformer-lens>=3.9,<5 (3.9: HookedTransformer; 4.x: TransformerBridge)"


def parse_version(text: str) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``"4.3.0"`` or ``"3.9.0.dev1"``.

    Raises:
        ImportError: if the version is outside ``SUPPORTED`` (the message names the range).
    """
    major, minor = (int("".join(c for c in part if c.isdigit()) or 0) for part in (text.split(".") + ["0"])[:2])
    if not SUPPORTED[0] <= (major, minor) < SUPPORTED[1]:
        raise ImportError(
            f"tl-bilinear supports {SUPPORTED_TEXT}; transformer-lens {text} is installed. "
            "Install a supported one, e.g. pip install 'transformer-lens>=3.9,<5'"
        )
    return major, minor


TL_VERSION: str = version("transformer-lens")
#: Whether the installed TransformerLens is 4.x (TransformerBridge) rather than 3.9 (HookedTransformer).
TL4: bool = parse_version(TL_VERSION)[0] >= 4

if TL4:
    from transformer_lens import TransformerBridge as HookedTransformer
    from transformer_lens import TransformerBridgeConfig as HookedTransformerConfig
else:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

#: Buffers of a HookedTransformer state dict that are not weights.
BUFFER_SUFFIXES = ("IGNORE", "mask", "rotary_sin", "rotary_cos")
#: The trap and its fix, for the refusal.
COMPATIBILITY_TRAP = (
    "enable_compatibility_mode() with weight processing would silently compute SwiGLU instead of the "
    "bilinear MLP (TransformerLens's resolve_activation_fn falls back to SiLU for act_fn='bilinear'); "
    "call enable_compatibility_mode(no_processing=True), which is exact (RMSPre norms have no weights to "
    "fold, and centring the unembedding does not change probabilities)"
)


def config_fields() -> set[str]:
    """The field names the installed TransformerLens's model config accepts."""
    fields = set(HookedTransformerConfig.__dataclass_fields__)
    if TL4:  # TransformerBridgeConfig takes more fields in __init__ than its dataclass declares
        fields |= set(inspect.signature(HookedTransformerConfig.__init__).parameters) - {"self", "kwargs"}
    return fields


def new_config(**fields: Any) -> Any:
    """A model config of the installed TransformerLens (``HookedTransformerConfig`` or ``TransformerBridgeConfig``).

    Args:
        **fields: config fields (see ``config_fields``).

    Returns:
        The config.
    """
    if not TL4:
        return HookedTransformerConfig(**fields)
    cfg = HookedTransformerConfig.from_dict(fields)
    # What HookedTransformerConfig derived and TransformerBridgeConfig leaves unset.
    if cfg.positional_embedding_type == "rotary" and cfg.rotary_dim is None:
        cfg.rotary_dim = cfg.d_head
    if cfg.use_attn_scale and cfg.attn_scale <= 0:
        cfg.attn_scale = cfg.d_head**0.5
    return cfg


def require_tl3(feature: str) -> None:
    """Refuse a feature that needs TransformerLens 3.9 (HookedTransformer internals).

    Args:
        feature: what needs it, for the message.

    Raises:
        ImportError: under TransformerLens 4.x, naming the feature and the fix.
    """
    if TL4:
        raise ImportError(
            f"{feature} needs transformer-lens 3.9 (HookedTransformer); transformer-lens {TL_VERSION} is installed. "
            "Use an environment with pip install 'transformer-lens>=3.9,<4'"
        )


def tl3_only(package: str, names: tuple[str, ...]) -> Any:
    """A module ``__getattr__`` for names a package imports only under TransformerLens 3.9.

    Under 4.x, asking for one of ``names`` raises ``require_tl3``'s clear ImportError
    instead of a bare AttributeError.

    Args:
        package: the package's name, for the messages.
        names: the names it defines only under 3.9 (they need the trainer).

    Returns:
        The function to assign to the package's ``__getattr__``.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            require_tl3(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def set_tokenizer(model: Any, tokenizer: Any, default_padding_side: str = "right") -> Any:
    """Give ``model`` a Hugging Face tokenizer, under either TransformerLens.

    Our 4.x bridges also have this as ``bridge.set_tokenizer(tokenizer, default_padding_side=...)``,
    HookedTransformer's method, so 3.9 code keeps working.

    Args:
        model: a HookedTransformer or TransformerBridge (changed in place).
        tokenizer: the tokenizer.
        default_padding_side: ``"right"`` or ``"left"``.

    Returns:
        The same model.
    """
    if not TL4:
        model.set_tokenizer(tokenizer, default_padding_side=default_padding_side)
        return model
    from transformer_lens.model_bridge.sources._bridge_builder import configure_tokenizer  # what boot_native uses

    model.tokenizer = configure_tokenizer(tokenizer, model.cfg)
    model.tokenizer.padding_side = default_padding_side
    return model


def register_native_activation(name: str, fn: Any) -> None:
    """Teach TL 4's native model an activation name (its ``_ACTIVATIONS`` dict is private).

    Args:
        name: the ``act_fn`` name.
        fn: the elementwise function.

    Raises:
        RuntimeError: if the private dict moved (naming the TransformerLens version) or
            another function holds the name.
    """
    from transformer_lens.model_bridge.sources.native import model as native

    registry = getattr(native, "_ACTIVATIONS", None)
    if not isinstance(registry, dict):
        raise RuntimeError(
            f"transformer-lens {TL_VERSION}: transformer_lens.model_bridge.sources.native.model._ACTIVATIONS is "
            f"gone, so act_fn={name!r} cannot be registered; tl-bilinear is tested with {SUPPORTED_TEXT}"
        )
    if registry.get(name, fn) is not fn:
        raise RuntimeError(f"TransformerLens's native model already has an activation {name!r}; refusing to replace it")
    registry[name] = fn


def _guarded_compatibility_mode(bridge: Any, *args: Any, no_processing: bool = False, **kwargs: Any) -> None:
    if not no_processing:
        raise ValueError(COMPATIBILITY_TRAP)
    return type(bridge).enable_compatibility_mode(bridge, *args, no_processing=True, **kwargs)


def guard_compatibility_mode(bridge: Any) -> Any:
    """Make ``bridge.enable_compatibility_mode`` refuse the weight processing that turns bilinear into SwiGLU.

    Also gives the bridge HookedTransformer's ``set_tokenizer`` (see ``set_tokenizer``). Both
    are bound methods of this instance, so they survive ``copy.deepcopy``.

    Args:
        bridge: a TransformerBridge of a bilinear model (changed in place).

    Returns:
        The same bridge.
    """
    bridge.enable_compatibility_mode = types.MethodType(_guarded_compatibility_mode, bridge)
    bridge.set_tokenizer = types.MethodType(set_tokenizer, bridge)
    return bridge


def build_model(cfg: Any, seed: int | None = None, tokenizer: Any = None) -> Any:
    """A randomly initialised model of ``cfg``: a HookedTransformer (3.9) or a guarded TransformerBridge (4.x).

    Args:
        cfg: the config.
        seed: initialisation seed (the global RNG is left untouched). The same seed gives
            the same weights within one TransformerLens version, not across versions.
        tokenizer: a Hugging Face tokenizer for ``model.tokenizer``.

    Returns:
        The model, on ``cfg.device``.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if not TL4:
            return HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=True)
        cfg = copy.deepcopy(cfg)
        cfg.seed = seed
        bridge = HookedTransformer.boot_native(
            cfg, tokenizer=tokenizer, device=cfg.device, dtype=cfg.dtype, model_name=cfg.model_name
        )
    return guard_compatibility_mode(bridge)


def load_tl_state(model: Any, state: dict[str, Tensor]) -> tuple[list[str], list[str]]:
    """Load a HookedTransformer-format state dict (our checkpoint format) into ``model``.

    Args:
        model: a model of ``build_model``.
        state: tensors under HookedTransformer names (buffers may be left out).

    Returns:
        ``(missing, unexpected)`` parameter names (buffers not counted).

    Raises:
        ValueError: under 4.x, for a non-zero MLP bias ``b_in`` / ``b_out`` (the native
            bridge's gated MLP has none).
    """
    state = {k: v for k, v in state.items() if not k.endswith(BUFFER_SUFFIXES)}
    if TL4:
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

        for name in [k for k in state if k.endswith((".mlp.b_in", ".mlp.b_out"))]:
            if bool(state.pop(name).any()):
                raise ValueError(
                    f"{name} is non-zero, and TransformerLens 4's native gated MLP has no biases; "
                    "load this checkpoint under transformer-lens 3.9"
                )
        state = convert_tl_checkpoint(state, model.cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    return [m for m in missing if not m.endswith(BUFFER_SUFFIXES)], list(unexpected)


def tl_state_dict(model: Any) -> dict[str, Tensor]:
    """The weights of ``model`` under HookedTransformer names (our checkpoint format).

    Args:
        model: a HookedTransformer (3.9) or a TransformerBridge of a bilinear model (4.x).

    Returns:
        Detached tensors: ``embed.W_E``, ``blocks.L.attn.W_Q`` ..., ``blocks.L.mlp.W_gate``
        ..., ``unembed.W_U``, ``unembed.b_U`` (MLP biases zero under 4.x, buffers left out).
    """
    if not TL4:
        return {k: v.detach() for k, v in model.state_dict().items() if not k.endswith(BUFFER_SUFFIXES)}
    state = {"embed.W_E": model.W_E, "unembed.W_U": model.W_U, "unembed.b_U": model.b_U}
    for layer, block in enumerate(model.blocks):
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
            state[f"blocks.{layer}.attn.{name}"] = getattr(block.attn, name)
        for name in ("W_gate", "W_in", "W_out"):
            state[f"blocks.{layer}.mlp.{name}"] = getattr(block.mlp, name)
        state[f"blocks.{layer}.mlp.b_in"] = block.mlp.W_in.new_zeros(block.mlp.W_in.shape[1])
        state[f"blocks.{layer}.mlp.b_out"] = block.mlp.W_out.new_zeros(block.mlp.W_out.shape[1])
    return {k: v.detach() for k, v in state.items()}
