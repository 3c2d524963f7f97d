"""Quality bars of the image classifiers and toy gates (paper §3-4), measured end to end.

    python benchmarks/bench_image.py --mnist /path/to/mnist.pkl.gz --fashion fashion --json out.json

Sections (``--sections``; each written to the JSON as soon as it is done): toy AND eigenpairs;
full MNIST (training time per epoch, test accuracy, truncation curve k = 0..30); Fashion-MNIST
(the same); the consistency of the top eigenvector per class across seeds on MNIST; adversarial
eigen-masks against permuted masks for every target class, on an MNIST model trained with
``--adversarial-noise``. Models saved under ``--save`` are reused by later runs. Prints the CPU model,
its ISA flags and the load average next to every timing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch
from machine import machine_report, print_machine

from tl_bilinear.cli.image import train_config
from tl_bilinear.image import (
    ClassifierConfig,
    accuracy,
    class_eigendecompose,
    hidden_decomposition,
    load_classifier,
    load_data,
    mask_attack,
    rank_matched_cosines,
    read_run,
    save_classifier,
    train_classifier,
    truncation_curve,
)
from tl_bilinear.toy import train_gates

SECTIONS = ("toy", "mnist", "fashion", "consistency", "adversarial")


def toy_and() -> dict:
    toy = train_gates(n_inputs=5, gate="AND")
    eig = toy.eigendecompose()
    cosines, values = [], []
    for out, (i, j) in enumerate(toy.pairs):
        for value, vector in zip(eig.eigenvalues[out, :2], eig.eigenvectors[out, :2]):
            expected = torch.zeros(5, dtype=torch.float64)
            expected[i], expected[j] = 1.0, 1.0 if value > 0 else -1.0
            cosines.append(((vector @ expected).abs() / expected.norm()).item())
            values.append(value.item())
    rest = eig.eigenvalues[:, 2:].abs().max().item()
    return {
        "loss": toy.loss,
        "top_eigenvalues": sorted(set(round(v, 6) for v in values)),
        "min_cos": min(cosines),
        "max_other_abs": rest,
    }


def train_and_measure(spec: str, args, seed: int = 0, kind: str = "mnist") -> tuple:
    """Train (or reuse from ``--save``) one model; the saved name spells out its settings."""
    data = load_data(spec)
    config = ClassifierConfig(
        image_shape=data.image_shape,
        n_classes=data.n_classes,
        d_model=args.d_model,
        d_mlp=args.d_mlp,
        residual=args.residual,
        seed=seed,
    )
    train = train_config(args, data, seed=seed, progress=False)
    layer = ("-residual" if args.residual else "") + (f"-m{args.d_mlp}" if args.d_mlp else "")
    name = (
        f"{kind}-d{args.d_model}{layer}-e{train.epochs}-b{train.batch_size}-wd{train.weight_decay}-n{train.noise}"
        f"-lr{train.lr}" + (f"-ema{train.ema}" if train.ema else "") + f"-s{seed}"
    )
    out = args.save / name if args.save else None
    start, load_before = time.perf_counter(), list(os.getloadavg())
    if out is not None and (out / "classifier.json").exists():  # --save of an earlier run: reuse its model
        model, history = load_classifier(out), read_run(out)["history"]
        seconds, load_before = sum(history["seconds"]), "(reused: see the run that trained it)"
    else:
        model, history = train_classifier(data, config, train)
        seconds = time.perf_counter() - start
    if out is not None:
        save_classifier(model, out, data=spec, train_config=vars(train), history=history)
    result = {
        "data": spec,
        "d_model": args.d_model,
        "d_mlp": config.d_mlp,
        "epochs": train.epochs,
        "batch_size": train.batch_size,
        "noise": train.noise,
        "weight_decay": train.weight_decay,
        "lr": train.lr,
        "ema": train.ema,
        "residual": args.residual,
        "seed": seed,
        "train_seconds": seconds,
        "seconds_per_epoch": seconds / train.epochs,
        "loadavg_before": load_before,
        "loadavg_after": list(os.getloadavg()),
        "test_accuracy": history["test_accuracy"][-1],
        "epoch_seconds": history["seconds"],
    }
    return data, model, result


def analyse(data, model) -> dict:
    """Train accuracy (clean images: under- or over-fitting), test accuracy from the decomposition, and the
    truncation curves k = 0..30 of the pixel-space decomposition and of the embedding-space one (the paper's)."""
    model, labels = model.double(), data.test_labels
    result = {"train_accuracy": accuracy(model, data.train_images, data.train_labels)}
    for space, suffix in (("pixel", ""), ("hidden", "_hidden")):
        ce = class_eigendecompose(model, layer=0, space=space)
        images = ce.inputs(model, data.test_images)
        if space == "pixel":  # all eigenpairs: the model's own accuracy, through the decomposition
            result["full_accuracy"] = truncation_curve(ce, images, labels, [ce.eig.k])[ce.eig.k]
        curve = truncation_curve(ce, images, labels, range(31))
        result |= {f"truncation{suffix}": curve, f"loss_at_10_pp{suffix}": 100 * (result["full_accuracy"] - curve[10])}
    return result


def adversarial(data, model, rank: int | None) -> dict:
    """Eigen-masks (encoders of the top-10 positive eigenvectors per class) against permuted masks, every target."""
    ce = hidden_decomposition(model)  # float64 decomposition, float32 forwards
    labels = data.test_labels
    # the paper's strengths, 0.025-0.3 in units of the std of the mask's positive pixels
    attacks = [mask_attack(model, data.test_images, labels, t, k=10, rank=rank, ce=ce) for t in range(data.n_classes)]
    fields = ("accuracy_eigen", "accuracy_permuted", "target_rate_eigen", "target_rate_permuted")
    return {
        "strengths": attacks[0].strengths,
        "mask_l2_norm_at_strength_1": [a.mask.norm().item() for a in attacks],
        "k": 10,
        "rank": rank,
        "per_target": {a.target: {f: getattr(a, f) for f in fields} for a in attacks},
        "eigen_beats_permuted_everywhere": all(
            e < p for a in attacks for e, p in zip(a.accuracy_eigen, a.accuracy_permuted)
        ),
        **{
            f"mean_{f}": [
                sum(getattr(a, f)[i] for a in attacks) / len(attacks) for i in range(len(attacks[0].strengths))
            ]
            for f in fields
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="MNIST data (an IDX folder or mnist.pkl.gz); skipped if absent")
    parser.add_argument("--fashion", help="Fashion-MNIST data (e.g. 'fashion' for the Debian package)")
    parser.add_argument("--recipe", default="auto", help="training defaults (tl_bilinear.image.RECIPES, or auto)")
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--d-mlp", type=int, help="hidden units of the bilinear layer (default: d_model)")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's")
    parser.add_argument("--noise", type=float, help="default: the recipe's")
    parser.add_argument("--weight-decay", type=float, help="default: the recipe's")
    parser.add_argument("--lr", type=float, help="default: the recipe's")
    parser.add_argument("--ema", type=float, help="decay of the weights' moving average (default: the recipe's)")
    parser.add_argument("--residual", action="store_true", help="residual bilinear layer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mnist and fashion sections' models")
    parser.add_argument("--seeds", type=int, default=3, help="models for the consistency section (0 skips it)")
    parser.add_argument(
        "--save", type=Path, help="folder to save the trained models in (models already there are reused)"
    )
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    # the attacked model, as in the paper's adversarial notebook: residual, no weight decay, no input noise, 30 epochs
    parser.add_argument("--adversarial-noise", type=float, default=0.0, help="input noise of the attacked model")
    parser.add_argument("--adversarial-weight-decay", type=float, default=0.0)
    parser.add_argument("--adversarial-epochs", type=int, default=30)
    parser.add_argument(
        "--adversarial-rank", default="0", help="the target eigenvector whose encoder is the mask, or 'all'"
    )
    args = parser.parse_args()
    sections = args.sections.split(",")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = {"machine": print_machine(), "command": " ".join(os.sys.argv)}

    def record(name, value):
        results[name] = value
        args.json.write_text(json.dumps(results, indent=2))
        logging.info("%s: %s", name, json.dumps(value)[:2000])

    if "toy" in sections:
        record("toy_and", toy_and())
    if args.mnist and "mnist" in sections:
        data, model, result = train_and_measure(args.mnist, args, args.seed)
        record("mnist", {**result, **analyse(data, model)})
    if args.fashion and "fashion" in sections:
        data, model, result = train_and_measure(args.fashion, args, args.seed, "fashion")
        record("fashion", {**result, **analyse(data, model)})
    if args.mnist and "consistency" in sections and args.seeds > 1:
        runs = [train_and_measure(args.mnist, args, seed) for seed in range(args.seeds)]
        cosines = rank_matched_cosines([class_eigendecompose(r[1], k=1, dtype=torch.float64) for r in runs])
        record(
            "consistency",
            {
                "seeds": list(range(args.seeds)),
                "mean_abs_cos_top1": cosines.mean().item(),
                "per_class": cosines.mean(0)[:, 0].tolist(),
                "accuracies": [r[2]["test_accuracy"] for r in runs],
            },
        )
    if args.mnist and "adversarial" in sections:
        noise, wd, epochs = args.adversarial_noise, args.adversarial_weight_decay, args.adversarial_epochs
        attacked = argparse.Namespace(
            **{**vars(args), "noise": noise, "weight_decay": wd, "epochs": epochs, "residual": True}
        )
        data, model, result = train_and_measure(args.mnist, attacked, 0, "mnist-adversarial")
        rank = None if args.adversarial_rank == "all" else int(args.adversarial_rank)
        record("adversarial", {**result, **adversarial(data, model, rank)})
    record("machine_end", machine_report())


if __name__ == "__main__":
    main()
