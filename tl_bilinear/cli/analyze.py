"""``tl-bilinear analyze``: write the HTML analysis report of a checkpoint.

Example::

    tl-bilinear analyze runs/ts-micro --layer 0 --token " sad" --vs " happy" \\
        --text story.txt --out report.html
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from tl_bilinear.cli.args import parse_count
from tl_bilinear.rundir import enclosing_run, run_contents, run_lock

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand to a ``tl-bilinear`` argument parser.

    Args:
        subparsers: the result of ``parser.add_subparsers()``.

    Returns:
        The subcommand's parser; its ``func`` default is :func:`run`.
    """
    p = subparsers.add_parser(
        "analyze",
        help="write a self-contained HTML report of one output direction of a layer",
        description="Eigendecompose the interaction matrix of an output direction (a token's unembedding, "
        "optionally minus another's) and write one HTML page: model summary, spectrum, top eigenvectors "
        "with direct-path tokens, activations on a text, top-activating dataset contexts. Needs no network to view.",
    )
    p.add_argument("checkpoint", help="checkpoint (or training run) directory written by tl-bilinear")
    p.add_argument("--layer", type=int, required=True, help="layer index")
    p.add_argument("--token", required=True, help='a single vocabulary token, e.g. " sad" (mind the space)')
    p.add_argument("--vs", default=None, help="contrast token: direction = W_U[token] - W_U[vs]")
    p.add_argument("--text", type=Path, default=None, help="UTF-8 text file to show activations on (any length)")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="output HTML file (default report.html)")
    p.add_argument("--k", type=parse_count, default=4, help="eigenvectors shown, >= 1 (default 4)")
    p.add_argument(
        "--dataset",
        default="builtin",
        help="contexts from: 'builtin' (story generator), a local corpus path (.txt/.jsonl/.parquet "
        "file or folder), a hub dataset name, or 'none'",
    )
    p.add_argument("--max-batches", type=int, default=8, help="dataset batches scanned (default 8)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per batch (default 8)")
    p.add_argument("--contexts", type=int, default=5, help="contexts shown per eigenvector (default 5)")
    p.set_defaults(func=run)
    return p


def _dataset(model, name: str, batch_size: int) -> Iterable | None:
    if name == "none":
        return None
    from tl_bilinear.data import TokenBlockStream

    return TokenBlockStream(name, model.tokenizer, model.cfg.n_ctx).batches(batch_size, drop_last=False)


def _out_lock(out: Path) -> AbstractContextManager:
    """The writer lock of the run ``out`` lies in (none outside a run)."""
    run = enclosing_run(out.parent)
    return run_lock(run, "tl-bilinear analyze") if run_contents(run) else nullcontext()


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"--text {path} does not exist")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"--text {path} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); give a UTF-8 text file"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Run ``analyze`` with parsed arguments.

    Args:
        args: the namespace parsed by the parser of :func:`add_parser`.

    Returns:
        The exit status (0).

    Raises:
        FileNotFoundError: for a missing checkpoint or text file.
        IsADirectoryError: for an ``--out`` that is a directory (checked before any computation).
        ValueError / IndexError: for an unknown token (near matches suggested), ``--vs``
            equal to ``--token``, a ``--text`` that is not UTF-8, or a layer out of range.
    """
    import tl_bilinear
    from tl_bilinear.analysis import check_layer, vocabulary
    from tl_bilinear.viz.report import analysis_report

    if args.out.is_dir():
        raise IsADirectoryError(
            f"--out {str(args.out)!r} is a directory; give the report's file name, e.g. {str(args.out / 'report.html')!r}"
        )
    if args.vs is not None and args.vs == args.token:
        raise ValueError(
            f"--vs {args.vs!r} is the same token as --token: the contrast is zero; pick another --vs or drop it"
        )
    text = _read_text(args.text) if args.text is not None else None
    with _out_lock(args.out):
        pass  # a writer (train, demo) holding --out's run refuses now, not after the computation
    model = tl_bilinear.load(args.checkpoint)
    layer = check_layer(model, args.layer, name="--layer")
    if model.tokenizer is None:
        raise ValueError(f"{args.checkpoint} has no tokenizer, so --token cannot be looked up")
    vocab = vocabulary(model)
    vocab.token_id(args.token, name="--token")
    if args.vs is not None:
        vocab.token_id(args.vs, name="--vs")
    dataset = _dataset(model, args.dataset, args.batch_size)
    report = analysis_report(
        model,
        layer,
        args.token,
        args.vs,
        vocab=vocab,
        text=text,
        dataset=dataset,
        k=args.k,
        n_contexts=args.contexts,
        max_batches=args.max_batches,
    )
    with _out_lock(args.out):  # into a run: only while no other process writes it
        path = report.save(args.out)
    logger.info("wrote %s", path)
    return 0
