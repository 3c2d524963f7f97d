"""``tl-bilinear image``: train, evaluate and report bilinear image classifiers (paper §3-4)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tl_bilinear.cli.args import learning_rate, non_negative, parse_count

logger = logging.getLogger(__name__)

DATA_HELP = "digits (default, offline), fashion, fashion=DIR, mnist=DIR|FILE, DIR, FILE, hub:NAME, torchvision:NAME"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``image`` with its subcommands ``train``, ``eval`` and ``report``."""
    p = subparsers.add_parser("image", help="bilinear image classifiers: train, eval, report")
    commands = p.add_subparsers(dest="image_command", required=True, metavar="IMAGE_COMMAND")

    train = commands.add_parser("train", help="train a classifier and save it as a run directory")
    train.add_argument("--data", default="digits", help=DATA_HELP)
    train.add_argument("--out", type=Path, required=True, help="run directory to create")
    train.add_argument("--hidden", type=parse_count, default=512, help="d_model = d_mlp (default 512)")
    train.add_argument("--layers", type=parse_count, default=1, help="bilinear layers (default 1)")
    train.add_argument(
        "--recipe",
        default="auto",
        help="training defaults: paper (20 epochs, weight decay 0.5, noise 0.4), fashion (40 epochs, weight decay "
        "0.1, noise 0.2), compact (batch 512, weight decay 2.5, noise 0.1, weights averaged at 0.999: the most compact "
        "MNIST spectra), or auto (default: fashion on Fashion-MNIST, else paper); the flags below override it",
    )
    train.add_argument("--epochs", type=parse_count, help="epochs (default: the recipe's)")
    train.add_argument("--noise", type=non_negative, help="input noise std in pixel units (default: the recipe's)")
    train.add_argument(
        "--batch-size", type=parse_count, help="default: the recipe's, at most n_train/20 (small data sets)"
    )
    train.add_argument("--lr", type=learning_rate, help="AdamW learning rate (default: the recipe's, 1e-3)")
    train.add_argument("--weight-decay", type=non_negative, help="AdamW weight decay (default: the recipe's)")
    train.add_argument(
        "--ema",
        type=non_negative,
        help="keep a moving average of the weights with this decay per step, e.g. 0.999 "
        "(default: the recipe's, rescaled to the run's length; 0: the last weights)",
    )
    train.add_argument("--bias", action="store_true", help="biases inside both branches")
    train.add_argument("--residual", action="store_true", help="residual connection around each layer")
    train.add_argument("--seed", type=int, default=0, help="initialisation, batch order and noise seed")
    train.add_argument("--force", action="store_true", help="replace an existing run directory")
    train.set_defaults(func=run_train)

    evaluate = _run_parser(commands, "eval", "test accuracy and the truncation curve of a run")
    evaluate.add_argument("--k-max", type=int, default=30, help="largest k of the truncation curve (default 30)")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(func=run_eval)

    report = _run_parser(commands, "report", "HTML report: eigen-images, spectra, truncation, adversarial mask")
    report.add_argument("--out", type=Path, default=Path("report.html"), help="output HTML file (default report.html)")
    report.add_argument("--target", type=int, default=0, help="class the adversarial mask aims at (default 0)")
    report.set_defaults(func=run_report)
    return p


def _run_parser(commands: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that reads a saved run (and, optionally, other data)."""
    p = commands.add_parser(name, help=help_text)
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--data", help="data (default: what the run was trained on)")
    return p


def _load(args: argparse.Namespace):
    """The run's model and data (the run's own data unless --data is given), checked against each other."""
    from tl_bilinear.image import load_classifier, load_data, read_run

    model = load_classifier(args.run)
    data = load_data(args.data or read_run(args.run).get("data", "digits"))
    if data.image_shape != model.cfg.image_shape or data.n_classes != model.cfg.n_classes:
        raise ValueError(
            f"{args.run} takes {model.cfg.image_shape} images in {model.cfg.n_classes} classes but {data.name} has "
            f"{data.image_shape} images in {data.n_classes} classes; pass the --data it was trained on"
        )
    return model, data


def train_config(args: argparse.Namespace, data, **fields):
    """The ``TrainConfig`` of the training flags (``--recipe``, ``--epochs``, ``--batch-size``, ``--lr``,
    ``--weight-decay``, ``--noise``, ``--ema``) on ``data``: the recipe's values unless given, ``fields`` on top."""
    from tl_bilinear.image import recipe

    return recipe(
        args.recipe,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        noise=args.noise,
        ema=args.ema,
        **fields,
    )


def run_train(args: argparse.Namespace) -> int:
    """Run ``image train``.

    Raises:
        FileExistsError: if the run directory exists and --force is not given.
    """
    from tl_bilinear.image import ClassifierConfig, load_data, recipe, save_classifier, train_classifier

    if args.out.exists() and not args.force:
        raise FileExistsError(f"{args.out} exists; pass --force to replace it or choose another --out")
    if args.recipe != "auto":
        recipe(args.recipe)  # an unknown name fails before the data is read
    data = load_data(args.data)
    config = ClassifierConfig(
        image_shape=data.image_shape,
        n_classes=data.n_classes,
        d_model=args.hidden,
        n_layers=args.layers,
        bias=args.bias,
        residual=args.residual,
        seed=args.seed,
    )
    train = train_config(args, data, seed=args.seed)
    model, history = train_classifier(data, config, train)
    save_classifier(model, args.out, data=args.data, train_config=vars(train), history=history)
    sys.stdout.write(f"test accuracy {100 * history['test_accuracy'][-1]:.2f}%, saved {args.out}\n")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Run ``image eval``: JSON with ``accuracy`` (0-1) and ``truncation`` ({k: accuracy}).

    ``truncation`` keeps the top-k eigenvectors per class of the last layer's decomposition in its
    input space (``hook_resid_pre``: the embedding for one layer, as the paper's code decomposes);
    one-layer models add ``truncation_pixel``, the pixel-space decomposition of the eigen-images.

    Raises:
        ValueError: if --k-max is negative or larger than the input width.
    """
    from tl_bilinear.image import class_eigendecompose, truncation_curve

    model, data = _load(args)
    model = model.double()
    spaces = ("hidden", "pixel") if model.cfg.n_layers == 1 else ("hidden",)
    eigens = {space: class_eigendecompose(model, space=space) for space in spaces}
    k_max = min(ce.eig.k for ce in eigens.values())
    if not 0 <= args.k_max <= k_max:
        raise ValueError(f"--k-max {args.k_max} must be in [0, {k_max}] (the eigenvectors per class)")
    inputs = {space: ce.inputs(model, data.test_images) for space, ce in eigens.items()}
    curves = {
        space: truncation_curve(ce, inputs[space], data.test_labels, range(args.k_max + 1))
        for space, ce in eigens.items()
    }
    hidden = eigens["hidden"]
    accuracy = truncation_curve(hidden, inputs["hidden"], data.test_labels, [hidden.eig.k])[hidden.eig.k]
    result = {"run": str(args.run), "data": data.name, "accuracy": accuracy, "truncation": curves["hidden"]}
    if "pixel" in curves:
        result["truncation_pixel"] = curves["pixel"]
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return 0
    sys.stdout.write(f"test accuracy {100 * accuracy:.2f}% on {data.name}\ntop-k eigenvectors per class:\n")
    sys.stdout.write("  k     " + "".join(f"{space + ' space':>14s}" for space in curves) + "\n")
    for k in curves["hidden"]:
        sys.stdout.write(f"  k={k:<3d} " + "".join(f"{100 * curve[k]:13.2f}%" for curve in curves.values()) + "\n")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Run ``image report``."""
    from tl_bilinear.image import check_class
    from tl_bilinear.image.report import image_report

    model, data = _load(args)
    check_class(model, args.target)
    path = image_report(model, data, title=f"bilinear image classifier {args.run}", target=args.target).save(args.out)
    sys.stdout.write(f"wrote {path}\n")
    return 0
