"""Reading checkpoint directories, validated: one clear error naming the file and the fix.

A checkpoint directory holds ``config.json`` (a JSON object: ``model_config``, ``preset``,
``tokenizer`` ...), ``model.safetensors`` and optionally ``tokenizer/`` and the training
state. Every reader (``tl_bilinear.load``, the CLI commands, ``--resume``) goes through the
functions here. They read headers and shapes (safetensors ``safe_open``), not whole tensors,
where they can, and never write: an interrupted save (``.checkpoint.old``) is read where it
is and put back by the next writer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tl_bilinear.compat import (
    TL4,
    HookedTransformer,
    HookedTransformerConfig,
    build_model,
    config_fields,
    load_tl_state,
    tl_state_dict,
)
from tl_bilinear.rundir import RUN_CHECKPOINT  # inside a run directory, the latest complete checkpoint

CHECKPOINT_FORMAT = "tl-bilinear-checkpoint"
CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
#: Restore advice for a damaged file.
_RESTORE = "restore it from a copy (or retrain)"
#: Saved buffers a checkpoint may leave out (they are rebuilt from the config).
_OPTIONAL = ("IGNORE", "mask", "rotary_sin", "rotary_cos")


class CheckpointError(ValueError):
    """A checkpoint is damaged or inconsistent; the message names the file and the fix."""


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


def read_json_object(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON file that must hold an object.

    Args:
        path: the file.

    Returns:
        The parsed object.

    Raises:
        FileNotFoundError: if the file is missing.
        CheckpointError: for invalid JSON (naming line and column) or another JSON type.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); {_RESTORE}"
        ) from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path} is not UTF-8 JSON text; {_RESTORE}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a JSON {type(data).__name__}, not a JSON object; {_RESTORE}")
    return data


def _old(directory: Path) -> Path:
    return directory.parent / f".{directory.name}.old"


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory for ``path``: a checkpoint directory or a run directory.

    Read-only: a save interrupted between its two renames left the previous checkpoint in
    ``.<name>.old``; it is returned from there (the writer's next save puts it back).

    Args:
        path: a directory holding ``config.json``, or a run directory holding
            ``checkpoint/``.

    Returns:
        The directory that holds ``config.json`` and ``model.safetensors``.

    Raises:
        FileNotFoundError: if neither is there.
        CheckpointError: if a checkpoint is there but its ``config.json`` is missing.
    """
    path = Path(path)
    if not path.exists() and not _old(path).exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: the directory does not exist")
    for candidate in (path, path / RUN_CHECKPOINT):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
        if not candidate.exists() and (_old(candidate) / CONFIG_FILE).is_file():
            return _old(candidate)
        if (candidate / WEIGHTS_FILE).exists():
            raise CheckpointError(
                f"{candidate / CONFIG_FILE} is missing ({WEIGHTS_FILE} is there): the checkpoint is damaged; "
                f"{_RESTORE.replace('it', 'config.json', 1)}"
            )
    raise FileNotFoundError(
        f"{str(path)!r} holds no checkpoint: expected {CONFIG_FILE} there or in "
        f"{RUN_CHECKPOINT}/ (write one with tl_bilinear.save or `tl-bilinear train`)"
    )


def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed, checked ``config.json`` of a checkpoint (see ``resolve_checkpoint``).

    Args:
        path: a checkpoint directory or a run directory.

    Returns:
        The JSON document (``model_config``, ``preset``, ``tokenizer``, and for a
        training run ``train_config``, ``step``, ``tokens``).

    Raises:
        FileNotFoundError: if there is no checkpoint at ``path``.
        CheckpointError: if ``config.json`` is not valid JSON, not an object, or not a
            tl-bilinear checkpoint config.
    """
    file = resolve_checkpoint(path) / CONFIG_FILE
    meta = read_json_object(file)
    if meta.get("format") != CHECKPOINT_FORMAT or not isinstance(meta.get("model_config"), dict):
        raise CheckpointError(
            f"{file} is not a {CHECKPOINT_FORMAT} config.json (no 'format' / 'model_config' object); {_RESTORE}"
        )
    return meta


def model_config(
    directory: Path, meta: dict[str, Any], device: Any = None, dtype: Any = None
) -> HookedTransformerConfig:
    """The HookedTransformerConfig of a checkpoint's ``config.json``.

    Args:
        directory: the checkpoint directory (named in errors).
        meta: its ``read_checkpoint_config``.
        device: as ``config_from_json``.
        dtype: as ``config_from_json``.

    Returns:
        The config.

    Raises:
        CheckpointError: if ``model_config`` is not a valid config.
    """
    try:
        return config_from_json(meta["model_config"], device=device, dtype=dtype)
    except (TypeError, ValueError, AssertionError) as err:
        raise CheckpointError(
            f"{directory / CONFIG_FILE}: model_config is not a valid config ({err}); {_RESTORE}"
        ) from None


def weight_shapes(file: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a safetensors file, from its header only.

    Args:
        file: the ``.safetensors`` file.

    Returns:
        ``{name: shape}``.

    Raises:
        CheckpointError: if the file is missing, empty, cut short or not safetensors.
    """
    from safetensors import safe_open

    file = Path(file)
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: the checkpoint is incomplete; {_RESTORE}")
    try:
        with safe_open(str(file), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError (not exported everywhere)
        raise CheckpointError(f"{file} is not a readable safetensors file ({err}); {_RESTORE}") from None


def expected_shapes(cfg: HookedTransformerConfig) -> dict[str, tuple[int, ...]]:
    """The checkpoint-format shapes of a model built from ``cfg`` (3.9: on the meta device, no memory).

    Args:
        cfg: the model config.

    Returns:
        ``{name: shape}`` under HookedTransformer names (``model_shapes``).
    """
    if TL4:  # a TransformerBridge is built for real
        return model_shapes(build_model(cfg))
    with torch.device("meta"):
        return model_shapes(HookedTransformer(cfg, move_to_device=False))


def model_shapes(model: HookedTransformer) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of ``model``'s weights as a checkpoint stores them (HookedTransformer names, no buffers)."""
    return {name: tuple(t.shape) for name, t in tl_state_dict(model).items()}


def check_shapes(file: Path, found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> None:
    """Compare a weights file's tensors with the model its ``config.json`` describes.

    Args:
        file: the weights file (named in the error).
        found: its ``weight_shapes``.
        expected: the model's ``{name: shape}``.

    Raises:
        CheckpointError: for a tensor of another shape (name, shape, expected), a missing
            tensor or an extra one.
    """
    fix = "the weights and config.json do not belong together: restore the matching file from a copy"
    wrong = [(n, found[n], s) for n, s in expected.items() if n in found and tuple(found[n]) != tuple(s)]
    missing = [n for n in expected if n not in found and not n.endswith(_OPTIONAL)]
    extra = [n for n in found if n not in expected and not n.endswith(_OPTIONAL)]
    more = lambda items: f" (and {len(items) - 1} more)" if len(items) > 1 else ""  # noqa: E731
    if wrong:
        name, shape, want = wrong[0]
        raise CheckpointError(
            f"{file}: tensor {name} has shape {list(shape)}, but config.json needs {list(want)}{more(wrong)}; {fix}"
        )
    if missing:
        raise CheckpointError(f"{file} lacks tensor {missing[0]}{more(missing)} that config.json's model has; {fix}")
    if extra:
        raise CheckpointError(f"{file} has tensor {extra[0]}{more(extra)} that config.json's model lacks; {fix}")


def load_weights(model: HookedTransformer, directory: str | os.PathLike, device: str | torch.device = "cpu") -> None:
    """Load a checkpoint's ``model.safetensors`` into ``model``, after checking its header.

    Args:
        model: a model built from the checkpoint's config.
        directory: the checkpoint directory.
        device: where the tensors are read to.

    Raises:
        CheckpointError: as ``weight_shapes`` and ``check_shapes``.
        ValueError: under TransformerLens 4.x, for non-zero MLP biases (``load_tl_state``).
    """
    from safetensors.torch import load_file

    file = Path(directory) / WEIGHTS_FILE
    check_shapes(file, weight_shapes(file), model_shapes(model))
    load_tl_state(model, load_file(str(file), device=str(device)))


def load_checkpoint_tokenizer(directory: Path, meta: dict[str, Any], d_vocab: int) -> Any:
    """The checkpoint's tokenizer (local files only), checked against the model's ``d_vocab``.

    The tokenizer must have the size recorded when the checkpoint was saved (``tokenizer_size``;
    older checkpoints: exactly ``d_vocab``), and never more tokens than ``d_vocab`` (an id past
    the embedding). A converted model may pad its embedding beyond its tokenizer.

    Args:
        directory: the checkpoint directory.
        meta: its ``read_checkpoint_config``.
        d_vocab: the model's vocabulary size.

    Returns:
        The Hugging Face tokenizer, or ``None`` if the checkpoint has none.

    Raises:
        CheckpointError: if the tokenizer folder is missing or unreadable, or its size is
            not the recorded one (or exceeds ``d_vocab``).
    """
    name = meta.get("tokenizer")
    if not name:
        return None
    folder = directory / str(name)
    fix = "copy the run's tokenizer there (a training run also keeps it in RUN/tokenizer)"
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is missing (config.json names tokenizer folder {name!r}); {fix}")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{folder} is not a readable tokenizer ({reason}); {fix}") from None
    expected = meta.get("tokenizer_size") or d_vocab
    if len(tokenizer) != expected or len(tokenizer) > d_vocab:
        saved = f" and its tokenizer had {expected}" if expected != d_vocab else ""
        raise CheckpointError(
            f"{folder} has {len(tokenizer)} tokens but the model's d_vocab is {d_vocab}{saved}: it is not this "
            f"model's tokenizer (was it overwritten?); {fix}"
        )
    return tokenizer


@dataclass
class CheckpointReport:
    """What ``inspect_checkpoint`` found: the parts it could read and every problem."""

    directory: Path
    meta: dict[str, Any] | None = None
    shapes: dict[str, tuple[int, ...]] | None = None
    problems: list[str] = field(default_factory=list)


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointReport:
    """Check a whole checkpoint without loading its tensors (for ``tl-bilinear info``).

    Args:
        path: a checkpoint directory or a run directory.

    Returns:
        The report; ``shapes`` is set only when the weights match the config.

    Raises:
        FileNotFoundError: if there is no checkpoint at ``path`` at all.
    """
    report = CheckpointReport(Path(path))
    try:
        report.directory = directory = resolve_checkpoint(path)
        report.meta = meta = read_checkpoint_config(directory)
        cfg = model_config(directory, meta)
    except CheckpointError as err:
        report.problems.append(str(err))
        return report

    def attempt(check: Any) -> Any:
        try:
            return check()
        except CheckpointError as err:
            report.problems.append(str(err))
            return None

    file = directory / WEIGHTS_FILE
    shapes = attempt(lambda: weight_shapes(file))
    if shapes is not None and attempt(lambda: check_shapes(file, shapes, expected_shapes(cfg)) or True):
        report.shapes = shapes
    attempt(lambda: load_checkpoint_tokenizer(directory, meta, cfg.d_vocab))
    for name, read in (("trainer_state.json", read_json_object), ("trainer_state.safetensors", weight_shapes)):
        if (directory / name).exists():
            attempt(lambda: read(directory / name))  # noqa: B023 (called at once)
    return report
