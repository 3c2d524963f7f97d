"""Why the MLP-input SAE plateaued: batch size, learning rate and token budget on activations read once.

Run: tlb python benchmarks/sae_sweep.py RUN_DIR [--layer 2] [--site mlp_in] [--tokens 2000000]
    [--settings '[{"batch_size": 4096, "lr": 1e-3, "total_tokens": 1000000}, ...]']
(RUN_DIR is what `tl-bilinear demo --out RUN_DIR` wrote). Reads ``--tokens`` training activations
from the same stream as ``train_sae`` (seed 0) into memory once (fp32: tokens x d_model x 4 bytes),
then trains one SAE per setting with the trainer's own step (``sae_step``, cosine schedule, ``b_dec``
from the first batch) on shuffled passes over them, and prints its variance explained on the
trainer's validation blocks (every position), the dead share and the rarest feature's firing rate.
"""

import argparse
import json
import os
import time

import torch
from bench_sae import cpu_line

import tl_bilinear
from tl_bilinear.data import TokenBlockStream
from tl_bilinear.sae import SAEConfig, SAETrainConfig, TopKSAE, collect_activations, resolve_hook
from tl_bilinear.sae.train import cosine_lr, sae_step
from tl_bilinear.train.sdpa import sdpa_forwards

DEFAULT = [{"batch_size": b, "lr": lr, "total_tokens": 1_000_000} for b, lr in [(4096, 1e-3), (1024, 1e-3)]]


def read(model, hook, split, n_tokens, skip_first):
    """``n_tokens`` activations (or more, whole batches) of the trainer's stream for ``split``."""
    stream = TokenBlockStream("builtin", model.tokenizer, model.cfg.n_ctx, split=split, seed=0, repeat=True)
    rows, count = [], 0
    with sdpa_forwards(model):
        for tokens in stream.batches(16):
            rows.append(collect_activations(model, hook, tokens, skip_first))
            count += len(rows[-1])
            if count >= n_tokens:
                return torch.cat(rows)


def train(x, x_val, cfg: SAETrainConfig):
    """One SAE trained on shuffled passes over ``x``; its variance explained on ``x_val`` and firing statistics."""
    sae = TopKSAE(SAEConfig(x.shape[1], cfg.expansion * x.shape[1], cfg.k), seed=cfg.seed)
    optimizer = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    order, position = torch.randperm(len(x), generator=generator), 0
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long)
    for step in range(cfg.steps):
        if position + cfg.batch_size > len(x):
            order, position = torch.randperm(len(x), generator=generator), 0
        batch = x[order[position : position + cfg.batch_size]]
        position += cfg.batch_size
        if step == 0:
            sae.b_dec.data.copy_(batch.mean(0))
        _, indices = sae_step(sae, optimizer, batch, cosine_lr(cfg, step))
        fired = torch.zeros(sae.d_sae, dtype=torch.bool)
        fired[indices.flatten()] = True
        since_fired = torch.where(fired, 0, since_fired + len(batch))
    with torch.no_grad():
        error = (x_val - sae(x_val)).square().sum()
        _, indices = sae.encode_topk(x_val)
    rate = torch.bincount(indices.flatten(), minlength=sae.d_sae).min().item() / len(x_val)
    spread = (x_val - x_val.mean(0)).square().sum()
    dead = (since_fired >= cfg.dead_tokens).float().mean().item()
    return {"variance_explained": round(1 - (error / spread).item(), 4), "dead": dead, "rarest_rate": rate}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--layer", type=int, default=2)
    parser.add_argument("--site", default="mlp_in")
    parser.add_argument("--tokens", type=int, default=2_000_000, help="training activations held in memory")
    parser.add_argument("--settings", type=json.loads, default=DEFAULT, help="JSON list of SAETrainConfig fields")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(json.dumps({"cpu": cpu_line(), "load_average_start": os.getloadavg()}), flush=True)
    model = tl_bilinear.load(args.run)
    hook = resolve_hook(model, args.layer, args.site)
    start = time.time()
    x = read(model, hook, "train", args.tokens, skip_first=True)
    x_val = read(model, hook, "validation", 8 * 16 * model.cfg.n_ctx, skip_first=False)
    print(json.dumps({"activations": len(x), "read_tokens_per_s": round(len(x) / (time.time() - start))}), flush=True)
    for setting in args.settings:
        cfg = SAETrainConfig(layer=args.layer, site=args.site, dead_tokens=200_000, **setting)
        start = time.time()
        result = train(x, x_val, cfg)
        print(
            json.dumps(
                {**setting, "steps": cfg.steps, **result, "seconds": round(time.time() - start, 1)}
                | {"load_average": os.getloadavg()[0]}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
