"""Shared test set-up: no network, small deterministic models."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import signal  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import tl_bilinear  # noqa: E402
from tests.helpers.text import save_tokenizer, text_model_with  # noqa: E402


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Every test starts with Python's own Ctrl-C handler, as in a terminal.

    A process started in the background (``nohup … &``, some CI runners) inherits SIGINT
    ignored, and Python then leaves it ignored; the stop tests check that handlers are put
    back as they were, so they need the usual starting state.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def tiny_model():
    """A 2-layer bilinear HookedTransformer with random weights (float64 for exactness)."""
    return tl_bilinear.make_model(
        tl_bilinear.bilinear_config(n_layers=2, d_model=32, n_heads=4, n_ctx=32, d_vocab=97, dtype=torch.float64),
        seed=0,
    )


@pytest.fixture(scope="session")
def short_model():
    """The same shape with n_ctx 16, so that short token sequences already need several windows."""
    return tl_bilinear.make_model(
        tl_bilinear.bilinear_config(n_layers=2, d_model=32, n_heads=4, n_ctx=16, d_vocab=97, dtype=torch.float64),
        seed=0,
    )


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A directory holding a tiny trained BPE tokenizer (tests/helpers/text.py)."""
    return save_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def text_model(tokenizer_dir):
    """A 2-layer float64 bilinear model with that tokenizer."""
    return text_model_with(tokenizer_dir)
