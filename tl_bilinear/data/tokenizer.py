"""Tokenizers: train a byte-level BPE, save and load it where TransformerLens accepts it.

TransformerLens's ``set_tokenizer`` re-loads a tokenizer from its ``name_or_path``, so a
usable tokenizer must live in a directory (``save_pretrained`` format); everything here
returns tokenizers loaded from one. The single special token ``<|endoftext|>`` is the
BOS, EOS and padding token (documents are separated by it when packing).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tl_bilinear.compat import HookedTransformerConfig
from tl_bilinear.data.sources import END_OF_TEXT
from tl_bilinear.rundir import writing_into

logger = logging.getLogger(__name__)


def _fresh_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    logger.info("no out_dir given: tokenizer files go to %s", path)
    return path


def train_tokenizer(
    documents: Iterable[str],
    vocab_size: int = 4096,
    out_dir: str | os.PathLike | None = None,
    lowercase: bool = True,
    *,
    min_frequency: int = 2,
    max_documents: int | None = None,
    show_progress: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (any text encodes; no unknown token).

    Args:
        documents: training texts (e.g. ``iter_documents("builtin", limit=20_000)``).
        vocab_size: number of entries, ``<|endoftext|>`` included (the paper's
            TinyStories tokenizer has 4096).
        out_dir: directory to save it to; a new temporary directory if ``None`` (it is
            kept, since TransformerLens re-loads the tokenizer from it).
        lowercase: lowercase every text before tokenizing (the paper's TinyStories
            tokenizer did); stored in the tokenizer, so it also applies at use time.
        min_frequency: a merge must occur at least this often.
        max_documents: read at most this many documents (needed for endless sources
            such as ``"builtin"``).
        show_progress: show progress bars (documents read, merges).

    Returns:
        The tokenizer, loaded back from ``out_dir`` (``len(tok) == vocab_size`` unless
        the corpus is too small to fill the vocabulary).

    Raises:
        ValueError: if ``vocab_size`` is below 257 (256 bytes + ``<|endoftext|>``) or the
            documents are empty.
        FileExistsError: if ``out_dir`` is an existing file.
        RunLocked: if ``out_dir`` lies in a run another process is writing (the message
            names the run and the holder's pid); checked before the training.
    """
    if out_dir is not None:
        _directory(out_dir)  # before the training, not after it
    if vocab_size < 257:
        raise ValueError(f"vocab_size must be at least 257 (256 bytes + {END_OF_TEXT}), got {vocab_size}")
    lock = nullcontext() if out_dir is None else writing_into(out_dir, "tl_bilinear.train_tokenizer")
    with lock:  # from before the training: a second writer is refused at once
        fast = _train_bpe(documents, vocab_size, lowercase, min_frequency, max_documents, show_progress)
        return save_tokenizer(fast, out_dir if out_dir is not None else _fresh_dir("tl_bilinear_tokenizer_"))


def _train_bpe(
    documents: Iterable[str],
    vocab_size: int,
    lowercase: bool,
    min_frequency: int,
    max_documents: int | None,
    show_progress: bool,
) -> PreTrainedTokenizerFast:
    """``train_tokenizer``'s training, in memory (not yet loadable by TransformerLens)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    seen = [0]

    def feed() -> Iterator[str]:
        bar = tqdm(total=max_documents, desc="tokenizer: reading documents", unit="doc", disable=not show_progress)
        for doc in documents:
            if max_documents is not None and seen[0] >= max_documents:
                break
            seen[0] += 1
            bar.update()
            yield doc
        bar.close()

    tok.train_from_iterator(feed(), trainer=trainer)
    if seen[0] == 0:
        raise ValueError("train_tokenizer got no documents; pass a non-empty corpus")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT
    )


def _directory(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a Path, refused at once if it names an existing file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(
            f"{str(out)!r} is a file; a tokenizer is saved as a directory: give a new or existing one"
        )
    return out


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out_dir: str | os.PathLike) -> PreTrainedTokenizerBase:
    """Save ``tokenizer`` to ``out_dir`` (``save_pretrained`` format) and load it back.

    Args:
        tokenizer: a Hugging Face tokenizer.
        out_dir: the directory (created if needed).

    Returns:
        The tokenizer re-loaded from ``out_dir``; TransformerLens accepts it.

    Raises:
        FileExistsError: if ``out_dir`` is an existing file.
        RunLocked: if ``out_dir`` lies in a run another process is writing (``writing_into``).
    """
    out = _directory(out_dir)
    with writing_into(out, "tl_bilinear.save_tokenizer"):
        out.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(out))
    return AutoTokenizer.from_pretrained(str(out))


def load_tokenizer(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> PreTrainedTokenizerBase:
    """Load a tokenizer directory, or convert a SentencePiece ``.model`` file.

    Args:
        path: a directory in ``save_pretrained`` format (``tokenizer.json`` ...) or a
            SentencePiece model file (e.g. the Mixtral tokenizer's ``tokenizer.model``,
            used by the paper's FineWeb models; it is read as a Llama tokenizer).
        out_dir: where the converted ``.model`` is saved in ``save_pretrained`` format
            (default: a new temporary directory); ignored for a directory.

    Returns:
        The tokenizer, loaded from a directory, so TransformerLens accepts it.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` is neither a tokenizer directory nor a ``.model`` file.
        ImportError: if a ``.model`` file is given and ``sentencepiece`` is missing.
    """
    src = Path(path).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"tokenizer path {str(path)!r} does not exist (resolved: {src.absolute()})")
    if src.is_dir():
        if not any((src / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
            raise ValueError(
                f"{src} is not a tokenizer directory (no tokenizer.json / tokenizer_config.json / "
                "tokenizer.model); save one with save_tokenizer or train_tokenizer(out_dir=...)"
            )
        return AutoTokenizer.from_pretrained(str(src))
    if src.suffix != ".model":
        raise ValueError(f"unsupported tokenizer file {src}: give a tokenizer directory or a SentencePiece .model file")
    try:
        import sentencepiece  # noqa: F401
    except ImportError as err:
        raise ImportError("loading a SentencePiece .model needs `sentencepiece`: pip install sentencepiece") from err
    from transformers import LlamaTokenizer

    with tempfile.TemporaryDirectory(prefix="tl_bilinear_spm_") as tmp:
        shutil.copy(src, Path(tmp) / "tokenizer.model")
        tok = LlamaTokenizer.from_pretrained(tmp)
    return save_tokenizer(tok, out_dir if out_dir is not None else _fresh_dir("tl_bilinear_spm_"))


def check_vocab(tokenizer: PreTrainedTokenizerBase, cfg: HookedTransformerConfig) -> None:
    """Check that a tokenizer's vocabulary matches a model config.

    Args:
        tokenizer: the tokenizer.
        cfg: the model's config.

    Raises:
        ValueError: if ``len(tokenizer) != cfg.d_vocab``; the message gives both numbers
            and the fix.
    """
    n = len(tokenizer)
    if n != cfg.d_vocab:
        raise ValueError(
            f"tokenizer vocabulary size {n} != model d_vocab {cfg.d_vocab}; build the model with "
            f"d_vocab={n} (e.g. get_config(preset, d_vocab={n})) or train a tokenizer with "
            f"vocab_size={cfg.d_vocab}"
        )
