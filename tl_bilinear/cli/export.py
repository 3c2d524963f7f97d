"""``tl-bilinear export``: write a checkpoint in another format (a Hugging Face Llama)."""

from __future__ import annotations

import argparse
import logging

#: Formats ``export`` writes, with what they are.
FORMATS = {"hf": "a standard Hugging Face LlamaForCausalLM (hidden_act='linear'); no custom code to load"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``export``: write a checkpoint as a Hugging Face ``LlamaForCausalLM`` directory."""
    p = subparsers.add_parser("export", help="write a checkpoint as a standard Hugging Face Llama")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="hf",
        help="; ".join(f"{name}: {what}" for name, what in FORMATS.items()),
    )
    p.add_argument("--out", required=True, help="directory to write (replaced atomically if it exists)")
    p.set_defaults(func=run_export)
    return p


def run_export(args: argparse.Namespace) -> int:
    """Run ``export``.

    Raises:
        FileNotFoundError: if there is no checkpoint at the given path.
        ValueError: if the model cannot be written as a linear-activation Llama.
    """
    from tl_bilinear.hf import to_hf
    from tl_bilinear.model import load

    out = to_hf(load(args.checkpoint), args.out)
    logging.getLogger(__name__).info("wrote %s (load it with transformers.AutoModelForCausalLM)", out)
    return 0
