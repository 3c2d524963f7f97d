"""``tl-bilinear train``: arguments -> TrainConfig -> a training run (DDP under torchrun)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tl_bilinear.cli.args import add_run_flags, fraction, learning_rate, non_negative, parse_count


def _read_config_file(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config {path!r} does not exist")
    fix = 'write a JSON object of TrainConfig fields, e.g. {"lr": 0.001, "preset": "ts-tiny"}'
    try:
        with open(path) as handle:
            fields = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"--config {path!r} is not valid JSON ({error}); {fix}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"--config {path!r} holds a JSON {type(fields).__name__}, not a JSON object; {fix}")
    return fields


def _check_model_fields(overrides: dict[str, Any], act_fn_flag: str = "act_fn=") -> None:
    """``tl_bilinear.config.validate_model_fields`` with this command's flag names in its messages."""
    from tl_bilinear.config import validate_model_fields

    validate_model_fields(overrides, where="--set or --config model_overrides", flags={"act_fn": act_fn_flag})


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE (e.g. d_model=128), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


#: CLI flag -> TrainConfig field (flags left out keep the config's or the saved value).
_TRAIN_FLAGS = {
    "preset": "preset",
    "data": "data",
    "tokenizer": "tokenizer",
    "tokens": "total_tokens",
    "batch_size": "batch_size",
    "grad_accum": "grad_accum",
    "lr": "lr",
    "final_lr_frac": "final_lr_frac",
    "warmup": "warmup_steps",
    "schedule": "schedule",
    "weight_decay": "weight_decay",
    "grad_clip": "grad_clip",
    "precision": "precision",
    "compile": "compile",
    "fast_attention": "fast_attention",
    "eval_every": "eval_every",
    "eval_batches": "eval_batches",
    "save_every": "save_every",
    "log_every": "log_every",
    "seed": "seed",
    "device": "device",
    "threads": "num_threads",
    "wandb_project": "wandb_project",
    "tokenizer_docs": "tokenizer_docs",
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``train``: train a model (bilinear or a baseline) into a run directory."""
    p = subparsers.add_parser(
        "train",
        help="train a bilinear (or baseline) transformer",
        description="Train a HookedTransformer on a text source; the run directory gets checkpoint/ "
        "(config.json, model.safetensors, tokenizer/, training state), metrics.jsonl and tokenizer/. "
        "Runs under torchrun for several processes (DDP).",
    )
    p.add_argument("--out", required=True, help="run directory")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    again.add_argument(
        "--overwrite", action="store_true", help="replace the run already in --out (its files are deleted)"
    )
    p.add_argument("--config", help="a TrainConfig JSON file (flags override it)")
    _add_data_flags(p)
    _add_optimiser_flags(p)
    p.add_argument("--eval-batches", type=int)
    add_run_flags(p)
    p.add_argument("--wandb-project", help="also log to this wandb project (needs wandb)")
    _add_model_flags(p)
    p.set_defaults(func=run_train)
    return p


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    """What is trained on, and how much: preset, data, tokenizer, token budget, batch."""
    p.add_argument("--preset", help="model preset (default ts-tiny; see `tl-bilinear info --presets`)")
    p.add_argument("--data", help="'builtin', a local file/directory, or a Hugging Face dataset name")
    p.add_argument("--tokenizer", help="tokenizer directory or SentencePiece .model (default: train one)")
    p.add_argument("--tokenizer-docs", type=int, help="documents used to train the tokenizer")
    p.add_argument("--tokens", type=parse_count, help="token budget, e.g. 20M (whole steps of batch x n_ctx, >= 1)")
    p.add_argument("--batch-size", type=int, help="sequences per optimizer step (all processes)")
    p.add_argument("--grad-accum", type=int, help="micro-batches per step")


def _add_optimiser_flags(p: argparse.ArgumentParser) -> None:
    """The optimiser and its schedule, and how the steps compute (precision, compile, SDPA)."""
    p.add_argument("--lr", type=learning_rate, help="peak learning rate")
    p.add_argument("--final-lr-frac", type=fraction, help="last-step lr as a fraction of --lr")
    p.add_argument("--warmup", type=int, help="warm-up steps")
    p.add_argument("--schedule", choices=["linear", "cosine", "constant"])
    p.add_argument("--weight-decay", type=non_negative)
    p.add_argument("--grad-clip", type=non_negative)
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help="auto (default): bf16 autocast only where measured clearly faster than fp32 on this device",
    )
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile")
    p.add_argument(
        "--fast-attention",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SDPA training forwards (default on)",
    )


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    """The model's fields on top of the preset: a baseline, the MLP's activation and width, any field."""
    p.add_argument(
        "--baseline",
        choices=["bilinear", "reglu", "geglu", "swiglu", "mlp-gelu"],
        help="the paper's App. I baselines at matched parameters (see tl_bilinear.config.BASELINES)",
    )
    p.add_argument("--act-fn", help="MLP activation: bilinear (default), relu, gelu, silu, ...")
    p.add_argument("--ungated", action="store_true", help="an ungated MLP (baselines; see --d-mlp)")
    p.add_argument("--d-mlp", type=int, help="MLP width")
    p.add_argument(
        "--set",
        type=_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any HookedTransformerConfig field, e.g. --set n_layers=2 (repeatable)",
    )


def train_config_from_args(args: argparse.Namespace) -> Any:
    """The TrainConfig for ``train``'s arguments: saved config (on resume) < --config < flags.

    Raises:
        FileNotFoundError: for a missing --config file.
        ValueError: for a --config file that is not a JSON object, or an unknown model field
            or activation (``--set``, ``--act-fn``).
    """
    from tl_bilinear.model import read_checkpoint_config
    from tl_bilinear.train import TrainConfig

    fields: dict[str, Any] = {}
    if args.resume:
        try:
            fields.update(read_checkpoint_config(args.out).get("train_config", {}))
        except FileNotFoundError:
            pass  # the Trainer reports it (and a checkpoint without train_config)
    if args.config:
        fields.update(_read_config_file(args.config))
    for flag, name in _TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            fields[name] = value
    overrides = dict(fields.get("model_overrides") or {})
    overrides.update(dict(args.set))
    _check_model_fields(overrides)  # before baseline_overrides builds a config from them
    if args.baseline:
        from tl_bilinear.config import baseline_overrides

        overrides = baseline_overrides(args.baseline, fields.get("preset", TrainConfig.preset), **overrides)
    if args.act_fn:
        overrides["act_fn"] = args.act_fn
    if args.ungated:
        overrides["gated_mlp"] = False
    if args.d_mlp:
        overrides["d_mlp"] = args.d_mlp
    _check_model_fields(overrides, "--act-fn " if args.act_fn else "act_fn=")
    fields["model_overrides"] = overrides
    fields["out_dir"] = args.out
    if args.no_progress:
        fields["progress"] = False
    return TrainConfig.from_json(fields)


def run_train(args: argparse.Namespace) -> int:
    """Run ``train``."""
    from tl_bilinear.train import distributed, train

    cfg = train_config_from_args(args)
    try:
        result = train(cfg, resume=args.resume, overwrite=args.overwrite)
    finally:
        distributed.teardown()  # under torchrun: leave the process group cleanly
    if int(os.environ.get("RANK", "0")) == 0:
        status = {None: "done", "signal": "interrupted (resume with --resume)"}.get(
            result.stop_reason, f"stopped ({result.stop_reason}; resume with --resume)"
        )
        val = f"{result.val_loss:.4f}" if result.val_loss is not None else "n/a"
        sys.stdout.write(
            f"{status}: step {result.step}/{result.max_steps}, {result.tokens:,} tokens, train loss "
            f"{result.train_loss:.4f}, val loss {val} ({result.precision}); checkpoint in {result.out_dir}/checkpoint\n"
        )
    return 130 if result.interrupted else 0
