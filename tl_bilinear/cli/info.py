"""``tl-bilinear info``: a checkpoint's config and parameter counts, or the presets."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tl_bilinear.config import is_bias

if TYPE_CHECKING:
    from tl_bilinear.checkpoint import CheckpointReport


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``info``: a checkpoint's config and parameter counts (or the presets)."""
    p = subparsers.add_parser("info", help="config and parameter counts of a checkpoint, or list the presets")
    p.add_argument("checkpoint", nargs="?", help="checkpoint or run directory")
    p.add_argument("--presets", action="store_true", help="list the model presets instead")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_info)
    return p


def parameter_counts(shapes: dict[str, Sequence[int]]) -> dict[str, int]:
    """Parameter counts by part of a model from its state-dict shapes.

    Args:
        shapes: ``{state-dict name: shape}``.

    Returns:
        ``{"embed", "attn", "mlp", "unembed", "biases (frozen at 0)", "total (weights)"}``
        counts; buffers (rotary tables, masks) are not parameters and are skipped.
    """
    counts = {"embed": 0, "attn": 0, "mlp": 0, "unembed": 0, "biases (frozen at 0)": 0}
    for name, shape in shapes.items():
        leaf, parts = name.rsplit(".", 1)[-1], name.split(".")
        if not (leaf.startswith("W_") or is_bias(name)):
            continue
        numel = math.prod(shape)
        if is_bias(name):
            counts["biases (frozen at 0)"] += numel
        elif parts[0] in ("embed", "unembed"):
            counts[parts[0]] += numel
        elif "attn" in parts or "mlp" in parts:
            counts["attn" if "attn" in parts else "mlp"] += numel
        else:
            counts["embed"] += numel  # positional embeddings
    counts["total (weights)"] = sum(v for k, v in counts.items() if not k.startswith("biases"))
    return counts


def run_info(args: argparse.Namespace) -> int:
    """Run ``info``: a damaged checkpoint's problems are reported (exit 0), one line each.

    Raises:
        ValueError: if neither a checkpoint nor --presets is given.
        FileNotFoundError: if there is no checkpoint at all.
    """
    if args.presets:
        sys.stdout.write("".join(_preset_lines()))
        return 0
    if not args.checkpoint:
        raise ValueError("give a checkpoint directory, or --presets")
    from tl_bilinear.checkpoint import inspect_checkpoint

    report = inspect_checkpoint(args.checkpoint)
    if report.meta is None:  # config.json unreadable: only the problem can be reported
        _write_problems(report.problems, args.json, str(report.directory))
        return 0
    info = _checkpoint_info(report)
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    sys.stdout.write("".join(_report_lines(info)))
    _write_problems(report.problems, False, str(report.directory))
    return 0


def _preset_lines() -> list[str]:
    """One line per model preset: its shape and where it comes from."""
    from tl_bilinear.config import get_config, get_preset, list_presets

    lines = []
    for name in list_presets():
        cfg = get_config(name)
        layers = f"{cfg.n_layers} layer{'s' * (cfg.n_layers != 1)}"
        lines.append(
            f"{name:10s} {layers}, d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, "
            f"{cfg.n_heads} heads, n_ctx {cfg.n_ctx}, d_vocab {cfg.d_vocab}  "
            f"[{get_preset(name).source}]\n"
        )
    return lines


#: The model config fields ``info`` shows.
_MODEL_FIELDS = (
    "n_layers",
    "d_model",
    "d_mlp",
    "n_heads",
    "d_head",
    "n_ctx",
    "d_vocab",
    "act_fn",
    "gated_mlp",
    "normalization_type",
    "positional_embedding_type",
    "dtype",
)


def _checkpoint_info(report: CheckpointReport) -> dict[str, Any]:
    """What ``info`` shows of a checkpoint whose ``config.json`` could be read (``--json`` prints it).

    Args:
        report: ``tl_bilinear.checkpoint.inspect_checkpoint``'s report (``meta`` not None).

    Returns:
        The checkpoint, preset, step, tokens, parameter counts (None when the weights are
        unreadable), model fields, train config, the last losses (when ``trainer_state.json``
        is readable) and the problems found.
    """
    from tl_bilinear.checkpoint import read_json_object

    directory, meta = report.directory, report.meta
    m = meta["model_config"]
    info = {
        "checkpoint": str(directory),
        "preset": meta.get("preset"),
        "step": meta.get("step"),
        "tokens": meta.get("tokens"),
        "parameters": parameter_counts(report.shapes) if report.shapes is not None else None,
        "model": {k: m.get(k) for k in _MODEL_FIELDS},
        "train_config": meta.get("train_config"),
    }
    state_file = directory / "trainer_state.json"
    if state_file.exists() and not any(str(state_file) in problem for problem in report.problems):
        saved = read_json_object(state_file)
        info["val_loss"], info["train_loss"] = saved.get("val_loss"), saved.get("train_loss")
    info["problems"] = report.problems
    return info


def _report_lines(info: dict[str, Any]) -> list[str]:
    """``_checkpoint_info`` as ``info``'s text lines (problems follow them)."""
    lines = [f"checkpoint  {info['checkpoint']}\n", f"preset      {info['preset']}\n"]
    lines.append("model       " + ", ".join(f"{k}={v}" for k, v in info["model"].items()) + "\n")
    lines += [f"  {part:22s} {n:>12,}\n" for part, n in (info["parameters"] or {}).items()]
    if info["step"] is not None:
        trained = f"trained     step {info['step']}, {info['tokens']:,} tokens"
        if info.get("val_loss") is not None:
            trained += f", val loss {info['val_loss']:.4f} nats/token (perplexity {math.exp(info['val_loss']):.2f})"
        lines.append(trained + "\n")
    return lines


def _write_problems(problems: list[str], as_json: bool, checkpoint: str) -> None:
    """Each problem on one line (``info`` reports them and exits 0; loading would refuse)."""
    if as_json:
        sys.stdout.write(json.dumps({"checkpoint": checkpoint, "problems": problems}, indent=2) + "\n")
        return
    for problem in problems:
        sys.stdout.write(f"DAMAGED     {problem}\n")
