"""Ranking every output feature of an SAE by its top-2 eigenvalues: ours against the dense route, same run.

``feature_spectra(..., k=2)`` (method "auto": the matrix-free batched Lanczos solver)
against ``feature_spectra(..., method="dense")`` (build every Q, full ``eigh``), on a
ts-medium-shaped layer (d_model 512, d_mlp 2048) with 2,048 SAE features (random unit
encoder columns), for random weights and for the power-law low-effective-rank variant of
``bench_eigen.py`` (closer to trained weights); with ``--run RUN`` on a trained model's layer instead, and
``--sae DIR`` for a trained output SAE's features. Prints the CPU, its ISA flags, the load average, both times, the
ratio and whether the two rankings agree.

    python benchmarks/bench_sae.py [--features 2048 --d-model 512 --d-mlp 2048 --threads 2]
    python benchmarks/bench_sae.py --run RUN [--sae SAE_DIR] [--layer 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from bench_eigen import low_rank_  # the same synthetic trained-like spectrum as the eigen benchmark

import tl_bilinear
from tl_bilinear.analysis import FeatureDictionary, bilinear_weights, feature_spectra
from tl_bilinear.sae import open_sae


def cpu_line() -> str:
    """The CPU model and the ISA flags that matter for GEMMs."""
    name, flags = "?", set()
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    wanted = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{name}; flags {' '.join(wanted)}"


def compare(weights, dictionary, label: str) -> dict:
    start = time.perf_counter()
    ours = feature_spectra(weights, None, dictionary, k=2)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    dense = feature_spectra(weights, None, dictionary, k=2, method="dense")
    t_dense = time.perf_counter() - start
    error = ((ours.eigendecomposition.eigenvalues - dense.eigendecomposition.eigenvalues).abs().max()).item()
    scale = dense.eigendecomposition.eigenvalues.abs().max().item()
    top = min(100, len(ours.ranking))
    overlap = len(set(ours.ranking[:top].tolist()) & set(dense.ranking[:top].tolist())) / top
    print(
        f"{label}: ours {t_ours:.2f} s, dense {t_dense:.2f} s, ratio {t_dense / t_ours:.1f}x; "
        f"max |λ| error {error / scale:.1e} (relative); top-{top} ranking overlap {overlap:.0%}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return {"ours_s": t_ours, "dense_s": t_dense, "ratio": t_dense / t_ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--d-mlp", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", help="a trained model (checkpoint or run directory) instead of synthetic weights")
    parser.add_argument("--sae", help="a trained output SAE whose features are ranked (default: random unit features)")
    parser.add_argument("--layer", type=int, default=0, help="with --run: the layer")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    print(f"{cpu_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()}")
    d = args.d_model
    g = torch.Generator().manual_seed(args.seed)
    if args.run:
        model = tl_bilinear.load(args.run)
        d = model.cfg.d_model
    else:
        model = tl_bilinear.make_model(
            "ts-medium", seed=args.seed, n_layers=1, d_model=d, d_mlp=args.d_mlp, n_heads=max(1, d // 64), d_vocab=512
        )
    if args.sae:
        dictionary = open_sae(args.sae)
        source = f"{dictionary.W_enc.shape[1]} trained SAE features"
    else:
        W_enc = torch.randn(d, args.features, generator=g)
        W_enc /= W_enc.norm(dim=0, keepdim=True)
        dictionary = FeatureDictionary(W_enc=W_enc, W_dec=W_enc.T.contiguous(), b_dec=torch.zeros(d))
        source = f"{args.features} random unit features"
    print(f"{source}, d_model {d}, d_mlp {model.cfg.d_mlp}, top-2 eigenvalues each")
    if args.run:
        compare(bilinear_weights(model, args.layer), dictionary, f"trained weights (layer {args.layer} of {args.run})")
        return
    compare(bilinear_weights(model, 0), dictionary, "random weights")
    low_rank_(model)
    compare(bilinear_weights(model, 0), dictionary, "low-rank weights")


if __name__ == "__main__":
    main()
