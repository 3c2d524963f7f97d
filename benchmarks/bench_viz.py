"""Measure the analysis views: top-context scan throughput, activations, report size and time.

Uses a randomly initialised preset model with a byte-level tokenizer trained on the
built-in stories (speed does not depend on training). Reports, as JSON:
scan throughput (tokens/s) of ``top_activating_contexts``, ``eigen_activations`` on a
text several windows long, and the build time and size of ``analysis_report``.

    python benchmarks/bench_viz.py                      # ts-tiny, ~30 s on 2 cores
    python benchmarks/bench_viz.py --preset ts-small --batches 8 --out viz.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from machine import print_machine

import tl_bilinear
from tl_bilinear.analysis import eigen_activations, top_activating_contexts
from tl_bilinear.data import TokenBlockStream, iter_documents, train_tokenizer
from tl_bilinear.viz import analysis_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ts-tiny")
    parser.add_argument("--batches", type=int, default=8, help="dataset batches scanned")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    print_machine()
    torch.set_grad_enabled(False)
    tmp = Path(tempfile.mkdtemp())
    tokenizer = train_tokenizer(
        iter_documents("builtin"), vocab_size=1024, out_dir=tmp / "tok", max_documents=3000, show_progress=False
    )
    model = tl_bilinear.make_model(args.preset, d_vocab=len(tokenizer), seed=0)
    model.set_tokenizer(tokenizer)
    cfg = model.cfg
    results: dict = {
        "preset": args.preset,
        "d_model": cfg.d_model,
        "n_ctx": cfg.n_ctx,
        "n_layers": cfg.n_layers,
        "torch_threads": torch.get_num_threads(),
    }
    layer = cfg.n_layers - 1

    stream = TokenBlockStream("builtin", tokenizer, cfg.n_ctx, seed=3).batches(args.batch_size)
    batches = [next(stream) for _ in range(args.batches)]
    start = time.perf_counter()
    found = top_activating_contexts(model, layer, " sad", iter(batches), k=args.k, n=10)
    elapsed = time.perf_counter() - start
    n_tokens = sum(b.numel() for b in batches)
    results["scan"] = {
        "tokens": n_tokens,
        "seconds": round(elapsed, 3),
        "tokens_per_s": round(n_tokens / elapsed),
        "features": found.eigenvectors.scores.shape[0] + found.directions.scores.shape[0],
    }

    text = " ".join(iter_documents("builtin", limit=12))
    n_text = model.to_tokens(text, truncate=False).shape[1]
    start = time.perf_counter()
    acts = eigen_activations(model, layer, " sad", text, k=args.k)
    results["activations"] = {
        "tokens": n_text,
        "windows": -(-n_text // cfg.n_ctx),
        "seconds": round(time.perf_counter() - start, 3),
        "explained_top_k": round(acts.explained()[0].item(), 4),
    }

    start = time.perf_counter()
    report = analysis_report(model, layer, " sad", versus=" happy", text=text, dataset=iter(batches), k=4)
    path = report.save(tmp / "report.html")
    results["report"] = {
        "seconds": round(time.perf_counter() - start, 3),
        "views": len(report.components),
        "megabytes": round(path.stat().st_size / 1e6, 2),
    }
    text_out = json.dumps(results, indent=2)
    print(text_out)
    if args.out:
        args.out.write_text(text_out + "\n")


if __name__ == "__main__":
    main()
