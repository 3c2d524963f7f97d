"""The ``tl-bilinear`` command.

Each subcommand is a module ``tl_bilinear.cli.<name>`` with ``add_parser(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit status).
``SUBCOMMANDS`` lists them in ``--help`` order; to add one, write the module and append its name.
Library errors become one line ``tl-bilinear <command>: error: ...`` (exit 2) in :func:`main`;
nothing below the CLI imports this package.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

#: Subcommand modules under ``tl_bilinear.cli``, in ``--help`` order.
SUBCOMMANDS: list[str] = [
    "train",
    "tokenizer",
    "generate",
    "info",
    "demo",
    "analyze",
    "convert",
    "anneal",
    "image",
    "sae",
    "export",
]

#: Exceptions that are the user's to fix: one line, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    IndexError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    ImportError,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block): see ``--help``."""

    def error(self, message: str):  # noqa: D102 (argparse's)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``tl-bilinear`` parser with every subcommand of ``SUBCOMMANDS``."""
    parser = _Parser(prog="tl-bilinear", description="Bilinear-MLP transformers with TransformerLens.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"tl_bilinear.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tl-bilinear``; returns the exit status.

    Expected failures (bad arguments, missing files, a config mismatch, a diverged run)
    print one line ``tl-bilinear <command>: error: ...`` and exit with status 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    from tl_bilinear.compat import TL4
    from tl_bilinear.rundir import RunLocked

    # training needs TransformerLens 3.9; under 4.x `tl-bilinear train` fails with its ImportError
    errors = (*USER_ERRORS, RunLocked)
    if not TL4:
        errors = (*errors, importlib.import_module("tl_bilinear.train").TrainingDiverged)
    try:
        return args.func(args)
    except errors as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        parser.exit(2, f"tl-bilinear {args.command}: error: {message}\n")
    except KeyboardInterrupt:
        return 130
