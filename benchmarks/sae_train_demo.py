"""Train the two SAEs of the quality measurements on the main job's model (MLP input and output of one layer).

Run: tlb python benchmarks/sae_train_demo.py RUN_DIR OUT_DIR [--layer 2] [--tokens 1500000]
(RUN_DIR is what `tl-bilinear demo --out RUN_DIR` wrote). Prints the CPU, load average and metrics.
"""

import argparse
import json
import logging
import os
import time

import torch
from bench_sae import cpu_line

import tl_bilinear
from tl_bilinear.sae import SAETrainConfig, train_sae


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--layer", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1_500_000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--sites", default="mlp_in,mlp_out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(2)
    model = tl_bilinear.load(args.run)
    print(f"cpu: {cpu_line()}; load average at start: {os.getloadavg()}")
    for site in args.sites.split(","):
        cfg = SAETrainConfig(
            layer=args.layer, site=site, total_tokens=args.tokens, lr=args.lr, eval_every=100, eval_batches=8
        )
        start = time.time()
        result = train_sae(model, cfg, os.path.join(args.out, site), progress=True)
        print(
            json.dumps(
                {
                    "site": site,
                    "layer": args.layer,
                    "seconds": round(time.time() - start, 1),
                    "load_average": os.getloadavg(),
                    "dead_fraction": result.dead_fraction,
                    **result.metrics.to_dict(),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
