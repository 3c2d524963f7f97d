"""How accurate can a classifier be whose class logits each have only r eigenvectors? (the truncation bar's ceiling)

    python benchmarks/rank_ceiling.py --data /path/to/mnist.pkl.gz [--ranks 10,14] [--run RUN ...]

Trains, for each r, the quadratic classifier ``logit_c(x) = Σ_{i<r} s_ci (v_ci · x)²`` directly (no
embedding, no shared hidden layer: r free pixel-space directions and weights per class; AdamW, cosine,
Gaussian input noise as the image recipes), and prints its test accuracy beside the truncation curves
(k = 0..30, both decomposition spaces: ``bench_image.analyse``) of each saved classifier ``--run``
(``tl-bilinear image train`` or ``bench_image.py --save``). If the direct rank-r model is far more
accurate than the truncated ones, the truncation loss comes from how the bilinear model spreads its
spectrum, not from the data.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_image import analyse
from machine import machine_report, print_machine

from tl_bilinear.image import load_classifier, load_data


def train_rank_r(data, r: int, epochs: int, batch_size: int, lr: float, noise: float, seed: int) -> dict:
    """Train the direct rank-r quadratic classifier; its test and clean-train accuracy."""
    generator = torch.Generator().manual_seed(seed)
    images, labels = data.train_images.flatten(1).float(), data.train_labels
    n_classes, d = data.n_classes, images.shape[1]
    directions = torch.nn.Parameter(torch.randn(n_classes * r, d, generator=generator) / d**0.5)
    weights = torch.nn.Parameter(0.1 * torch.randn(n_classes, r, generator=generator))

    def logits(x):
        return ((x @ directions.T) ** 2).view(len(x), n_classes, r).mul(weights).sum(-1)

    optimizer = torch.optim.AdamW([directions, weights], lr=lr, weight_decay=0.0)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=generator).split(batch_size):
            x = images[batch] + noise * torch.randn(len(batch), d, generator=generator)
            loss = torch.nn.functional.cross_entropy(logits(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    with torch.no_grad():
        test = (logits(data.test_images.flatten(1).float()).argmax(-1) == data.test_labels).double().mean().item()
        train = (logits(images).argmax(-1) == labels).double().mean().item()
    return {"test_accuracy": test, "train_accuracy": train, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MNIST or Fashion-MNIST (tl_bilinear.image.load_data spec)")
    parser.add_argument("--ranks", default="10", help="comma-separated r (default 10)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--noise", type=float, default=0.2, help="input noise std in pixel units")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", action="append", default=[], help="a saved classifier to truncate (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = load_data(args.data)
    ranks = [int(r) for r in args.ranks.split(",")]
    if not all(1 <= r <= 30 for r in ranks):
        parser.error(f"--ranks {args.ranks}: each r must be in 1..30 (the truncation curves stop at k = 30)")
    result = {"machine": print_machine(), "args": vars(args)}
    for r in ranks:
        result[f"rank_{r}"] = train_rank_r(data, r, args.epochs, args.batch_size, args.lr, args.noise, args.seed)
        print(json.dumps({f"rank_{r}": result[f"rank_{r}"]}), flush=True)
    for run in args.run:
        result[run] = analyse(data, load_classifier(run))
        print(json.dumps({run: result[run]}), flush=True)
    result["machine_end"] = machine_report()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
