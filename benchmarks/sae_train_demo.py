"""Train the two SAEs of the quality measurements on the main job's model (MLP input and output of one layer).

Run: tlb python benchmarks/sae_train_demo.py RUN_DIR OUT_DIR [--layer 2] [--tokens 4000000] [--batch-size 1024] [--lr 4e-3]
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
    parser.add_argument("--tokens", type=int, default=4_000_000)
    parser.add_argument("--batch-size", type=int, default=1024)  # recipe "small"
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--sites", default="mlp_in,mlp_out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(2)
    model = tl_bilinear.load(args.run)
    print(f"cpu: {cpu_line()}; load average at start: {os.getloadavg()}")
    for site in args.sites.split(","):
        cfg = SAETrainConfig(
            layer=args.layer,
            site=site,
            total_tokens=args.tokens,
            batch_size=args.batch_size,
            lr=args.lr,
            eval_every=args.eval_every,
            eval_batches=8,
        )
        start = time.time()
        result = train_sae(model, cfg, os.path.join(args.out, site), progress=False)
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
