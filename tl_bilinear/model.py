"""Building bilinear HookedTransformers; saving and loading checkpoint directories."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from tl_bilinear.compat import (
    HookedTransformer,
    HookedTransformerConfig,
    build_model,
    config_fields,
    load_tl_state,
    tl_state_dict,
)
from tl_bilinear.config import get_config, is_bias


def freeze_biases(model: HookedTransformer) -> HookedTransformer:
    """Zero every bias (``b_*``) of ``model`` and stop it from training.

    HookedTransformer always allocates biases; the paper's models have none. Frozen
    biases get no gradient, so optimizers (AdamW weight decay included) leave them at
    exactly zero.

    Args:
        model: the model, changed in place.

    Returns:
        The same model.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if is_bias(name):
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
    return freeze_biases(build_model(config, seed))


# --------------------------------------------------------------------------------------
# Checkpoint directories: config.json + model.safetensors + tokenizer/ (no pickle).
# --------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "tl-bilinear-checkpoint"
CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
#: Inside a run directory, the latest complete checkpoint lives here.
RUN_CHECKPOINT = "checkpoint"


def config_to_json(cfg: HookedTransformerConfig) -> dict[str, Any]:
    """A JSON-serialisable dict of a HookedTransformerConfig.

    ``dtype`` becomes its name (``"float32"``), ``device`` a string, numpy scalars
    Python numbers.

    Args:
        cfg: the config.

    Returns:
        A dict that ``json.dumps`` accepts and ``config_from_json`` inverts.
    """
    out: dict[str, Any] = {}
    for key, value in cfg.to_dict().items():
        if isinstance(value, torch.dtype):
            value = str(value).removeprefix("torch.")
        elif isinstance(value, torch.device):
            value = str(value)
        elif hasattr(value, "item") and not isinstance(value, torch.Tensor):
            value = value.item()  # numpy scalar
        out[key] = value
    json.dumps(out)  # fail here, naming nothing silently
    return out


def config_from_json(
    data: dict[str, Any], device: str | torch.device | None = None, dtype: torch.dtype | str | None = None
) -> HookedTransformerConfig:
    """Rebuild a HookedTransformerConfig written by ``config_to_json``.

    Args:
        data: the dict.
        device: override the stored device (default: the stored one if available here,
            else CPU).
        dtype: override the stored dtype.

    Returns:
        The config.

    Raises:
        ValueError: for an unknown dtype name.
    """
    fields = dict(data)
    dtype = dtype if dtype is not None else fields.get("dtype", "float32")
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r} in checkpoint config; expected e.g. 'float32'")
        dtype = getattr(torch, dtype)
    fields["dtype"] = dtype
    if device is None:
        device = fields.get("device") or "cpu"
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            device = "cpu"
    fields["device"] = str(device)
    known = config_fields()  # a checkpoint written under the other TransformerLens version may hold extra fields
    fields = {key: value for key, value in fields.items() if key in known and key != "n_params"}
    return HookedTransformerConfig.from_dict(fields)


def write_model_files(
    directory: str | os.PathLike,
    model: HookedTransformer,
    *,
    tokenizer: Any = None,
    preset: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``config.json``, ``model.safetensors`` and ``tokenizer/`` into ``directory``.

    Not atomic by itself: ``save`` and the trainer call it inside ``atomic_directory``.

    Args:
        directory: an existing directory.
        model: the model; its ``state_dict`` is written with safetensors.
        tokenizer: a Hugging Face tokenizer (default: ``model.tokenizer``, if any).
        preset: the preset name (default: ``model.cfg.model_name``).
        extra: more JSON fields for ``config.json`` (e.g. ``"train_config"``).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    meta: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "preset": preset if preset is not None else model.cfg.model_name,
        "model_config": config_to_json(model.cfg),
        "tokenizer": TOKENIZER_DIR if tokenizer is not None else None,
        **(extra or {}),
    }
    state = {name: tensor.contiguous().cpu() for name, tensor in tl_state_dict(model).items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": CHECKPOINT_FORMAT})
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    # config.json last: a directory with a config.json is complete.
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


@contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Build a directory elsewhere, then swap it into ``target`` in two renames.

    Yields a fresh temporary sibling directory. On success the old ``target`` (if any)
    is renamed to ``.<name>.old``, the new one renamed into place, and the old removed.
    If anything fails (an exception, a full disk, a kill) the previous ``target`` stays
    untouched; a kill between the two renames leaves ``.<name>.old``, which
    ``resolve_checkpoint`` finds and restores.

    Args:
        target: the directory to (re)place.

    Yields:
        The temporary directory to write into.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a checkpoint is an ordinary, shareable directory
    old = target.parent / f".{target.name}.old"
    try:
        yield tmp
        _fsync_tree(tmp)
        _recover(target)
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _recover(target: Path) -> None:
    """Finish an interrupted swap: restore ``.<name>.old`` if ``target`` is missing."""
    old = target.parent / f".{target.name}.old"
    if not target.exists() and (old / CONFIG_FILE).exists():
        os.rename(old, target)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory for ``path``: a checkpoint directory or a run directory.

    Args:
        path: a directory holding ``config.json``, or a run directory holding
            ``checkpoint/``.

    Returns:
        The directory that holds ``config.json`` and ``model.safetensors``.

    Raises:
        FileNotFoundError: if neither is there.
    """
    path = Path(path)
    if not path.exists() and not (path.parent / f".{path.name}.old").exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: the directory does not exist")
    _recover(path)
    if (path / CONFIG_FILE).is_file():
        return path
    _recover(path / RUN_CHECKPOINT)
    if (path / RUN_CHECKPOINT / CONFIG_FILE).is_file():
        return path / RUN_CHECKPOINT
    raise FileNotFoundError(
        f"{str(path)!r} holds no checkpoint: expected {CONFIG_FILE} there or in "
        f"{RUN_CHECKPOINT}/ (write one with tl_bilinear.save or `tl-bilinear train`)"
    )


def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint (see ``resolve_checkpoint``).

    Args:
        path: a checkpoint directory or a run directory.

    Returns:
        The JSON document (``model_config``, ``preset``, ``tokenizer``, and for a
        training run ``train_config``, ``step``, ``tokens``).

    Raises:
        FileNotFoundError: if there is no checkpoint at ``path``.
        ValueError: if ``config.json`` is not a tl-bilinear checkpoint config.
    """
    directory = resolve_checkpoint(path)
    meta = json.loads((directory / CONFIG_FILE).read_text())
    if meta.get("format") != CHECKPOINT_FORMAT or "model_config" not in meta:
        raise ValueError(f"{directory / CONFIG_FILE} is not a {CHECKPOINT_FORMAT} config.json")
    return meta


def save(model: HookedTransformer, path: str | os.PathLike, *, tokenizer: Any = None, **extra: Any) -> Path:
    """Save ``model`` (and its tokenizer) as a checkpoint directory, atomically.

    Args:
        model: the model.
        path: the checkpoint directory to create or replace.
        tokenizer: a Hugging Face tokenizer (default: ``model.tokenizer``).
        **extra: more JSON fields for ``config.json``.

    Returns:
        The checkpoint directory.
    """
    with atomic_directory(path) as tmp:
        write_model_files(tmp, model, tokenizer=tokenizer, extra=extra)
    return Path(path)


def load(
    path: str | os.PathLike, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None
) -> HookedTransformer:
    """Load a checkpoint directory (or a training run directory) as a HookedTransformer.

    Args:
        path: what ``save`` or ``tl-bilinear train`` wrote.
        device: where to put the model (default: the saved device if available, else CPU).
        dtype: the parameter dtype (default: the saved one).

    Returns:
        The model, in eval mode, biases frozen at zero, with ``model.tokenizer`` set when
        the checkpoint has a tokenizer.

    Raises:
        FileNotFoundError: if there is no checkpoint at ``path``.
        ValueError: if the files are not a tl-bilinear checkpoint or do not match.
    """
    from safetensors.torch import load_file

    directory = resolve_checkpoint(path)
    meta = read_checkpoint_config(directory)
    cfg = config_from_json(meta["model_config"], device=device, dtype=dtype)
    tokenizer = None
    if meta.get("tokenizer"):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory / meta["tokenizer"]))
    state = load_file(str(directory / WEIGHTS_FILE), device="cpu")
    return from_state_dict(cfg, state, tokenizer=tokenizer, source=f"{directory / WEIGHTS_FILE} (its config.json)")


def from_state_dict(
    cfg: HookedTransformerConfig, state: dict[str, torch.Tensor], *, tokenizer: Any = None, source: str = "the config"
) -> HookedTransformer:
    """A HookedTransformer of ``cfg`` holding the tensors of ``state``.

    Args:
        cfg: the config.
        state: every parameter of the model (buffers may be left out).
        tokenizer: a Hugging Face tokenizer for ``model.tokenizer``.
        source: where the tensors come from, for the error message.

    Returns:
        The model, in eval mode, biases frozen (kept as given).

    Raises:
        ValueError: if ``state`` does not hold exactly the model's parameters.
    """
    model = build_model(cfg, tokenizer=tokenizer)
    missing, unexpected = load_tl_state(model, state)
    if missing or unexpected:
        raise ValueError(f"the weights do not match {source}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, param in model.named_parameters():
        if is_bias(name):
            param.requires_grad_(False)
    return model.eval()
