"""``tl-bilinear anneal``: a SwiGLU run -> a bilinear run, by annealing the gate's β to 0."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tl_bilinear.cli.args import add_run_flags, finite_in, learning_rate, parse_count, positive
from tl_bilinear.cli.train import _TRAIN_FLAGS

#: TrainConfig fields an annealing run inherits from the source run (flags override them).
INHERITED = ("data", "batch_size", "grad_accum", "lr", "precision", "weight_decay", "grad_clip", "eval_batches", "seed")
#: The ``train`` flags ``anneal`` also takes (same meaning, same TrainConfig field).
_FLAGS = {
    flag: field
    for flag, field in _TRAIN_FLAGS.items()
    if flag
    in ("data", "batch_size", "lr", "warmup", "eval_every", "save_every", "log_every", "seed", "device", "threads")
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``anneal``: finetune a SwiGLU/GeGLU checkpoint into a bilinear one."""
    p = subparsers.add_parser(
        "anneal",
        help="finetune a SwiGLU model into a bilinear one (anneal the gate's Swish beta to 0)",
        description="Continue training RUN with every gate replaced by x*sigmoid(beta x), beta falling from 1 "
        "(SiLU) to 0 over the first --anneal-frac of the tokens; the finished run's checkpoint is the bilinear "
        "model (paper App. J). Data and optimiser settings default to RUN's.",
    )
    p.add_argument("run", metavar="RUN", help="the source checkpoint or run directory (gated MLP, SiLU/GELU gate)")
    p.add_argument("--out", required=True, help="the new run directory")
    p.add_argument("--tokens", type=parse_count, required=True, help="token budget of the annealing run, e.g. 2M")
    p.add_argument(
        "--anneal-frac",
        type=finite_in(0, 1, low_open=True),
        default=0.3,
        help="fraction of the run over which beta falls (0.3)",
    )
    p.add_argument("--beta-schedule", choices=["linear", "cosine"], default="linear", help="how beta falls")
    p.add_argument("--start-beta", type=positive, help="beta at the start (default 1 for SiLU, 1.702 for GELU)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--data", help="text source (default: RUN's)")
    p.add_argument("--batch-size", type=int, help="sequences per step (default: RUN's)")
    p.add_argument("--lr", type=learning_rate, help="peak learning rate (default: RUN's)")
    p.add_argument("--warmup", type=int, help="warm-up steps (default 50)")
    add_run_flags(p)
    p.set_defaults(func=run_anneal)
    return p


def anneal_fields(args: argparse.Namespace, source_meta: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig fields for ``anneal``: the source run's (``INHERITED``) < flags."""
    saved = source_meta.get("train_config") or {}
    fields = {name: saved[name] for name in INHERITED if name in saved}
    fields.update({name: getattr(args, flag) for flag, name in _FLAGS.items() if getattr(args, flag) is not None})
    if args.no_progress:
        fields["progress"] = False
    return fields


def run_anneal(args: argparse.Namespace) -> int:
    """Run ``anneal``."""
    from tl_bilinear.convert import anneal_to_bilinear
    from tl_bilinear.model import TOKENIZER_DIR, load, read_checkpoint_config, resolve_checkpoint
    from tl_bilinear.train.distributed import run_writer_lock

    with run_writer_lock(args.out, "tl-bilinear anneal"):  # before loading: a second writer is refused at once
        meta = read_checkpoint_config(args.run)
        model = load(args.run)
        tokenizer_dir = resolve_checkpoint(args.run) / TOKENIZER_DIR
        result = anneal_to_bilinear(
            model,
            args.out,
            total_tokens=args.tokens,
            anneal_frac=args.anneal_frac,
            beta_schedule=args.beta_schedule,
            start_beta=args.start_beta,
            resume=args.resume,
            tokenizer=str(tokenizer_dir) if tokenizer_dir.is_dir() else None,
            **anneal_fields(args, meta),
        )
    run = result.train
    if run is not None and run.interrupted:
        sys.stdout.write(f"interrupted at step {run.step}/{run.max_steps} (resume with --resume)\n")
        return 130
    val = f", val loss {run.val_loss:.4f} at beta 0" if run is not None and run.val_loss is not None else ""
    sys.stdout.write(f"done{val}: bilinear checkpoint in {args.out}/checkpoint\n")
    return 0
