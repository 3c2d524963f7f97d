"""``tl-bilinear demo``: the main job (train on the built-in corpus, sample, analyse)."""

from __future__ import annotations

import argparse
import os

from tl_bilinear.cli.args import finite_float, parse_count


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``demo``: the main job (train on the built-in corpus, sample, analyse)."""
    p = subparsers.add_parser(
        "demo",
        help="train a bilinear model on the built-in corpus, sample and analyse it",
        description="Offline, in a fixed time budget: tokenizer, training, samples, "
        "validation loss vs unigram entropy, eigenvalue spectra and the identity check.",
    )
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument(
        "--minutes",
        type=finite_float,
        default=7.0,
        help="wall-clock budget of the whole job, training included (default 7)",
    )
    p.add_argument(
        "--preset", default=None, help="model preset (default ts-small in bf16, ts-tiny in fp32; ts-micro with --small)"
    )
    p.add_argument("--max-tokens", type=parse_count, default=None, help="cap on training tokens")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="auto (default): bf16 autocast only where measured clearly faster than fp32 on this CPU",
    )
    p.add_argument("--small", action="store_true", help="a seconds-long smoke test (also TL_BILINEAR_DEMO_SMALL=1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_demo_command)
    return p


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``demo`` (a Ctrl-C/SIGTERM raises ``JobStopped``, a KeyboardInterrupt: status 130)."""
    from tl_bilinear.demo import run_demo

    small = args.small or os.environ.get("TL_BILINEAR_DEMO_SMALL") == "1"
    run_demo(
        args.out,
        minutes=args.minutes,
        small=small,
        preset=args.preset,
        max_tokens=args.max_tokens,
        precision=args.precision,
        progress=not args.no_progress,
    )
    return 0
