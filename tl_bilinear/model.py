"""Building bilinear HookedTransformers; saving and loading checkpoint directories."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from tl_bilinear.checkpoint import (  # noqa: F401 (CHECKPOINT_*, RUN_CHECKPOINT, config_*, resolve_*: re-exported)
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CONFIG_FILE,
    RUN_CHECKPOINT,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    config_from_json,
    config_to_json,
    load_checkpoint_tokenizer,
    load_weights,
    model_config,
    read_checkpoint_config,
    resolve_checkpoint,
)
from tl_bilinear.compat import (
    HookedTransformer,
    HookedTransformerConfig,
    build_model,
    load_tl_state,
    tl_state_dict,
)
from tl_bilinear.config import get_config, is_bias
from tl_bilinear.rundir import carry_lock, refuse_replacing_run, writing_into


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
# Writing checkpoint directories: config.json + model.safetensors + tokenizer/ (no pickle).
# Reading and validating them: tl_bilinear.checkpoint.
# --------------------------------------------------------------------------------------


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
        "tokenizer_size": len(tokenizer) if tokenizer is not None else None,
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
def atomic_directory(target: str | os.PathLike, command: str | None = None) -> Iterator[Path]:
    """Build a directory elsewhere, then swap it into ``target`` in two renames, under the run's lock.

    Every directory writer goes through it (``save``, ``to_hf``, the trainer's checkpoints,
    ``save_sae``, ``save_classifier``, ...), so each holds the writer lock of the run
    ``target`` lies in (``tl_bilinear.rundir.writing_into``) from before the temporary
    directory exists until the swap is done; a caller that holds it already (the trainer)
    takes it again at once.

    Yields a fresh temporary sibling directory. On success the old ``target`` (if any)
    is renamed to ``.<name>.old``, the new one renamed into place, and the old removed.
    If anything fails (an exception, a full disk, a kill) the previous ``target`` stays
    untouched. On Linux the swap is one atomic exchange (readers never see ``target``
    missing); elsewhere a kill between the two renames leaves ``.<name>.old``, which
    readers read where it is and the next save restores.

    Args:
        target: the directory to (re)place.
        command: what is writing, shown to a second writer (default: ``"writing <name>/"``).

    Yields:
        The temporary directory to write into.

    Raises:
        RunLocked: if another process is writing into that run; nothing is written.
        FileExistsError: if ``target`` holds a training run (``checkpoint/``: replacing it would
            lose the run; write to ``target/checkpoint`` instead), or ``target`` (or the run
            directory it lies in) is an existing file.
    """
    target = Path(target)
    with writing_into(target, command or f"writing {target.name}/") as run:
        refuse_replacing_run(target)
        with _swapped_in(target, keep_lock=run == target) as tmp:
            yield tmp


@contextmanager
def _swapped_in(target: Path, keep_lock: bool) -> Iterator[Path]:
    """``atomic_directory`` once locked; ``keep_lock``: ``target`` holds the lock file, which the new one gets."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a checkpoint is an ordinary, shareable directory
    old = target.parent / f".{target.name}.old"
    try:
        yield tmp
        _fsync_tree(tmp)
        if keep_lock:
            carry_lock(target, tmp)
        _recover(target)
        if old.exists():
            shutil.rmtree(old)
        if target.exists() and _exchange(tmp, target):
            os.rename(tmp, old)  # now the previous checkpoint
        else:
            if target.exists():
                os.rename(target, old)
            os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _recover(target: Path) -> None:
    """Finish a swap interrupted between its two renames: restore ``.<name>.old``.

    Only a writer calls it (``atomic_directory``, under the run's lock when training):
    readers read ``.<name>.old`` where it is (``resolve_checkpoint``).
    """
    old = target.parent / f".{target.name}.old"
    if not target.exists() and (old / CONFIG_FILE).exists():
        os.rename(old, target)


def _exchange(new: Path, target: Path) -> bool:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Readers then never see ``target`` missing. Returns False where unsupported.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(target), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(error, os.strerror(error), str(target))


def save(model: HookedTransformer, path: str | os.PathLike, *, tokenizer: Any = None, **extra: Any) -> Path:
    """Save ``model`` (and its tokenizer) as a checkpoint directory, atomically.

    Holds the writer lock of the run ``path`` lies in (``tl_bilinear.rundir.writing_into``;
    e.g. ``RUN`` for ``RUN/checkpoint``), taken again at once by a caller that holds it.

    Args:
        model: the model.
        path: the checkpoint directory to create or replace.
        tokenizer: a Hugging Face tokenizer (default: ``model.tokenizer``).
        **extra: more JSON fields for ``config.json``.

    Returns:
        The checkpoint directory.

    Raises:
        RunLocked: if another process is writing into that run (the message names the run
            and the holder's pid); nothing is written.
        FileExistsError: if ``path`` is an existing file, or a training run's directory
            (save into ``RUN/checkpoint`` to replace its checkpoint).
    """
    with atomic_directory(path, "tl_bilinear.save") as tmp:
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
        CheckpointError: (a ValueError) if a file is damaged or the files do not belong
            together (unreadable safetensors, a missing, extra or misshapen tensor, invalid
            JSON, a missing tokenizer or one of another size); the message names the file.
    """
    directory = resolve_checkpoint(path)
    meta = read_checkpoint_config(directory)
    cfg = model_config(directory, meta, device=device, dtype=dtype)
    tokenizer = load_checkpoint_tokenizer(directory, meta, cfg.d_vocab)
    model = build_model(cfg, tokenizer=tokenizer)
    load_weights(model, directory)
    return _frozen_eval(model)


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
    return _frozen_eval(model)


def _frozen_eval(model: HookedTransformer) -> HookedTransformer:
    """``model`` in eval mode with its biases frozen as loaded (not zeroed: see ``freeze_biases``)."""
    for name, param in model.named_parameters():
        if is_bias(name):
            param.requires_grad_(False)
    return model.eval()
