"""Packing documents into fixed-length token blocks: split, shard, stream, resume.

The token stream of a split is ``EOS d0 EOS d1 EOS d2 ...``: every document is
preceded by ``<|endoftext|>`` (the same BOS TransformerLens prepends in ``to_tokens``),
and the stream is cut into consecutive blocks of ``n_ctx`` tokens, so documents shorter
than ``n_ctx`` share blocks and longer ones span several. A trailing partial block is
dropped.

* **Split.** Document ``i`` of the source (counting from 0 in source order) belongs to
  the validation split iff ``splitmix64(i) % 10**6 < val_fraction * 10**6``: a fixed,
  seed-independent, non-periodic choice of about ``val_fraction`` of the documents.
* **Sharding** (DDP). Blocks are numbered globally; rank ``r`` of ``world_size`` gets
  blocks ``b`` with ``b % world_size == r``. A step's blocks over all ranks are then
  the same as one process's consecutive blocks. Every rank tokenizes the whole
  stream; the last incomplete round (fewer than ``world_size`` blocks) is dropped so
  that all ranks get the same number of blocks.
* **Resume.** ``state_dict()`` is the stream position after the last complete round of
  blocks (epoch, document index, token offset in it, blocks so far): plain ints, the
  same on every rank. ``load_state_dict`` continues with exactly the next blocks.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from tl_bilinear.data.sources import iter_documents

_M64 = (1 << 64) - 1
_PPM = 1_000_000


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


#: Fraction of documents held out for validation by default (the tokenizer never sees them).
VAL_FRACTION = 0.01


def is_validation(index: int, val_fraction: float = VAL_FRACTION) -> bool:
    """Whether document ``index`` belongs to the validation split.

    Args:
        index: position of the document in its source (from 0).
        val_fraction: the fraction of documents in the validation split.

    Returns:
        True for a validation document.
    """
    return _splitmix64(index) % _PPM < round(val_fraction * _PPM)


Source = str | os.PathLike | Sequence[str] | Callable[[], Iterable[str]]


class TokenBlockStream:
    """Blocks of ``n_ctx`` token ids from a text source, for one split and one rank.

    Iterating yields LongTensors of shape ``[n_ctx]``; ``batches(batch_size)`` yields
    ``[batch, n_ctx]``. Each new iteration continues from the current position.

    Args:
        source: ``"builtin"``, a path or a hub dataset name (read with
            ``iter_documents(source, seed=seed, **source_kwargs)``), a list of texts, or
            a zero-argument callable returning a fresh iterable of texts.
        tokenizer: a Hugging Face tokenizer with an EOS token.
        n_ctx: tokens per block (the model's context length).
        split: ``"train"`` or ``"validation"``.
        rank: this process's rank.
        world_size: number of processes.
        seed: the built-in corpus seed (passed to ``iter_documents``).
        val_fraction: fraction of documents in the validation split (0 < f < 1).
        repeat: start the source again at its end (epochs) instead of stopping.
        source_kwargs: extra ``iter_documents`` arguments (``skip_invalid``, ...).
        encode_batch: documents tokenized per tokenizer call.

    Raises:
        ValueError: for a bad ``split``, ``n_ctx``, ``rank``/``world_size`` or
            ``val_fraction``, or a tokenizer without an EOS token.
        TypeError: for a one-shot iterator as ``source`` (it cannot be resumed).
    """

    def __init__(
        self,
        source: Source,
        tokenizer: Any,
        n_ctx: int,
        *,
        split: str = "train",
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        val_fraction: float = VAL_FRACTION,
        repeat: bool = False,
        source_kwargs: dict[str, Any] | None = None,
        encode_batch: int = 256,
    ):
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
        if not isinstance(n_ctx, int) or n_ctx < 1:
            raise ValueError(f"n_ctx must be a positive integer, got {n_ctx!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if isinstance(source, Iterator):
            raise TypeError(
                "source is a one-shot iterator, which cannot be re-read or resumed; pass a list, "
                "a source name/path, or a zero-argument function returning a fresh iterable"
            )
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; documents are joined with it")
        self.source, self.tokenizer, self.n_ctx = source, tokenizer, n_ctx
        self.split, self.rank, self.world_size, self.seed = split, rank, world_size, seed
        self.val_fraction, self.repeat, self.encode_batch = val_fraction, repeat, encode_batch
        self.source_kwargs = dict(source_kwargs or {})
        if "start" in self.source_kwargs or "seed" in self.source_kwargs:
            raise ValueError(
                "source_kwargs may not set 'start' or 'seed': the stream sets the start position itself "
                "(use load_state_dict to resume) and takes seed= directly"
            )
        self.eos_id = int(tokenizer.eos_token_id)
        self._epoch = self._doc_index = self._token_offset = self._blocks = 0

    # -- state -------------------------------------------------------------------------
    def _fingerprint(self) -> dict[str, Any]:
        return {
            "n_ctx": self.n_ctx,
            "split": self.split,
            "world_size": self.world_size,
            "seed": self.seed,
            "val_ppm": round(self.val_fraction * _PPM),
            "eos_id": self.eos_id,
            "vocab_size": len(self.tokenizer),
        }

    def state_dict(self) -> dict[str, Any]:
        """The stream position (JSON-serialisable ints and strings; rank-independent).

        Returns:
            ``{"epoch", "doc_index", "token_offset", "blocks", ...}`` plus the settings
            it is only valid for (``n_ctx``, ``split``, ``world_size``, ...).
        """
        return {
            "version": 1,
            "epoch": self._epoch,
            "doc_index": self._doc_index,
            "token_offset": self._token_offset,
            "blocks": self._blocks,
            **self._fingerprint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by ``state_dict``.

        Args:
            state: a ``state_dict()`` of a stream with the same settings.

        Raises:
            ValueError: if the state was saved with different settings (named) or is
                not a stream state.
        """
        missing = {"epoch", "doc_index", "token_offset", "blocks"} - set(state)
        if missing:
            raise ValueError(f"not a TokenBlockStream state: missing {sorted(missing)}")
        for key, value in self._fingerprint().items():
            if key in state and state[key] != value:
                raise ValueError(
                    f"cannot resume: the stream state was saved with {key}={state[key]!r}, this stream "
                    f"has {key}={value!r}; resume with the same data settings"
                )
        self._epoch, self._doc_index = int(state["epoch"]), int(state["doc_index"])
        self._token_offset, self._blocks = int(state["token_offset"]), int(state["blocks"])

    # -- reading -----------------------------------------------------------------------
    def _documents(self, start: int) -> Iterable[str]:
        src = self.source
        if isinstance(src, (str, os.PathLike)):
            kwargs = dict(self.source_kwargs)
            if kwargs.get("limit") is not None:  # the limit counts from document 0, not from ``start``
                kwargs["limit"] = max(0, kwargs["limit"] - start)
            return iter_documents(src, seed=self.seed, start=start, **kwargs)
        if callable(src):
            return itertools.islice(src(), start, None)
        return itertools.islice(src, start, None)

    def _tokenized(self, start: int) -> Iterator[tuple[int, list[int]]]:
        """(document index, ``[EOS] + tokens``) for this split's documents from ``start``."""
        want_val = self.split == "validation"
        pending: list[tuple[int, str]] = []
        for index, text in enumerate(self._documents(start), start):
            if is_validation(index, self.val_fraction) == want_val:
                pending.append((index, text))
            if len(pending) >= self.encode_batch:
                yield from self._encode(pending)
                pending = []
        yield from self._encode(pending)

    def _encode(self, pending: list[tuple[int, str]]) -> Iterator[tuple[int, list[int]]]:
        if not pending:
            return
        ids = self.tokenizer([t for _, t in pending], add_special_tokens=False)["input_ids"]
        for (index, _), tokens in zip(pending, ids):
            yield index, [self.eos_id, *tokens]

    def __iter__(self) -> Iterator[Int[Tensor, " n_ctx"]]:
        n, ws = self.n_ctx, self.world_size
        block: list[int] = []
        mine: list[int] | None = None
        epoch, start, skip = self._epoch, self._doc_index, self._token_offset
        blocks = self._blocks
        while True:
            n_docs = n_tokens = 0
            for index, tokens in self._tokenized(start):
                n_docs += 1
                n_tokens += len(tokens)
                off = skip if index == start else 0
                while off < len(tokens):
                    take = min(n - len(block), len(tokens) - off)
                    block.extend(tokens[off : off + take])
                    off += take
                    if len(block) < n:
                        break
                    if blocks % ws == self.rank:
                        mine = block
                    block = []
                    blocks += 1
                    if blocks % ws == 0:  # a round is complete: commit, then hand out
                        done = off == len(tokens)
                        self._epoch, self._blocks = epoch, blocks
                        self._doc_index, self._token_offset = (index + 1, 0) if done else (index, off)
                        out, mine = mine, None
                        yield torch.tensor(out, dtype=torch.long)
            if n_docs == 0 and start == 0:
                raise ValueError(
                    f"the {self.split!r} split of {self._name()} has no documents "
                    f"(val_fraction={self.val_fraction}); use a larger corpus or another val_fraction"
                )
            if self._blocks == 0 and epoch == self._epoch and start == 0:
                raise ValueError(
                    f"the {self.split!r} split of {self._name()} has {n_tokens} tokens ({n_docs} documents), "
                    f"fewer than world_size={ws} block(s) of n_ctx={n}; use a larger corpus, a smaller "
                    "n_ctx, fewer processes, or a larger val_fraction for validation"
                )
            if not self.repeat:
                return
            epoch, start, skip = epoch + 1, 0, 0

    def _name(self) -> str:
        if isinstance(self.source, (str, os.PathLike)):
            return repr(os.fspath(self.source))
        return f"the given {type(self.source).__name__}"

    def batches(self, batch_size: int, drop_last: bool = True) -> Iterator[Int[Tensor, "batch n_ctx"]]:
        """Stack consecutive blocks into batches.

        Args:
            batch_size: blocks per batch (per rank).
            drop_last: drop a final batch with fewer than ``batch_size`` blocks.

        Yields:
            LongTensors of shape ``[batch_size, n_ctx]``.

        Raises:
            ValueError: if ``batch_size`` is not positive.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        buf: list[Tensor] = []
        for block in self:
            buf.append(block)
            if len(buf) == batch_size:
                yield torch.stack(buf)
                buf = []
        if buf and not drop_last:
            yield torch.stack(buf)


def unigram_entropy(
    stream_or_tokens: Tensor | Iterable[Tensor], d_vocab: int, max_tokens: int | None = 1_000_000
) -> float:
    """Entropy of the unigram token distribution, in nats per token.

    A model that ignores context cannot beat it, so validation loss far below it means
    the model uses context. It is a plug-in estimate (slightly low for small samples).

    Args:
        stream_or_tokens: token ids (a tensor of any shape) or an iterable of them (a
            ``TokenBlockStream``, whose position is left unchanged, or batches).
        d_vocab: vocabulary size.
        max_tokens: stop reading an iterable after this many tokens (``None``: all).

    Returns:
        ``-sum p log p`` over the token frequencies.

    Raises:
        ValueError: if there are no tokens or an id is outside ``[0, d_vocab)``.
    """
    counts = torch.zeros(d_vocab, dtype=torch.long)
    chunks: Iterable[Tensor]
    saved = stream_or_tokens.state_dict() if isinstance(stream_or_tokens, TokenBlockStream) else None
    chunks = [stream_or_tokens] if isinstance(stream_or_tokens, Tensor) else stream_or_tokens
    total = 0
    try:
        for chunk in chunks:
            flat = chunk.reshape(-1).long()
            if flat.numel() and (flat.min() < 0 or flat.max() >= d_vocab):
                raise ValueError(f"token ids must be in [0, {d_vocab}), found {int(flat.min())}..{int(flat.max())}")
            counts += torch.bincount(flat, minlength=d_vocab)
            total += flat.numel()
            if max_tokens is not None and total >= max_tokens and not isinstance(stream_or_tokens, Tensor):
                break
    finally:
        if saved is not None:
            stream_or_tokens.load_state_dict(saved)
    if total == 0:
        raise ValueError("unigram_entropy got no tokens")
    p = counts[counts > 0].double() / total
    return float(-(p * p.log()).sum())
