"""``tl-bilinear tokenizer``: train a BPE tokenizer and save it as a directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tl_bilinear.cli.args import parse_count
from tl_bilinear.rundir import LOCK_FILE, writing_into


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``tokenizer``: train a BPE tokenizer and save it as a directory."""
    p = subparsers.add_parser(
        "tokenizer",
        help="train a BPE tokenizer",
        description="Train a byte-level BPE "
        "tokenizer on a text source and save it as a Hugging Face tokenizer directory.",
    )
    p.add_argument("--out", required=True, help="output directory (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its tokenizer")
    p.add_argument("--data", default="builtin", help="'builtin', a local file/directory or a hub dataset name")
    p.add_argument("--vocab-size", type=int, default=4096, help="entries, at most (default 4096)")
    p.add_argument("--docs", type=parse_count, default=20_000, help="documents to read (default 20000)")
    p.add_argument("--no-lowercase", action="store_true", help="keep case (the paper's TinyStories one lowercases)")
    p.add_argument("--seed", type=int, default=0, help="built-in corpus seed")
    p.set_defaults(func=run_tokenizer)
    return p


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {str(out)!r} is a file; a tokenizer is saved as a directory: give a new one")
    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE) if out.is_dir() else []
    if present and not overwrite:
        listed = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
        raise FileExistsError(
            f"--out {str(out)!r} is not empty ({listed}); nothing was changed: choose a new folder, "
            "or pass --overwrite to write over it"
        )


def run_tokenizer(args: argparse.Namespace) -> int:
    """Run ``tokenizer``.

    Raises:
        FileExistsError: if ``--out`` is a file, or a non-empty folder without ``--overwrite``.
        RunLocked: if ``--out`` lies in a run another process is writing.
    """
    from tl_bilinear.data import iter_documents, train_tokenizer

    out = Path(args.out)
    _check_out(out, args.overwrite)  # before locking (which creates the folder) and training
    with writing_into(out, "tl-bilinear tokenizer"):
        _check_out(out, args.overwrite)  # again, now that no other writer can change it
        docs = iter_documents(args.data, seed=args.seed)
        tok = train_tokenizer(
            docs, vocab_size=args.vocab_size, out_dir=out, lowercase=not args.no_lowercase, max_documents=args.docs
        )
    sys.stdout.write(f"wrote a {len(tok)}-token tokenizer to {args.out}\n")
    return 0
