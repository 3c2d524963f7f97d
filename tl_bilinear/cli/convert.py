"""``tl-bilinear convert``: one of the paper's released models -> a tl-bilinear checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``convert``: the paper's official checkpoint format -> our checkpoint directory."""
    p = subparsers.add_parser(
        "convert",
        help="convert one of the paper's released models (e.g. tdooms/ts-medium) to a checkpoint",
        description="Read an official snapshot (config.json + model.safetensors, as on the Hugging Face hub) "
        "and write an exactly equivalent tl-bilinear checkpoint that load/generate/info/analyze accept.",
    )
    p.add_argument("source", metavar="SNAPSHOT_DIR_OR_REPO", help="a snapshot directory or a hub repo id")
    p.add_argument("--out", required=True, help="the checkpoint directory to write")
    p.add_argument("--tokenizer", help="tokenizer directory (default: the snapshot's, else the one its config names)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run_convert)
    return p


def run_convert(args: argparse.Namespace) -> int:
    """Run ``convert``.

    Raises:
        FileExistsError: if --out exists and --force is not given.
    """
    from tl_bilinear.convert import from_official
    from tl_bilinear.model import save

    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"--out {args.out!r} already exists; choose another directory or pass --force")
    model = from_official(args.source, tokenizer=args.tokenizer, revision=args.revision)
    save(model, out, source=str(args.source))
    cfg = model.cfg
    sys.stdout.write(
        f"converted {args.source}: {cfg.n_layers} layers, d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, "
        f"act_fn {cfg.act_fn}, d_vocab {cfg.d_vocab}; checkpoint in {out}\n"
    )
    return 0
