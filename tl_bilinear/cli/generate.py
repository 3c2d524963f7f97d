"""``tl-bilinear generate``: sample text from a checkpoint."""

from __future__ import annotations

import argparse
import sys

from tl_bilinear.cli.args import finite_float


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``generate``: sample text from a checkpoint."""
    p = subparsers.add_parser("generate", help="sample text from a checkpoint")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("--prompt", default="once upon a time", help="text to continue (default: once upon a time)")
    p.add_argument("-n", "--num-samples", type=int, default=3, help="samples (default 3)")
    p.add_argument("--max-new-tokens", type=int, default=100, help="tokens per sample (default 100)")
    p.add_argument(
        "--temperature", type=finite_float, default=0.7, help="sampling temperature; 0 = greedy (default 0.7)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.set_defaults(func=run_generate)
    return p


def run_generate(args: argparse.Namespace) -> int:
    """Run ``generate``.

    Raises:
        ValueError: if the checkpoint has no tokenizer, a sampling setting is invalid, or the
            prompt plus --max-new-tokens does not fit the model's context.
    """
    import torch

    from tl_bilinear.model import load

    for flag, value, low in (
        ("--num-samples", args.num_samples, 1),
        ("--max-new-tokens", args.max_new_tokens, 1),
        ("--temperature", args.temperature, 0),
    ):
        if value < low:
            raise ValueError(f"{flag} {value} must be {'positive' if low else '>= 0 (0: greedy)'}")
    model = load(args.checkpoint)
    if model.tokenizer is None:
        raise ValueError(f"{args.checkpoint} has no tokenizer; it was trained on pre-tokenized data")
    n_prompt, n_ctx = model.to_tokens(args.prompt, truncate=False).shape[-1], model.cfg.n_ctx
    if n_prompt > n_ctx:
        raise ValueError(f"--prompt is {n_prompt} tokens, longer than the model's context (n_ctx {n_ctx}); shorten it")
    if n_prompt + args.max_new_tokens - 1 > n_ctx:  # the last sampled token is never fed back
        raise ValueError(
            f"--max-new-tokens {args.max_new_tokens} after a {n_prompt}-token prompt passes the model's "
            f"context (n_ctx {n_ctx}); use --max-new-tokens {n_ctx - n_prompt + 1} or less"
        )
    torch.manual_seed(args.seed)
    for _ in range(args.num_samples):
        text = model.generate(
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            do_sample=args.temperature > 0,
            verbose=False,
        )
        sys.stdout.write(text.replace(model.tokenizer.eos_token, "").strip() + "\n\n")
    return 0
