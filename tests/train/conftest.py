"""The trainer's tests: a real BPE tokenizer on the built-in corpus and ``tiny`` run configs (tests/helpers/runs.py)."""

import itertools

import pytest

from tests.helpers.runs import tiny_config
from tl_bilinear.data import iter_documents, train_tokenizer

VOCAB = 320


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A 320-token BPE tokenizer trained on 300 built-in stories, saved as a directory."""
    path = tmp_path_factory.mktemp("tokenizer")
    docs = list(itertools.islice(iter_documents("builtin", seed=0), 300))
    train_tokenizer(docs, vocab_size=VOCAB, out_dir=path, show_progress=False)
    return str(path)


@pytest.fixture()
def tiny(tmp_path, tokenizer_dir):
    """``tiny(**overrides)`` -> a ``tiny_config`` TrainConfig writing to a fresh directory."""
    counter = itertools.count()
    return lambda **kw: tiny_config(kw.pop("out_dir", tmp_path / f"run{next(counter)}"), tokenizer_dir, **kw)
