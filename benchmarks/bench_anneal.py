"""SwiGLU -> bilinear by annealing vs continued SwiGLU training at equal tokens (paper App. J, Fig. 25).

1. Pretrain a SwiGLU model on the built-in corpus.
2. From it, at the same token budget, data order and learning-rate schedule:
   a. continue training it as SwiGLU (``tl_bilinear.convert.finetune``);
   b. anneal its gates' Swish β from 1 to 0 over the first ``--anneal-frac`` of the run, then
      continue at β = 0, and fold the result into a bilinear model (``anneal_to_bilinear``).
3. Print the validation loss before, during (every ``--eval-every`` steps, with β) and after,
   the final gap (paper: +0.05 on TinyLlama-1.1B over 400M tokens), and the loss of simply
   swapping SiLU for Swish_0 without training (what annealing recovers). Losses before/after
   are fp32 evaluations of the saved checkpoints on the trainer's validation blocks; those
   during training are the trainer's own (under --precision).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_anneal.py            # ts-micro: a few minutes on 2 cores
    python benchmarks/bench_anneal.py --preset ts-tiny --pretrain-tokens 3M --tokens 1M
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

import tl_bilinear
from tl_bilinear.config import baseline_overrides
from tl_bilinear.convert import anneal_to_bilinear, finetune, swish0_to_bilinear
from tl_bilinear.data import VAL_FRACTION, TokenBlockStream, iter_documents, load_tokenizer, train_tokenizer
from tl_bilinear.train import TrainConfig, lm_loss, train


def cpu_line() -> str:
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} ({', '.join(isa) or 'no AVX2'}), {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"


def val_loss(model, tokenizer, n_ctx: int, micro: int, batches: int, seed: int) -> float:
    """The trainer's validation loss (same held-out blocks), computed outside it."""
    stream = TokenBlockStream(
        "builtin", tokenizer, n_ctx, split="validation", seed=seed, val_fraction=VAL_FRACTION, repeat=False
    )
    model.eval()
    with torch.no_grad():
        losses = [lm_loss(model(b), b).item() for b in itertools.islice(stream.batches(micro), batches)]
    return sum(losses) / len(losses)


def evals(run_dir: Path) -> dict[int, tuple[float, float | None]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: (r["val_loss"], r.get("beta")) for r in rows if "val_loss" in r}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ts-micro")
    parser.add_argument("--n-ctx", type=int, default=128)
    parser.add_argument("--pretrain-tokens", type=int, default=400_000)
    parser.add_argument("--tokens", type=int, default=200_000, help="tokens of each continuation (equal budget)")
    parser.add_argument("--anneal-frac", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3, help="pretraining peak lr")
    parser.add_argument("--finetune-lr", type=float, default=1e-3, help="peak lr of both continuations")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu: {cpu_line()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    common = dict(
        batch_size=args.batch_size,
        eval_batches=16,
        save_every=0,
        seed=args.seed,
        precision=args.precision,
        device="cpu",
        num_threads=args.threads,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        tok_dir = root / "tokenizer"
        vocab = tl_bilinear.get_config(args.preset).d_vocab
        train_tokenizer(
            itertools.islice(iter_documents("builtin", seed=args.seed), 5000), vocab, tok_dir, show_progress=False
        )
        timings = {}
        start = time.perf_counter()
        pre = TrainConfig(
            out_dir=str(root / "swiglu"),
            preset=args.preset,
            model_overrides=baseline_overrides("swiglu", args.preset, n_ctx=args.n_ctx),
            tokenizer=str(tok_dir),
            total_tokens=args.pretrain_tokens,
            lr=args.lr,
            warmup_steps=20,
            eval_every=0,
            **common,
        )
        train(pre)
        timings["pretrain"] = time.perf_counter() - start
        source = tl_bilinear.load(root / "swiglu")
        tokenizer = load_tokenizer(tok_dir)
        micro = args.batch_size
        before = val_loss(source, tokenizer, args.n_ctx, micro, 16, args.seed)
        swapped = val_loss(swish0_to_bilinear(source), tokenizer, args.n_ctx, micro, 16, args.seed)
        finetune_fields = dict(lr=args.finetune_lr, warmup_steps=10, eval_every=args.eval_every, **common)
        start = time.perf_counter()
        cont = finetune(source, root / "continued", total_tokens=args.tokens, tokenizer=str(tok_dir), **finetune_fields)
        timings["continued"] = time.perf_counter() - start
        start = time.perf_counter()
        annealed = anneal_to_bilinear(
            source,
            root / "annealed",
            total_tokens=args.tokens,
            anneal_frac=args.anneal_frac,
            tokenizer=str(tok_dir),
            **finetune_fields,
        )
        timings["annealed"] = time.perf_counter() - start
        final_bilinear = val_loss(tl_bilinear.load(root / "annealed"), tokenizer, args.n_ctx, micro, 16, args.seed)
        final_swiglu = val_loss(tl_bilinear.load(root / "continued"), tokenizer, args.n_ctx, micro, 16, args.seed)

        print(f"\npreset {args.preset}, n_ctx {args.n_ctx}, {args.precision}, seed {args.seed}")
        print(f"pretrained SwiGLU ({args.pretrain_tokens:,} tokens): val loss {before:.4f}")
        print(f"SiLU swapped for x/2 (bilinear), no training: val loss {swapped:.4f} ({swapped - before:+.4f})")
        print(f"\ncontinuations: {cont.tokens:,} tokens each, anneal over the first {args.anneal_frac:.0%}")
        print(f"{'step':>5s} {'tokens':>9s} {'beta':>6s} {'annealed':>9s} {'SwiGLU':>9s} {'gap':>8s}")
        ann, swi = evals(root / "annealed"), evals(root / "continued")
        tokens_per_step = cont.tokens // cont.step
        for step in sorted(set(ann) & set(swi)):
            (a, beta), (s, _) = ann[step], swi[step]
            print(f"{step:5d} {step * tokens_per_step:9,d} {beta:6.3f} {a:9.4f} {s:9.4f} {a - s:+8.4f}")
        gap = final_bilinear - final_swiglu
        print(
            f"\nfinal (fp32 eval): bilinear (annealed) {final_bilinear:.4f}, SwiGLU continued {final_swiglu:.4f}, gap {gap:+.4f}"
        )
        print(
            "wall: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
            + f"; load average {os.getloadavg()[0]:.1f}"
        )
        summary = dict(
            before=before,
            swapped=swapped,
            continued=cont.val_loss,
            annealed=annealed.train.val_loss,
            gap=gap,
            tokens=cont.tokens,
            timings=timings,
            load_average_end=os.getloadavg()[0],
        )
        (root / "anneal_bench.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
