"""The ``tl-bilinear`` command: tokenizer, generate, info, demo (and train, analyze).

Every subcommand is a function ``add_parser(subparsers)`` that adds its parser and sets
``func`` (called with the parsed arguments, returning an exit status). ``SUBCOMMANDS``
lists them as ``(module, function name)``, imported when the command runs; to add one,
append a line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
from collections.abc import Sequence

logger = logging.getLogger(__name__)

#: ``(module, add_parser function)`` of every subcommand, in ``--help`` order.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("tl_bilinear.train.cli", "add_parser"),  # train
    ("tl_bilinear.cli", "add_tokenizer_parser"),
    ("tl_bilinear.cli", "add_generate_parser"),
    ("tl_bilinear.cli", "add_info_parser"),
    ("tl_bilinear.cli", "add_demo_parser"),
    ("tl_bilinear.viz.cli", "add_parser"),  # analyze
]


def parse_count(text: str) -> int:
    """``"2M"`` -> 2_000_000, ``"500k"`` -> 500_000, ``"1e6"`` -> 1_000_000.

    Raises:
        argparse.ArgumentTypeError: for anything else.
    """
    scale = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}
    s = text.strip().lower().replace("_", "")
    try:
        value = float(s[:-1]) * scale[s[-1]] if s and s[-1] in scale else float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (e.g. 2000000, 2M, 500k)") from None
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number")
    return int(value)


# ----------------------------------------------------------------------------- tokenizer
def add_tokenizer_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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


# ----------------------------------------------------------------------------- generate
def add_generate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``generate``: sample text from a checkpoint."""
    p = subparsers.add_parser("generate", help="sample text from a checkpoint")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("--prompt", default="once upon a time", help="text to continue (default: once upon a time)")
    p.add_argument("-n", "--num-samples", type=int, default=3, help="samples (default 3)")
    p.add_argument("--max-new-tokens", type=int, default=100, help="tokens per sample (default 100)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature; 0 = greedy (default 0.7)")
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


# ----------------------------------------------------------------------------- info
def add_info_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
        if not leaf.startswith(("W_", "b_")):
            continue
        numel = math.prod(shape)
        if leaf.startswith("b_"):
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
    """Run ``info``.

    Raises:
        ValueError: if neither a checkpoint nor --presets is given.
    """
    from tl_bilinear.config import get_config, get_preset, list_presets

    if args.presets:
        for name in list_presets():
            cfg = get_config(name)
            layers = f"{cfg.n_layers} layer{'s' * (cfg.n_layers != 1)}"
            sys.stdout.write(
                f"{name:10s} {layers}, d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, "
                f"{cfg.n_heads} heads, n_ctx {cfg.n_ctx}, d_vocab {cfg.d_vocab}  "
                f"[{get_preset(name).source}]\n"
            )
        return 0
    if not args.checkpoint:
        raise ValueError("give a checkpoint directory, or --presets")
    from safetensors import safe_open

    from tl_bilinear.model import WEIGHTS_FILE, read_checkpoint_config, resolve_checkpoint

    directory = resolve_checkpoint(args.checkpoint)
    meta = read_checkpoint_config(directory)
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
        shapes = {k: handle.get_slice(k).get_shape() for k in handle.keys()}
    counts = parameter_counts(shapes)
    m = meta["model_config"]
    info = {
        "checkpoint": str(directory),
        "preset": meta.get("preset"),
        "step": meta.get("step"),
        "tokens": meta.get("tokens"),
        "parameters": counts,
        "model": {
            k: m.get(k)
            for k in (
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
        },
        "train_config": meta.get("train_config"),
    }
    state_file = directory / "trainer_state.json"
    if state_file.exists():
        saved = json.loads(state_file.read_text())
        info["val_loss"], info["train_loss"] = saved.get("val_loss"), saved.get("train_loss")
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    w = sys.stdout.write
    w(f"checkpoint  {info['checkpoint']}\npreset      {info['preset']}\n")
    w("model       " + ", ".join(f"{k}={v}" for k, v in info["model"].items()) + "\n")
    for part, n in counts.items():
        w(f"  {part:22s} {n:>12,}\n")
    if info["step"] is not None:
        w(f"trained     step {info['step']}, {info['tokens']:,} tokens")
        if info.get("val_loss") is not None:
            w(f", val loss {info['val_loss']:.4f} nats/token (perplexity {math.exp(info['val_loss']):.2f})")
        w("\n")
    return 0


# ----------------------------------------------------------------------------- demo
def add_demo_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``demo``: the main job (train on the built-in corpus, sample, analyse)."""
    p = subparsers.add_parser(
        "demo",
        help="train a bilinear model on the built-in corpus, sample and analyse it",
        description="Offline, in a fixed time budget: tokenizer, training, samples, "
        "validation loss vs unigram entropy, eigenvalue spectra and the identity check.",
    )
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--minutes", type=float, default=7.0, help="wall-clock budget (default 7)")
    p.add_argument("--preset", default=None, help="model preset (default ts-small; ts-micro with --small)")
    p.add_argument("--max-tokens", type=parse_count, default=None, help="cap on training tokens")
    p.add_argument("--small", action="store_true", help="a seconds-long smoke test (also TL_BILINEAR_DEMO_SMALL=1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_demo_command)
    return p


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``demo``."""
    from tl_bilinear.demo import run_demo

    small = args.small or os.environ.get("TL_BILINEAR_DEMO_SMALL") == "1"
    run_demo(
        args.out,
        minutes=args.minutes,
        small=small,
        preset=args.preset,
        max_tokens=args.max_tokens,
        progress=not args.no_progress,
    )
    return 0


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The ``tl-bilinear`` parser with every subcommand of ``SUBCOMMANDS``."""
    parser = argparse.ArgumentParser(prog="tl-bilinear", description="Bilinear-MLP transformers with TransformerLens.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module, name in SUBCOMMANDS:
        getattr(importlib.import_module(module), name)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tl-bilinear``; returns the exit status.

    Expected failures (bad arguments, missing files, a config mismatch, a diverged run)
    print one line ``tl-bilinear <command>: error: ...`` and exit with status 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    from tl_bilinear.train import TrainingDiverged

    try:
        return args.func(args)
    except (
        ValueError,
        KeyError,
        IndexError,
        FileNotFoundError,
        FileExistsError,
        ImportError,
        TrainingDiverged,
    ) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        parser.exit(2, f"tl-bilinear {args.command}: error: {message}\n")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
