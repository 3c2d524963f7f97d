"""Fixtures of the data tests: a small BPE tokenizer trained on the built-in corpus."""

import pytest

from tl_bilinear.data import iter_documents, train_tokenizer


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory):
    """Directory of a 512-entry tokenizer trained on 2,000 built-in stories."""
    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(iter_documents("builtin", limit=2000), vocab_size=512, out_dir=out, show_progress=False)
    return out


@pytest.fixture(scope="session")
def tok(tok_dir):
    from tl_bilinear.data import load_tokenizer

    return load_tokenizer(tok_dir)
