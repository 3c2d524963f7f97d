"""Tiny training set-ups: a real BPE tokenizer on the built-in corpus, a 1-layer model."""

import itertools

import pytest

from tl_bilinear.data import iter_documents, train_tokenizer
from tl_bilinear.train import TrainConfig

VOCAB = 320
N_CTX = 32


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A 320-token BPE tokenizer trained on 300 built-in stories, saved as a directory."""
    path = tmp_path_factory.mktemp("tokenizer")
    docs = list(itertools.islice(iter_documents("builtin", seed=0), 300))
    train_tokenizer(docs, vocab_size=VOCAB, out_dir=path, show_progress=False)
    return str(path)


def tiny_config(out_dir, tokenizer_dir, **overrides) -> TrainConfig:
    """A 1-layer d_model-32 bilinear model trained for 6 steps of 4 x 32 tokens on CPU."""
    fields = dict(
        out_dir=str(out_dir),
        preset="ts-micro",
        tokenizer=tokenizer_dir,
        model_overrides=dict(d_vocab=VOCAB, n_ctx=N_CTX, d_model=32, n_heads=2, n_layers=1),
        total_tokens=6 * 4 * N_CTX,
        batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        eval_every=3,
        eval_batches=2,
        save_every=3,
        log_every=1,
        progress=False,
        device="cpu",
        precision="fp32",
        num_threads=1,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


@pytest.fixture()
def tiny(tmp_path, tokenizer_dir):
    """``tiny(**overrides)`` -> a TrainConfig writing to a fresh directory."""
    counter = itertools.count()
    return lambda **kw: tiny_config(kw.pop("out_dir", tmp_path / f"run{next(counter)}"), tokenizer_dir, **kw)
