"""Bilinear vs ReGLU vs SwiGLU at matched compute on the built-in corpus (paper App. I).

Every model uses the same preset (gated MLPs: the same parameter count and FLOPs), the
same tokenizer, data order, seed, schedule and token budget; the script prints the
final validation losses next to the paper's Table 6 (TinyStories, equal epochs:
bilinear 1.337, ReGLU 1.332, SwiGLU 1.321). The built-in corpus is synthetic and the
default budget is tiny, so compare the *gaps* between rows, not the absolute losses.

    python benchmarks/bench_baselines.py                         # ts-tiny, 600k tokens each (a few minutes)
    python benchmarks/bench_baselines.py --preset ts-small --tokens 5M --models bilinear reglu swiglu geglu mlp-gelu
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

from machine import print_machine

from tl_bilinear.config import BASELINES, PAPER_TABLE_6, baseline_overrides
from tl_bilinear.data import iter_documents, train_tokenizer
from tl_bilinear.train import TrainConfig, train


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ts-tiny")
    parser.add_argument("--tokens", type=int, default=600_000, help="training tokens per model")
    parser.add_argument("--models", nargs="+", default=["bilinear", "reglu", "swiglu"], choices=list(BASELINES))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-ctx", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="default: measured")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args()
    print_machine()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        tok_dir = root / "tokenizer"
        docs = itertools.islice(iter_documents("builtin", seed=args.seed), 20_000)
        train_tokenizer(docs, vocab_size=4096, out_dir=tok_dir, show_progress=False)
        rows = []
        for name in args.models:
            cfg = TrainConfig(
                out_dir=str(root / name),
                preset=args.preset,
                tokenizer=str(tok_dir),
                total_tokens=args.tokens,
                model_overrides=baseline_overrides(name, args.preset, n_ctx=args.n_ctx),
                batch_size=args.batch_size,
                lr=args.lr,
                warmup_steps=20,
                eval_every=0,
                eval_batches=32,
                save_every=0,
                seed=args.seed,
                precision=args.precision,
                device="cpu",
                progress=False,
            )
            start = time.perf_counter()
            result = train(cfg)
            rows.append((name, result.val_loss, result.tokens, time.perf_counter() - start))
            print(
                f"{name:9s} val loss {result.val_loss:.4f} ({result.tokens:,} tokens, {rows[-1][3]:.0f} s)", flush=True
            )
        base = rows[0][1]
        print(
            f"\npreset {args.preset}, n_ctx {args.n_ctx}, {args.tokens:,} tokens each, {args.precision}, seed {args.seed}"
        )
        print(f"{'model':9s} {'val loss':>9s} {'vs first':>9s}   {'paper T6':>8s} {'vs bilinear':>11s}")
        for name, loss, _, _ in rows:
            paper = PAPER_TABLE_6.get(name)
            paper_txt = f"{paper:8.3f} {paper - PAPER_TABLE_6['bilinear']:+11.3f}" if paper else f"{'-':>8s} {'-':>11s}"
            print(f"{name:9s} {loss:9.4f} {loss - base:+9.4f}   {paper_txt}")
        if args.out:
            (root / "baselines.json").write_text(
                json.dumps([dict(zip(("model", "val_loss", "tokens", "seconds"), r)) for r in rows], indent=2)
            )


if __name__ == "__main__":
    main()
