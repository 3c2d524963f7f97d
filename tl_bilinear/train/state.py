"""Training state on disk: optimizer tensors in safetensors, everything else in JSON.

A checkpoint directory written by the trainer holds the model files of
``tl_bilinear.model.write_model_files`` plus

- ``trainer_state.safetensors``: AdamW's per-parameter tensors (``exp_avg``,
  ``exp_avg_sq``, ``step``) and the torch RNG states;
- ``trainer_state.json``: step, tokens seen, the optimizer's hyper-parameters, the
  data-stream positions of every rank, the Python RNG state and the last losses.

No pickle anywhere: resuming is exact and safe to do from untrusted directories.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer

from tl_bilinear.checkpoint import load_weights, read_json_object, weight_shapes
from tl_bilinear.model import atomic_directory, resolve_checkpoint, write_model_files

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and JSON.

    Args:
        optimizer: any torch optimizer whose per-parameter state holds tensors and
            JSON scalars.

    Returns:
        ``(tensors, meta)``: tensors keyed ``"optimizer.<param index>.<name>"``; meta with
        the param groups and any non-tensor per-parameter values.
    """
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_files(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Restore what ``optimizer_to_files`` wrote into ``optimizer``.

    Args:
        optimizer: an optimizer over the same parameters, in the same groups.
        tensors: the tensors of ``read_state`` (keys not starting ``optimizer.`` are ignored).
        meta: the ``"optimizer"`` entry of the saved JSON.

    Raises:
        ValueError: if the saved parameter groups do not match the optimizer's.
    """
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    current = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in current]:
        raise ValueError("the saved optimizer state has different parameter groups than this model")
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_to_files() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The torch (CPU and CUDA) and Python RNG states as tensors and JSON.

    Returns:
        ``(tensors, meta)``: ``rng.torch`` and ``rng.cuda.<i>`` tensors; the Python
        ``random`` state as JSON.
    """
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss]}


def rng_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore the RNG states written by ``rng_to_files``.

    The CUDA states are restored only when this machine has as many devices.

    Args:
        tensors: the tensors of ``read_state``.
        meta: the ``"rng"`` entry of the saved JSON.
    """
    torch.set_rng_state(tensors["rng.torch"])
    cuda_keys = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    cuda = [tensors[k] for k in cuda_keys]  # in device order (rng.cuda.10 after rng.cuda.9)
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


def write_state(directory: str | Path, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """Write ``trainer_state.safetensors`` and ``trainer_state.json`` into ``directory``.

    Args:
        directory: the (temporary) checkpoint directory.
        optimizer: the optimizer.
        meta: JSON fields (step, tokens, data positions, ...).
    """
    directory = Path(directory)
    opt_tensors, opt_meta = optimizer_to_files(optimizer)
    rng_tensors, rng_meta = rng_to_files()
    save_file({**opt_tensors, **rng_tensors}, str(directory / STATE_TENSORS))
    doc = {**meta, "optimizer": opt_meta, "rng": rng_meta}
    (directory / STATE_JSON).write_text(json.dumps(doc, indent=1))


def read_state(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the training state of a checkpoint directory.

    Args:
        directory: the checkpoint directory.

    Returns:
        ``(tensors, state)``: the safetensors file and the parsed JSON.

    Raises:
        FileNotFoundError: if the directory has no training state (e.g. a model saved
            with ``tl_bilinear.save``).
        CheckpointError: if a state file is damaged (invalid JSON, unreadable safetensors).
    """
    directory = Path(directory)
    if not (directory / STATE_JSON).is_file() or not (directory / STATE_TENSORS).is_file():
        raise FileNotFoundError(
            f"{directory} has no training state ({STATE_JSON}, {STATE_TENSORS}); it cannot be resumed"
        )
    state = read_json_object(directory / STATE_JSON)
    weight_shapes(directory / STATE_TENSORS)  # a damaged file: one clear CheckpointError
    return load_file(str(directory / STATE_TENSORS)), state


def truncate_metrics(path: str | Path, step: int) -> None:
    """Keep only the lines of a metrics JSONL file logged at or before ``step``, atomically.

    Used on resume: steps after the checkpoint will be logged again. Lines that are not
    JSON objects (one cut short by a kill or a full disk) are dropped too. The file is
    replaced by a rename, so a kill during the rewrite leaves the old file.

    Args:
        path: the metrics file (nothing happens if it does not exist).
        step: the checkpoint's step.
    """
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)


def write_checkpoint(
    directory: str | Path,
    model: HookedTransformer,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    *,
    tokenizer: Any,
    preset: str,
    train_config: dict[str, Any],
) -> None:
    """Write a training checkpoint: model files, then the training state, swapped in atomically.

    Args:
        directory: the checkpoint directory (``run/checkpoint``); the previous one stays
            whole until the new one is complete.
        model: the model.
        optimizer: its optimizer.
        meta: the JSON state (``step`` and ``tokens`` at least).
        tokenizer: the tokenizer saved beside the weights (or None).
        preset: the model preset's name.
        train_config: ``TrainConfig.to_json()``.
    """
    with atomic_directory(directory) as tmp:
        extra = {"train_config": train_config, "step": meta["step"], "tokens": meta["tokens"]}
        write_model_files(tmp, model, tokenizer=tokenizer, preset=preset, extra=extra)
        write_state(tmp, optimizer, meta)


def restore_checkpoint(
    run_dir: str | Path,
    model: HookedTransformer,
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> None:
    """Load a run's checkpoint weights, optimizer state and RNG states (``read_state``'s output).

    Args:
        run_dir: the run (or checkpoint) directory.
        model: the model to load the weights into (on its device).
        optimizer: the optimizer over its parameters.
        tensors: the state tensors of ``read_state``.
        state: the JSON state of ``read_state``.
    """
    load_weights(model, resolve_checkpoint(run_dir), device=next(model.parameters()).device)
    optimizer_from_files(optimizer, tensors, state["optimizer"])
    rng_from_files(tensors, state["rng"])
