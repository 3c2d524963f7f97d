"""Text sources behind one interface: ``iter_documents(source)`` yields documents (str).

A source is one of

* ``"builtin"``: the synthetic story generator (``tl_bilinear.data.stories``), endless
  unless ``limit`` is given; needs no network.
* a local path:

  - ``.txt``: TinyStories' own release format, documents separated by
    ``<|endoftext|>``. A ``.txt`` file without that marker is **one document**
    (blank lines are kept: TinyStories stories contain paragraph breaks).
  - ``.jsonl``: one JSON object a line with a ``text`` field (``text_column``).
  - ``.parquet``: a ``text`` column (``text_column``).
  - a directory: every file above under it, recursively, in sorted path order.

* anything else is a Hugging Face dataset name (``"roneneldan/TinyStories"``,
  ``"HuggingFaceFW/fineweb"`` with ``hub_config="sample-10BT"``, ...), streamed with
  ``datasets.load_dataset(..., streaming=True)``; ``datasets`` is imported only then.
  The builder names ``"json"``/``"parquet"``/``"text"`` with ``data_files=`` go through
  the same code path.

Documents are stripped of surrounding whitespace; empty ones are dropped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tl_bilinear.data.stories import iter_stories

logger = logging.getLogger(__name__)

BUILTIN = "builtin"
END_OF_TEXT = "<|endoftext|>"
SUFFIXES = (".txt", ".jsonl", ".parquet")
_SEP = END_OF_TEXT.encode()


class InvalidUTF8Error(ValueError):
    """A file holds bytes that are not UTF-8.

    Attributes:
        path: the file.
        line: 1-based line number (row number for parquet).
        offset: byte offset of the first bad byte in the file (-1 where unknown).
    """

    def __init__(self, path: Path, line: int, offset: int, reason: str):
        self.path, self.line, self.offset = path, line, offset
        where = f"line {line}, byte offset {offset}" if offset >= 0 else f"row {line}"
        super().__init__(
            f"{path}: bytes that are not UTF-8 at {where} ({reason}); re-encode the file as UTF-8 "
            "or pass skip_invalid=True to skip the documents that contain them"
        )


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", ".", "~"))
        or source.endswith(SUFFIXES)
        or os.sep in source.rstrip(os.sep)
        and source.count("/") != 1
    )


def list_files(root: str | os.PathLike) -> list[Path]:
    """The corpus files of a local source: the file itself, or those under a directory.

    Args:
        root: a ``.txt`` / ``.jsonl`` / ``.parquet`` file or a directory.

    Returns:
        The files, sorted by path (recursively for a directory).

    Raises:
        FileNotFoundError: if ``root`` does not exist.
        ValueError: if a file has an unsupported suffix, or a directory holds no
            supported file.
    """
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"corpus path {str(root)!r} does not exist (resolved: {path.absolute()})")
    if path.is_file():
        if path.suffix not in SUFFIXES:
            raise ValueError(f"unsupported corpus file {path}: expected one of {', '.join(SUFFIXES)}")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise ValueError(
            f"empty corpus: directory {path} holds no {', '.join(SUFFIXES)} files; "
            "point to a directory of corpus files or use source='builtin'"
        )
    return files


class DocumentStream:
    """An iterable of documents from one source (see the module docstring).

    Each ``iter()`` starts again from the beginning (document ``start``).

    Attributes:
        n_documents: documents yielded by the latest iteration.
        n_skipped: documents skipped for invalid UTF-8 by the latest iteration
            (only with ``skip_invalid=True``).
    """

    def __init__(
        self,
        source: str | os.PathLike,
        *,
        split: str = "train",
        seed: int = 0,
        skip_invalid: bool = False,
        text_column: str = "text",
        start: int = 0,
        limit: int | None = None,
        hub_config: str | None = None,
        data_files: Any = None,
    ):
        if start < 0 or (limit is not None and limit < 0):
            raise ValueError(f"start and limit must be non-negative, got start={start}, limit={limit}")
        self.source, self.split, self.seed = source, split, seed
        self.skip_invalid, self.text_column = skip_invalid, text_column
        self.start, self.limit = start, limit
        self.hub_config, self.data_files = hub_config, data_files
        self.files: list[Path] | None = None
        self.n_documents = 0
        self.n_skipped = 0
        name = os.fspath(source)
        if name == BUILTIN:
            self.kind = "builtin"
        elif isinstance(source, os.PathLike) or Path(name).expanduser().exists() or _looks_like_path(name):
            self.kind = "local"
            self.files = list_files(name)  # fails now on a missing or empty path
        else:
            self.kind = "hub"

    def __repr__(self) -> str:
        return f"DocumentStream({os.fspath(self.source)!r}, kind={self.kind!r}, start={self.start})"

    def __iter__(self) -> Iterator[str]:
        self.n_documents = self.n_skipped = 0
        if self.kind == "builtin":
            stop = None if self.limit is None else self.start + self.limit
            for doc in iter_stories(self.seed, start=self.start, stop=stop):
                self.n_documents += 1
                yield doc
            return
        docs = self._hub() if self.kind == "hub" else self._local()
        for i, doc in enumerate(docs):
            if self.limit is not None and self.n_documents >= self.limit:
                break
            if i < self.start:
                continue
            self.n_documents += 1
            yield doc
        if self.n_skipped:
            logger.warning("%s: skipped %d document(s) with invalid UTF-8", self.source, self.n_skipped)
        if self.n_documents == 0 and self.start == 0 and self.limit != 0:
            raise ValueError(
                f"empty corpus: {os.fspath(self.source)!r} yielded no documents"
                + (f" ({self.n_skipped} skipped for invalid UTF-8)" if self.n_skipped else "")
                + "; check the files (or the text column) or use source='builtin'"
            )

    # -- local files ---------------------------------------------------------------
    def _local(self) -> Iterator[str]:
        for path in self.files or ():
            reader = {".txt": self._txt, ".jsonl": self._jsonl, ".parquet": self._parquet}[path.suffix]
            for doc in reader(path):
                doc = doc.strip()
                if doc:
                    yield doc

    def _bad(self, path: Path, line: int, offset: int, err: UnicodeDecodeError) -> None:
        """Raise for invalid UTF-8, or count a skip."""
        if not self.skip_invalid:
            raise InvalidUTF8Error(path, line, offset, err.reason) from None
        self.n_skipped += 1
        if self.n_skipped <= 5:
            logger.warning("skipping a document with invalid UTF-8: %s line %d byte offset %d", path, line, offset)

    def _txt(self, path: Path) -> Iterator[str]:
        parts: list[str] = []
        bad = None
        offset = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                pos = offset
                for k, piece in enumerate(raw.split(_SEP)):
                    if k:  # an <|endoftext|> marker ended a document
                        if bad is None:
                            yield "".join(parts)
                        else:
                            self._bad(path, *bad)
                        parts, bad = [], None
                        pos += len(_SEP)
                    try:
                        parts.append(piece.decode("utf-8"))
                    except UnicodeDecodeError as err:
                        if not self.skip_invalid:
                            self._bad(path, lineno, pos + err.start, err)
                        bad = bad or (lineno, pos + err.start, err)
                    pos += len(piece)
                offset += len(raw)
        if bad is None:
            yield "".join(parts)
        else:
            self._bad(path, *bad)

    def _jsonl(self, path: Path) -> Iterator[str]:
        offset = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                start, offset = offset, offset + len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    self._bad(path, lineno, start + err.start, err)
                    continue
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f"{path}: line {lineno} is not valid JSON ({err.msg}); expected one object a line"
                    ) from None
                if not isinstance(record, dict) or self.text_column not in record:
                    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                    raise ValueError(
                        f"{path}: line {lineno} has no {self.text_column!r} field (found {keys}); "
                        "pass text_column= to name the text field"
                    )
                yield str(record[self.text_column])

    def _parquet(self, path: Path) -> Iterator[str]:
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path)
        names = table.schema_arrow.names
        if self.text_column not in names:
            raise ValueError(f"{path}: no {self.text_column!r} column (columns: {names}); pass text_column=")
        row = 0
        for batch in table.iter_batches(columns=[self.text_column], batch_size=1024):
            for value in batch.column(0).to_pylist():
                row += 1
                if isinstance(value, bytes):
                    try:
                        value = value.decode("utf-8")
                    except UnicodeDecodeError as err:
                        self._bad(path, row, -1, err)
                        continue
                if value is not None:
                    yield value

    # -- Hugging Face datasets -------------------------------------------------------
    def _hub(self) -> Iterator[str]:
        try:
            import datasets
        except ImportError as err:
            raise ImportError(
                f"source {os.fspath(self.source)!r} is not a local path, so it is read as a Hugging Face "
                "dataset, which needs the `datasets` package: pip install datasets"
            ) from err
        name = os.fspath(self.source)
        try:
            ds = datasets.load_dataset(
                name, self.hub_config, split=self.split, streaming=True, data_files=self.data_files
            )
        except Exception as err:  # the hub raises many types; name the source and the fix
            offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE")
            raise ValueError(
                f"could not open Hugging Face dataset {name!r} (config {self.hub_config!r}, split "
                f"{self.split!r}): {type(err).__name__}: {err}. Check the name and the network"
                + (" (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)" if offline else "")
                + f"; if {name!r} was meant as a local path, no such file or directory exists"
            ) from err
        for row, record in enumerate(ds):
            if self.text_column not in record:
                raise ValueError(
                    f"dataset {name!r} row {row} has no {self.text_column!r} column "
                    f"(columns: {sorted(record)}); pass text_column="
                )
            doc = (record[self.text_column] or "").strip()
            if doc:
                yield doc


def iter_documents(source: str | os.PathLike, **options: Any) -> DocumentStream:
    """Documents (str) from a source: ``"builtin"``, a local path, or a hub dataset name.

    Keyword options are those of ``DocumentStream``:

    Args:
        source: ``"builtin"``, a file or directory (``.txt`` / ``.jsonl`` / ``.parquet``),
            or a Hugging Face dataset name (see the module docstring).
        split: the hub dataset split to stream (local files and ``"builtin"`` have one
            stream; the train/validation split is made by ``TokenBlockStream``).
        seed: corpus seed of ``"builtin"`` (ignored by other sources).
        skip_invalid: skip documents holding bytes that are not UTF-8 (counted in
            ``n_skipped`` and logged) instead of raising.
        text_column: the text field of ``.jsonl`` / ``.parquet`` / hub rows.
        start: skip the first ``start`` documents (free for ``"builtin"``; other sources
            read and drop them).
        limit: yield at most this many documents.
        hub_config: the hub dataset's config name (e.g. ``"sample-10BT"`` for FineWeb).
        data_files: passed to ``datasets.load_dataset`` for hub sources.

    Returns:
        A re-iterable ``DocumentStream``; it reports ``n_documents`` and ``n_skipped``.

    Raises:
        FileNotFoundError: if a local path does not exist (raised here, at once).
        ValueError: if a directory holds no corpus file or a file has an unsupported
            suffix (at once); while iterating: an empty corpus, bytes that are not UTF-8
            (``InvalidUTF8Error``, naming the file, line and byte offset), a missing
            text field, or a hub dataset that cannot be opened.
    """
    return DocumentStream(source, **options)
