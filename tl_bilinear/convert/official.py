"""The paper's released checkpoints (``tdooms/ts-medium``, ``fw-small``, ...) as HookedTransformers.

The official architecture (``tdooms/bilinear-decomposition``, ``src/language``), per layer::

    x = x + attn(rms(x)) / sqrt(2 n_layer)      # qkv fused, rotary (rotate-half), causal
    x = x + p(gate(w_left rms(x)) * w_right rms(x))
    logits = lm_head(rms(x))                    # rms: x / sqrt(mean(x^2) + 1e-8), no gain

Mapped exactly onto TransformerLens: ``W_gate = w_leftᵀ``, ``W_in = w_rightᵀ``,
``W_out = pᵀ``, the attention scale folded into ``W_O``, and each head's Q/K
dimensions permuted from rotate-half to the adjacent-pairs rotary layout our configs use
(``ours[2i] = theirs[i]``, ``ours[2i+1] = theirs[i + d_head/2]``; q·k is unchanged).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from tl_bilinear.compat import HookedTransformer, HookedTransformerConfig
from tl_bilinear.config import bilinear_config
from tl_bilinear.convert.snapshot import GATES, OfficialConfig, check_weights, read_config, read_weights
from tl_bilinear.model import freeze_biases

logger = logging.getLogger(__name__)

#: The paper code's tokenizer names (``Transformer.get_tokenizer``): hub repo and pad token.
OFFICIAL_TOKENIZERS = {
    "ts-4096": ("tdooms/ts-tokenizer-4096", "[EOS]"),
    "mistral": ("mistral-community/Mixtral-8x22B-v0.1", "</s>"),
    "gpt2": ("openai-community/gpt2", "<|endoftext|>"),
}
#: RMSNorm epsilon of the paper's code.
OFFICIAL_EPS = 1e-8


def rotate_half_to_adjacent(d_head: int) -> Int[Tensor, " d_head"]:
    """The index permutation from rotate-half to adjacent-pairs rotary dimensions.

    Args:
        d_head: the (even) head width.

    Returns:
        ``perm`` with ``ours = theirs[..., perm]``: ``[0, d/2, 1, d/2 + 1, ...]``.
    """
    half = torch.arange(d_head // 2)
    return torch.stack([half, half + d_head // 2], dim=-1).flatten()


def official_model_config(cfg: OfficialConfig, d_vocab: int, name: str, **overrides: Any) -> HookedTransformerConfig:
    """The HookedTransformerConfig that computes what an official config describes.

    Args:
        cfg: the official config.
        d_vocab: the vocabulary size.
        name: ``model_name`` of the result.
        **overrides: other HookedTransformerConfig fields (``device``, ``dtype``).

    Returns:
        The config.

    Raises:
        ValueError: for an MLP TransformerLens cannot represent (a linear MLP without a gate).
    """
    if not cfg.bilinear and cfg.gate is None:
        raise ValueError(
            "the official config has bilinear=False and no gate: a purely linear MLP, which "
            "TransformerLens's MLPs cannot represent (they always apply an activation)"
        )
    return bilinear_config(
        model_name=name,
        n_layers=cfg.n_layer,
        d_model=cfg.d_model,
        n_heads=cfg.n_head,
        d_head=cfg.d_head,
        n_ctx=cfg.n_ctx,
        d_vocab=d_vocab,
        d_mlp=cfg.d_hidden,
        act_fn=GATES[cfg.gate],
        gated_mlp=cfg.bilinear,
        normalization_type="RMSPre" if cfg.normalization else None,
        eps=OFFICIAL_EPS,
        rotary_dim=cfg.d_head,
        rotary_base=10000,
        **overrides,
    )


def official_to_tl_state(state: dict[str, torch.Tensor], cfg: OfficialConfig) -> dict[str, torch.Tensor]:
    """Map an official state dict onto HookedTransformer parameter names.

    Args:
        state: the snapshot's tensors (checked with ``check_weights``).
        cfg: its config.

    Returns:
        ``{TransformerLens name: tensor}`` for every weight (biases absent stay zero).

    Raises:
        ValueError: if the gated MLP has non-zero input biases, which TransformerLens's
            gated MLP cannot represent.
    """
    n_head, d_head, d_model, d_hidden = cfg.n_head, cfg.d_head, cfg.d_model, cfg.d_hidden
    perm = rotate_half_to_adjacent(d_head)
    scale = (2.0 * cfg.n_layer) ** -0.5
    out = {"embed.W_E": state["transformer.wte.weight"], "unembed.W_U": state["lm_head.weight"].T}
    for i in range(cfg.n_layer):
        layer = f"transformer.h.{i}"
        # qkv rows: (n=3, n_head, d_head); TL wants [n_head, d_model, d_head]
        q, k, v = state[f"{layer}.attn.qkv.weight"].reshape(3, n_head, d_head, d_model).transpose(-1, -2).unbind(0)
        out[f"blocks.{i}.attn.W_Q"] = q[..., perm]
        out[f"blocks.{i}.attn.W_K"] = k[..., perm]
        out[f"blocks.{i}.attn.W_V"] = v
        # o: [d_model, (n_head d_head)] -> [n_head, d_head, d_model], times the branch scale
        o = state[f"{layer}.attn.o.weight"].reshape(d_model, n_head, d_head).permute(1, 2, 0)
        out[f"blocks.{i}.attn.W_O"] = o * scale
        w = state[f"{layer}.mlp.w.weight"]
        out[f"blocks.{i}.mlp.W_out"] = state[f"{layer}.mlp.p.weight"].T
        if cfg.bias:
            out[f"blocks.{i}.mlp.b_out"] = state[f"{layer}.mlp.p.bias"]
        if not cfg.bilinear:
            out[f"blocks.{i}.mlp.W_in"] = w.T
            if cfg.bias:
                out[f"blocks.{i}.mlp.b_in"] = state[f"{layer}.mlp.w.bias"]
            continue
        out[f"blocks.{i}.mlp.W_gate"], out[f"blocks.{i}.mlp.W_in"] = w[:d_hidden].T, w[d_hidden:].T
        if cfg.bias and state[f"{layer}.mlp.w.bias"].any():
            raise ValueError(
                f"{layer}.mlp.w.bias is non-zero: TransformerLens's gated MLP has no bias on its two input "
                "branches (only after their product), so this model cannot be converted exactly"
            )
    return {name: tensor.contiguous() for name, tensor in out.items()}


def _snapshot_directory(path_or_repo: str | os.PathLike, revision: str | None) -> Path:
    path = Path(path_or_repo)
    if path.is_dir():
        return path
    name = str(path_or_repo)
    if path.exists() or name.count("/") != 1 or name.startswith((".", "/")):
        raise FileNotFoundError(
            f"{name!r} is neither a snapshot directory nor a Hugging Face repo id like 'tdooms/ts-medium'"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision))
    except Exception as err:  # offline, unknown repo, no network: one clear message
        raise FileNotFoundError(
            f"{name!r} is no directory here, and the Hugging Face hub could not provide it "
            f"({type(err).__name__}: {err}); check the path, or download the repo where the hub is reachable "
            "(huggingface-cli download) and pass its directory"
        ) from err


def _load_tokenizer(tokenizer: Any, directory: Path, cfg: OfficialConfig) -> Any:
    from transformers import AutoTokenizer

    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    if tokenizer is not None:
        return AutoTokenizer.from_pretrained(str(tokenizer))
    if (directory / "tokenizer_config.json").is_file() or (directory / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(directory))
    if cfg.tokenizer not in OFFICIAL_TOKENIZERS:
        raise ValueError(
            f"{directory} has no tokenizer files and its config names tokenizer={cfg.tokenizer!r}, which is not "
            f"one of the paper's ({list(OFFICIAL_TOKENIZERS)}); pass tokenizer=DIRECTORY"
        )
    repo, pad = OFFICIAL_TOKENIZERS[cfg.tokenizer]
    try:
        return AutoTokenizer.from_pretrained(repo, pad_token=pad, padding_side="right")
    except OSError as err:
        raise FileNotFoundError(
            f"the tokenizer {repo!r} (config tokenizer={cfg.tokenizer!r}) is not available here ({err}); "
            "download it where the hub is reachable and pass tokenizer=DIRECTORY"
        ) from err


def from_official(
    path_or_repo: str | os.PathLike,
    *,
    tokenizer: Any = None,
    revision: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> HookedTransformer:
    """Load one of the paper's released models as an exactly equivalent HookedTransformer.

    Args:
        path_or_repo: a snapshot directory (``config.json`` + ``model.safetensors``), or a
            Hugging Face repo id such as ``"tdooms/ts-medium"`` (downloaded with
            ``huggingface_hub.snapshot_download``; offline, only from the local cache).
        tokenizer: a tokenizer, or a tokenizer directory / hub name. Default: the
            snapshot's own tokenizer files, else the hub tokenizer its config names.
        revision: the hub revision (a branch, tag or commit).
        device: where to put the model (default: CPU).
        dtype: the parameter dtype (default: float32).

    Returns:
        The model in eval mode with ``model.tokenizer`` set; biases the official model
        lacks are zero and frozen. Its logits equal the official model's.

    Raises:
        FileNotFoundError: if the snapshot, its config, its weights or its tokenizer
            cannot be found.
        ValueError: for a missing, misshapen or unexpected tensor (named, with the shape
            the config implies), a tokenizer whose vocabulary does not fit, or an
            architecture TransformerLens cannot represent.
    """
    directory = _snapshot_directory(path_or_repo, revision)
    cfg = read_config(directory)
    state = read_weights(directory)
    d_vocab = check_weights(state, cfg, directory)
    tok = _load_tokenizer(tokenizer, directory, cfg)
    if len(tok) > d_vocab:  # ids past the embedding (a padded embedding, more rows, is fine)
        raise ValueError(
            f"the tokenizer has {len(tok)} tokens but transformer.wte.weight has only {d_vocab} rows; "
            "pass the tokenizer the model was trained with (tokenizer=DIRECTORY)"
        )
    # to_tokens must give what the tokenizer gave in training: a BOS only if the tokenizer adds one
    # (TransformerLens wraps the tokenizer to add one and strips it when default_prepend_bos is False)
    adds_bos = tok.bos_token_id is not None and tok("")["input_ids"][:1] == [tok.bos_token_id]
    overrides: dict[str, Any] = {"device": str(device or "cpu"), "default_prepend_bos": adds_bos}
    if dtype is not None:
        overrides["dtype"] = dtype
    name = Path(str(path_or_repo)).name if Path(path_or_repo).is_dir() else str(path_or_repo)
    model_cfg = official_model_config(cfg, d_vocab, name, **overrides)
    model = freeze_biases(HookedTransformer(model_cfg, tokenizer=tok, move_to_device=True))
    weights = official_to_tl_state(state, cfg)
    model.load_state_dict({**model.state_dict(), **weights})  # biases set here stay frozen
    logger.info("converted %s: %d layers, d_model %d, act_fn %s", directory, cfg.n_layer, cfg.d_model, model_cfg.act_fn)
    return model.eval()
