"""A tiny SwiGLU run on the built-in corpus to anneal (the trainer's tiny set-up, act_fn silu)."""

import itertools

import pytest

import tl_bilinear
from tests.train.conftest import VOCAB, tiny_config
from tl_bilinear.data import iter_documents, train_tokenizer
from tl_bilinear.train import train


@pytest.fixture(scope="session")
def corpus_tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus-tokenizer")
    docs = list(itertools.islice(iter_documents("builtin", seed=0), 300))
    train_tokenizer(docs, vocab_size=VOCAB, out_dir=path, show_progress=False)
    return str(path)


@pytest.fixture()
def anneal_config(tmp_path, corpus_tokenizer_dir):
    """``anneal_config(**overrides)``: tiny TrainConfig fields for an annealing run (no preset fields)."""
    counter = itertools.count()

    def make(**kw):
        fields = tiny_config(tmp_path / f"anneal{next(counter)}", corpus_tokenizer_dir).to_json()
        for name in ("preset", "model_overrides", "tokenizer"):
            fields.pop(name)
        return {**fields, **kw}

    return make


@pytest.fixture(scope="session")
def swiglu_run(tmp_path_factory, corpus_tokenizer_dir):
    """A run directory: a 1-layer d_model-32 SwiGLU model trained 6 steps on the built-in corpus."""
    out = tmp_path_factory.mktemp("swiglu")
    cfg = tiny_config(out, corpus_tokenizer_dir)
    cfg.model_overrides["act_fn"] = "silu"
    train(cfg)
    return out


@pytest.fixture(scope="session")
def swiglu_model(swiglu_run):
    """The SwiGLU run's model."""
    return tl_bilinear.load(swiglu_run)
