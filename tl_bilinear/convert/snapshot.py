"""Reading a snapshot of the paper's released models: ``config.json`` and the weights.

The paper's code (``tdooms/bilinear-decomposition``, ``src/language/transformer.py``)
saves a Hugging Face ``PreTrainedModel``: a ``config.json`` with ``n_head, n_layer,
n_ctx, d_model, d_hidden, bilinear, gate, bias, normalization, tokenizer`` and the
state dict in ``model.safetensors`` (or sharded, or ``pytorch_model.bin``). This module
reads both and checks every tensor's shape; ``official.py`` maps them to TransformerLens.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CONFIG_FILE = "config.json"
#: Weight files, in the order they are looked for.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: Config fields the converter needs (the others have the paper code's defaults).
REQUIRED_FIELDS = ("n_head", "n_layer", "d_model", "d_hidden")
DEFAULTS: dict[str, Any] = dict(n_ctx=256, bilinear=True, gate=None, bias=False, normalization=True, tokenizer=None)
#: Gates of the paper's MLP (``shared/components.py``): name -> TransformerLens act_fn.
GATES = {None: "bilinear", "relu": "relu", "silu": "silu", "gelu": "gelu"}


@dataclass(frozen=True)
class OfficialConfig:
    """The fields of an official ``config.json`` the architecture depends on."""

    n_head: int
    n_layer: int
    n_ctx: int
    d_model: int
    d_hidden: int
    bilinear: bool
    gate: str | None
    bias: bool
    normalization: bool
    tokenizer: str | None

    @property
    def d_head(self) -> int:
        """Per-head width: ``d_model // n_head``."""
        return self.d_model // self.n_head


def read_config(directory: Path) -> OfficialConfig:
    """Parse and check a snapshot's ``config.json``.

    Args:
        directory: the snapshot directory.

    Returns:
        The config.

    Raises:
        FileNotFoundError: if there is no ``config.json``.
        ValueError: for a missing or bad field (named, with what is expected).
    """
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{str(directory)!r} has no {CONFIG_FILE}: not a snapshot of an official model")
    data = json.loads(path.read_text())
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise ValueError(f"{path} lacks {missing}: an official config names {list(REQUIRED_FIELDS)}")
    fields = {name: data.get(name, default) for name, default in {**dict.fromkeys(REQUIRED_FIELDS), **DEFAULTS}.items()}
    for name in ("n_head", "n_layer", "n_ctx", "d_model", "d_hidden"):
        value = fields[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{path}: {name} must be a positive integer, got {value!r}")
    if fields["d_model"] % fields["n_head"] or (fields["d_model"] // fields["n_head"]) % 2:
        raise ValueError(
            f"{path}: d_model={fields['d_model']} must split into n_head={fields['n_head']} heads of even width "
            "(rotary embeddings rotate pairs)"
        )
    if fields["gate"] not in GATES:
        raise ValueError(f"{path}: unknown gate {fields['gate']!r}; the paper's code knows {list(GATES)}")
    return OfficialConfig(**fields)


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The snapshot's state dict (float tensors on CPU), from the first weight file found.

    Args:
        directory: the snapshot directory.

    Returns:
        ``{name: tensor}`` as the paper's ``Transformer.state_dict()`` names them.

    Raises:
        FileNotFoundError: if none of ``WEIGHT_FILES`` is there.
    """
    from safetensors.torch import load_file

    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            return {k: v for shard in shards for k, v in load_file(str(directory / shard)).items()}
        if name.endswith(".bin"):
            return torch.load(path, map_location="cpu", weights_only=True)
        return load_file(str(path))
    raise FileNotFoundError(f"{str(directory)!r} holds no weights: expected one of {list(WEIGHT_FILES)}")


def expected_shapes(cfg: OfficialConfig, d_vocab: int) -> dict[str, tuple[int, ...]]:
    """Every tensor an official snapshot of ``cfg`` holds, with its shape.

    Args:
        cfg: the official config.
        d_vocab: the vocabulary size (the rows of ``transformer.wte.weight``).

    Returns:
        ``{name: shape}`` (the optional ``rotary.inv_freq`` buffers are not listed).
    """
    d, h = cfg.d_model, cfg.d_hidden
    shapes: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (d_vocab, d), "lm_head.weight": (d_vocab, d)}
    for i in range(cfg.n_layer):
        layer = f"transformer.h.{i}"
        shapes[f"{layer}.attn.qkv.weight"] = (3 * d, d)
        shapes[f"{layer}.attn.o.weight"] = (d, d)
        shapes[f"{layer}.mlp.w.weight"] = ((2 * h if cfg.bilinear else h), d)
        shapes[f"{layer}.mlp.p.weight"] = (d, h)
        if cfg.bias:
            shapes[f"{layer}.mlp.w.bias"] = ((2 * h if cfg.bilinear else h),)
            shapes[f"{layer}.mlp.p.bias"] = (d,)
    return shapes


def check_weights(state: dict[str, torch.Tensor], cfg: OfficialConfig, source: str | os.PathLike) -> int:
    """Check that ``state`` holds exactly the tensors of ``cfg``, each of the right shape.

    Args:
        state: the snapshot's state dict.
        cfg: its config.
        source: the snapshot (named in errors).

    Returns:
        The vocabulary size (rows of ``transformer.wte.weight``).

    Raises:
        ValueError: naming the first missing, misshapen or unexpected tensor and the
            shape the config implies.
    """
    wte = state.get("transformer.wte.weight")
    if wte is None or wte.ndim != 2:
        shape = None if wte is None else tuple(wte.shape)
        raise ValueError(
            f"{source}: transformer.wte.weight is {'missing' if wte is None else f'of shape {shape}'}; "
            f"expected [d_vocab, d_model={cfg.d_model}]"
        )
    d_vocab = wte.shape[0]
    shapes = expected_shapes(cfg, d_vocab)
    for name, shape in shapes.items():
        if name not in state:
            raise ValueError(f"{source}: tensor {name} is missing; expected shape {list(shape)}")
        if tuple(state[name].shape) != shape:
            raise ValueError(
                f"{source}: tensor {name} has shape {list(state[name].shape)}; the config "
                f"(d_model={cfg.d_model}, d_hidden={cfg.d_hidden}, n_head={cfg.n_head}, d_vocab={d_vocab}) "
                f"implies {list(shape)}"
            )
    unexpected = sorted(k for k in state if k not in shapes and not k.endswith("rotary.inv_freq"))
    if unexpected:
        raise ValueError(f"{source}: unexpected tensor(s) {unexpected[:5]}; not part of the official architecture")
    return d_vocab
