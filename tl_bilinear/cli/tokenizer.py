"""``tl-bilinear tokenizer``: train a BPE tokenizer and save it as a directory."""

from __future__ import annotations

import argparse
import sys

from tl_bilinear.cli.args import parse_count


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``tokenizer``: train a BPE tokenizer and save it as a directory."""
    p = subparsers.add_parser(
        "tokenizer",
        help="train a BPE tokenizer",
        description="Train a byte-level BPE "
        "tokenizer on a text source and save it as a Hugging Face tokenizer directory.",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data", default="builtin", help="'builtin', a local file/directory or a hub dataset name")
    p.add_argument("--vocab-size", type=int, default=4096, help="entries, at most (default 4096)")
    p.add_argument("--docs", type=parse_count, default=20_000, help="documents to read (default 20000)")
    p.add_argument("--no-lowercase", action="store_true", help="keep case (the paper's TinyStories one lowercases)")
    p.add_argument("--seed", type=int, default=0, help="built-in corpus seed")
    p.set_defaults(func=run_tokenizer)
    return p


def run_tokenizer(args: argparse.Namespace) -> int:
    """Run ``tokenizer``."""
    from tl_bilinear.data import iter_documents, train_tokenizer

    docs = iter_documents(args.data, seed=args.seed)
    tok = train_tokenizer(
        docs, vocab_size=args.vocab_size, out_dir=args.out, lowercase=not args.no_lowercase, max_documents=args.docs
    )
    sys.stdout.write(f"wrote a {len(tok)}-token tokenizer to {args.out}\n")
    return 0
