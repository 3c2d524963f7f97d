"""Bilinear models as standard Hugging Face ``LlamaForCausalLM`` checkpoints, and back.

A bilinear transformer of ours is exactly a Llama with ``hidden_act="linear"``
(``ACT2FN["linear"]`` is the identity, so ``down((gate x) * (up x))`` is our bilinear
MLP), unit RMSNorm weights, ``rms_norm_eps = cfg.eps``, untied embeddings and no biases:

======================================  ====================================
TransformerLens                         ``LlamaForCausalLM``
======================================  ====================================
``embed.W_E``                           ``model.embed_tokens.weight``
``blocks.L.attn.W_Q[h]`` (``W_K``)      ``q_proj.weight`` rows of head h, permuted
``blocks.L.attn.W_V[h]``                ``v_proj.weight`` rows of head h
``blocks.L.attn.W_O``                   ``o_proj.weight``
``blocks.L.mlp.W_gate / W_in / W_out``  ``gate_proj / up_proj / down_proj`` (transposed)
``unembed.W_U``                         ``lm_head.weight`` (transposed)
======================================  ====================================

Rotary: Hugging Face rotates halves (dimension ``i`` with ``i + d_head/2``), our configs
adjacent pairs (``2i`` with ``2i+1``), at the same frequencies; per head the Q and K rows
are permuted by ``[0, 2, ..., d_head-2, 1, 3, ..., d_head-1]``. Nothing else changes, so
ours -> HF -> ours is bit-exact.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from tl_bilinear.activation import is_bilinear_act
from tl_bilinear.compat import tl_state_dict

#: Hugging Face ``hidden_act`` names whose function is the identity.
LINEAR_ACTS = ("linear",)
#: The one Hugging Face ``model_type`` we read and write.
MODEL_TYPE = "llama"
_B_IN = "TransformerLens adds b_in after the product (gate(x) * up(x) + b_in), which a Llama MLP cannot hold"
_PROJ_BIAS = "a bias inside a bilinear factor has no place in TransformerLens's gated MLP (no gate bias; b_in is added after the product)"
#: HookedTransformerConfig fields that must keep their default for the Llama mapping to be exact.
_LLAMA_DEFAULTS: dict[str, Any] = {
    "attn_only": False,
    "parallel_attn_mlp": False,
    "use_local_attn": False,
    "use_qk_norm": False,
    "use_normalization_before_and_after": False,
    "use_NTK_by_parts_rope": False,
    "output_logits_soft_cap": -1.0,
    "attn_scores_soft_cap": -1.0,
    "final_rms": False,
}


def rotary_permutation(d_head: int, adjacent_pairs: bool = True) -> Int[Tensor, " rotary_dim"]:
    """Per-head Q/K row order that turns adjacent-pairs rotary into rotate-half rotary.

    Args:
        d_head: the head dimension (even).
        adjacent_pairs: whether the TransformerLens side rotates adjacent pairs; if not,
            both sides rotate halves and the permutation is the identity.

    Returns:
        ``perm`` with ``hf_rows = ours_rows[perm]``: ``[0, 2, ..., d_head-2, 1, 3, ..., d_head-1]``.
    """
    if not adjacent_pairs:
        return torch.arange(d_head)
    return torch.cat([torch.arange(0, d_head, 2), torch.arange(1, d_head, 2)])


def _check_exportable(cfg: Any) -> None:
    problems = []
    if not (cfg.gated_mlp and is_bilinear_act(cfg.act_fn)):
        problems.append(f"act_fn={cfg.act_fn!r}, gated_mlp={cfg.gated_mlp} (need the bilinear gated MLP)")
    if cfg.normalization_type not in ("RMSPre", "RMS"):
        problems.append(f"normalization_type={cfg.normalization_type!r} (need 'RMSPre' or 'RMS')")
    if cfg.positional_embedding_type != "rotary" or cfg.rotary_dim != cfg.d_head:
        problems.append(
            f"positional_embedding_type={cfg.positional_embedding_type!r}, rotary_dim={cfg.rotary_dim} "
            f"(need full rotary, rotary_dim = d_head = {cfg.d_head})"
        )
    if not cfg.use_attn_scale or not math.isclose(cfg.attn_scale, math.sqrt(cfg.d_head)):
        problems.append(f"attn_scale={cfg.attn_scale} (Llama scales by sqrt(d_head) = {math.sqrt(cfg.d_head):g})")
    if cfg.n_key_value_heads not in (None, cfg.n_heads):
        problems.append(f"n_key_value_heads={cfg.n_key_value_heads} (grouped-query attention is not exported)")
    if cfg.d_vocab_out != cfg.d_vocab:
        problems.append(f"d_vocab_out={cfg.d_vocab_out} != d_vocab={cfg.d_vocab}")
    for name, default in _LLAMA_DEFAULTS.items():
        if getattr(cfg, name, default) != default:
            problems.append(f"{name}={getattr(cfg, name)!r} (need {default!r})")
    if problems:
        raise ValueError("this model is not a Llama with hidden_act='linear': " + "; ".join(problems))


def _nonzero(state: dict[str, Tensor], suffixes: tuple[str, ...]) -> bool:
    return any(bool(t.any()) for k, t in state.items() if k.endswith(suffixes))


def hf_state_dict(model: Any) -> tuple[dict[str, Tensor], dict[str, bool]]:
    """The ``LlamaForCausalLM`` state dict of a bilinear model.

    Args:
        model: a bilinear HookedTransformer (see ``to_hf`` for what is required).

    Returns:
        ``(state, flags)``: the tensors under Hugging Face names, and the
        ``attention_bias`` / ``mlp_bias`` config flags they need.

    Raises:
        ValueError: if the model is not exactly a linear-activation Llama (the message
            names every field that differs), or has an unembedding bias.
    """
    cfg = model.cfg
    _check_exportable(cfg)
    ours = tl_state_dict(model)
    for suffix, why in (("unembed.b_U", "a Llama lm_head has no bias"), (".b_in", _B_IN)):
        if _nonzero(ours, (suffix,)):
            raise ValueError(f"{suffix.lstrip('.')} is non-zero: {why}; zero it to export")
    flags = {
        "attention_bias": _nonzero(ours, (".b_Q", ".b_K", ".b_V", ".b_O")),
        "mlp_bias": _nonzero(ours, (".b_out",)),
    }
    perm = rotary_permutation(cfg.d_head, cfg.rotary_adjacent_pairs)
    d_model = cfg.d_model
    state = {"model.embed_tokens.weight": ours["embed.W_E"], "lm_head.weight": ours["unembed.W_U"].T}
    state["model.norm.weight"] = ours.get("ln_final.w", torch.ones(d_model, dtype=cfg.dtype))
    for layer in range(cfg.n_layers):
        src, dst = f"blocks.{layer}.", f"model.layers.{layer}."
        attn, mlp = src + "attn.", src + "mlp."
        for name, hf in (("Q", "q_proj"), ("K", "k_proj"), ("V", "v_proj")):
            weight, bias = ours[attn + "W_" + name], ours[attn + "b_" + name]  # [h, d_model, d_head], [h, d_head]
            if name != "V":
                weight, bias = weight[:, :, perm], bias[:, perm]
            state[f"{dst}self_attn.{hf}.weight"] = weight.permute(0, 2, 1).reshape(-1, d_model)  # [h*d_head, d_model]
            if flags["attention_bias"]:
                state[f"{dst}self_attn.{hf}.bias"] = bias.reshape(-1)
        state[f"{dst}self_attn.o_proj.weight"] = ours[attn + "W_O"].reshape(-1, d_model).T  # [d_model, h*d_head]
        if flags["attention_bias"]:
            state[f"{dst}self_attn.o_proj.bias"] = ours[attn + "b_O"]
        state[f"{dst}mlp.gate_proj.weight"] = ours[mlp + "W_gate"].T
        state[f"{dst}mlp.up_proj.weight"] = ours[mlp + "W_in"].T
        state[f"{dst}mlp.down_proj.weight"] = ours[mlp + "W_out"].T
        if flags["mlp_bias"]:
            for hf in ("gate_proj", "up_proj"):
                state[f"{dst}mlp.{hf}.bias"] = torch.zeros_like(ours[mlp + "b_in"])
            state[f"{dst}mlp.down_proj.bias"] = ours[mlp + "b_out"]
        for ln, hf in (("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm")):
            state[f"{dst}{hf}.weight"] = ours.get(f"{src}{ln}.w", torch.ones(d_model, dtype=cfg.dtype))
    return {k: v.contiguous().cpu() for k, v in state.items()}, flags


def llama_config(model: Any, flags: dict[str, bool] | None = None) -> Any:
    """The ``transformers.LlamaConfig`` of a bilinear model.

    Args:
        model: a bilinear HookedTransformer (its ``tokenizer``, if any, gives the special token ids).
        flags: ``attention_bias`` / ``mlp_bias`` (default: both False).

    Returns:
        The config, with ``hidden_act="linear"`` and ``tie_word_embeddings=False``.
    """
    from transformers import LlamaConfig

    cfg, tokenizer = model.cfg, getattr(model, "tokenizer", None)
    token_ids = {f"{name}_token_id": getattr(tokenizer, f"{name}_token_id", None) for name in ("bos", "eos", "pad")}
    return LlamaConfig(
        vocab_size=cfg.d_vocab,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_heads,
        head_dim=cfg.d_head,
        hidden_act=LINEAR_ACTS[0],
        max_position_embeddings=cfg.n_ctx,
        rms_norm_eps=cfg.eps,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rotary_base)},
        dtype=str(cfg.dtype).removeprefix("torch."),
        architectures=["LlamaForCausalLM"],
        **(flags or {}),
        **token_ids,
    )


def to_hf(model: Any, path: str | os.PathLike, *, tokenizer: Any = None) -> Path:
    """Write ``model`` as a standard ``LlamaForCausalLM`` checkpoint directory, atomically.

    ``transformers.AutoModelForCausalLM.from_pretrained(path)`` then loads it with no
    custom code, and its logits equal ours.

    Args:
        model: a bilinear HookedTransformer: RMS norms, full rotary, the default
            attention scale, ``d_vocab_out == d_vocab``, no unembedding bias.
        path: the directory to create or replace (``config.json``, ``model.safetensors``,
            ``generation_config.json``, tokenizer files).
        tokenizer: a Hugging Face tokenizer (default: ``model.tokenizer``, if any).

    Returns:
        The directory.

    Raises:
        ValueError: if the model is not exactly a linear-activation Llama (the message names
            every field that differs).
        RunLocked: if ``path`` lies in a run another process is writing (``atomic_directory``).
    """
    from safetensors.torch import save_file
    from transformers import GenerationConfig

    from tl_bilinear.model import atomic_directory

    state, flags = hf_state_dict(model)
    config = llama_config(model, flags)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    with atomic_directory(path, "tl_bilinear.to_hf") as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        GenerationConfig.from_model_config(config).save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        config.save_pretrained(str(tmp))
    return Path(path)


def _check_importable(config: Any) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type != MODEL_TYPE:
        raise ValueError(
            f"model_type={model_type!r} is not supported; from_hf reads Llama-family checkpoints "
            f"(model_type={MODEL_TYPE!r}, LlamaForCausalLM) with hidden_act='linear'"
        )
    if config.hidden_act not in LINEAR_ACTS:
        raise ValueError(
            f"hidden_act={config.hidden_act!r}: this Llama's MLP is gated by a nonlinearity, not bilinear; "
            f"only hidden_act='linear' is a bilinear model (a SwiGLU model must first be annealed to bilinear)"
        )
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"rope_type={rope.get('rope_type')!r}: only the default rotary embedding is supported")
    n_kv = config.num_key_value_heads or config.num_attention_heads
    if n_kv != config.num_attention_heads:
        raise ValueError(
            f"num_key_value_heads={n_kv} != num_attention_heads={config.num_attention_heads}: "
            "grouped-query attention is not supported"
        )


def _fold_norm(weight: Tensor, norm: Tensor, name: str, fold_norms: bool) -> Tensor:
    """``weight`` [out, d_model] with an RMSNorm gain folded into its input columns."""
    if bool((norm == 1).all()):
        return weight
    if not fold_norms:
        raise ValueError(
            f"{name} has non-unit weights, which an RMSPre model cannot keep; pass fold_norms=True to fold "
            "them into the next linear maps (exact up to rounding)"
        )
    return weight * norm.to(weight.dtype)[None, :]


def llama_to_tl_state(config: Any, state: dict[str, Tensor], fold_norms: bool = True) -> dict[str, Tensor]:
    """The TransformerLens state dict of a linear-activation ``LlamaForCausalLM`` state dict.

    Args:
        config: the ``LlamaConfig``.
        state: the Hugging Face tensors.
        fold_norms: fold non-unit RMSNorm weights into the following linear maps (else refuse them).

    Returns:
        Tensors under HookedTransformer names (biases zero where the checkpoint has none).

    Raises:
        ValueError: for non-unit norm weights with ``fold_norms=False``, or a non-zero
            ``gate_proj`` bias (TransformerLens's gated MLP has none).
    """
    n_heads, d_model = config.num_attention_heads, config.hidden_size
    d_head = getattr(config, "head_dim", None) or d_model // n_heads
    inverse = torch.argsort(rotary_permutation(d_head))
    lm_head = state.get("lm_head.weight", state["model.embed_tokens.weight"])  # tied embeddings: a copy
    ours = {
        "embed.W_E": state["model.embed_tokens.weight"],
        "unembed.W_U": _fold_norm(lm_head, state["model.norm.weight"], "model.norm", fold_norms).T,
        "unembed.b_U": torch.zeros(lm_head.shape[0], dtype=lm_head.dtype),
    }
    for layer in range(config.num_hidden_layers):
        src, dst = f"model.layers.{layer}.", f"blocks.{layer}."
        ln1, ln2 = state[src + "input_layernorm.weight"], state[src + "post_attention_layernorm.weight"]
        for name, hf in (("Q", "q_proj"), ("K", "k_proj"), ("V", "v_proj")):
            weight = _fold_norm(state[f"{src}self_attn.{hf}.weight"], ln1, src + "input_layernorm", fold_norms)
            weight = weight.reshape(n_heads, d_head, d_model)
            bias = state.get(f"{src}self_attn.{hf}.bias", weight.new_zeros(n_heads * d_head)).reshape(n_heads, d_head)
            if name != "V":
                weight, bias = weight[:, inverse], bias[:, inverse]
            ours[f"{dst}attn.W_{name}"] = weight.permute(0, 2, 1).contiguous()  # [h, d_model, d_head]
            ours[f"{dst}attn.b_{name}"] = bias.contiguous()
        o_proj = state[src + "self_attn.o_proj.weight"]  # [d_model, h*d_head]
        ours[dst + "attn.W_O"] = o_proj.T.reshape(n_heads, d_head, d_model).contiguous()
        ours[dst + "attn.b_O"] = state.get(src + "self_attn.o_proj.bias", o_proj.new_zeros(d_model))
        for hf in ("gate_proj", "up_proj"):
            bias = state.get(f"{src}mlp.{hf}.bias")
            if bias is not None and bool(bias.any()):
                raise ValueError(f"{src}mlp.{hf}.bias is non-zero: {_PROJ_BIAS}")
        gate = _fold_norm(state[src + "mlp.gate_proj.weight"], ln2, src + "post_attention_layernorm", fold_norms)
        up = _fold_norm(state[src + "mlp.up_proj.weight"], ln2, src + "post_attention_layernorm", fold_norms)
        down = state[src + "mlp.down_proj.weight"]
        ours[dst + "mlp.W_gate"], ours[dst + "mlp.W_in"] = gate.T.contiguous(), up.T.contiguous()
        ours[dst + "mlp.W_out"] = down.T.contiguous()
        ours[dst + "mlp.b_in"] = up.new_zeros(up.shape[0])
        ours[dst + "mlp.b_out"] = state.get(src + "mlp.down_proj.bias", down.new_zeros(d_model))
    return ours


def hf_to_config(config: Any, dtype: torch.dtype | None = None, **overrides: Any) -> Any:
    """The bilinear HookedTransformerConfig of a linear-activation ``LlamaConfig``.

    Args:
        config: the ``LlamaConfig``.
        dtype: parameter dtype (default: the config's, else float32).
        **overrides: more ``bilinear_config`` fields (e.g. ``n_ctx`` for a long-context Llama).

    Returns:
        The config (RMSPre norms, adjacent-pairs rotary, no biases).

    Raises:
        ValueError: if the config is not a Llama with ``hidden_act='linear'``, default
            rotary and one key/value head per query head.
    """
    from tl_bilinear.config import bilinear_config

    _check_importable(config)
    if dtype is None:
        dtype = (
            config.dtype if isinstance(config.dtype, torch.dtype) else getattr(torch, str(config.dtype or "float32"))
        )
    rope = getattr(config, "rope_parameters", None) or {}
    fields = dict(
        model_name=str(getattr(config, "name_or_path", "") or "llama").rstrip("/").rsplit("/", 1)[-1],
        n_layers=config.num_hidden_layers,
        d_model=config.hidden_size,
        n_heads=config.num_attention_heads,
        d_head=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        d_mlp=config.intermediate_size,
        n_ctx=config.max_position_embeddings,
        d_vocab=config.vocab_size,
        eps=config.rms_norm_eps,
        rotary_base=rope.get("rope_theta", 10000.0),
        dtype=dtype,
    )
    return bilinear_config(**{**fields, **overrides})


def from_hf(
    path_or_model: str | os.PathLike | Any,
    *,
    tokenizer: Any = None,
    fold_norms: bool = True,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    **overrides: Any,
) -> Any:
    """A bilinear HookedTransformer from a linear-activation Hugging Face Llama.

    Save it as a tl-bilinear checkpoint with ``tl_bilinear.save``.

    Args:
        path_or_model: a checkpoint directory (``to_hf`` output) or a ``LlamaForCausalLM``.
        tokenizer: a Hugging Face tokenizer (default: the one in the directory, if any).
        fold_norms: fold non-unit RMSNorm weights into the following linear maps; if false,
            refuse them.
        dtype: parameter dtype (default: the checkpoint's).
        device: where to put the model (default: CPU).
        **overrides: more ``bilinear_config`` fields (e.g. ``n_ctx``).

    Returns:
        The HookedTransformer (a TransformerBridge under TransformerLens 4.x) in eval mode,
        biases frozen, ``model.tokenizer`` set when there is a tokenizer.

    Raises:
        ValueError: if the model is not a Llama with ``hidden_act='linear'`` (the message
            says why), or has weights a bilinear HookedTransformer cannot represent.
        FileNotFoundError: if the directory has no ``config.json``.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if isinstance(path_or_model, str | os.PathLike):
        path = Path(path_or_model)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no Hugging Face checkpoint at {str(path)!r}: config.json is missing")
        config = AutoConfig.from_pretrained(str(path))
        _check_importable(config)  # before loading any weights
        hf_model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or "auto")
        if tokenizer is None and (path / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(path))
    else:
        hf_model = path_or_model
    cfg = hf_to_config(hf_model.config, dtype=dtype, device=str(device or "cpu"), **overrides)
    state = llama_to_tl_state(
        hf_model.config, {k: v.detach().cpu() for k, v in hf_model.state_dict().items()}, fold_norms
    )
    from tl_bilinear.model import from_state_dict

    state = {k: v.to(cfg.dtype) for k, v in state.items()}
    return from_state_dict(cfg, state, tokenizer=tokenizer, source=f"Llama -> {cfg.model_name}")
