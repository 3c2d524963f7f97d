"""A tiny SwiGLU run on the built-in corpus to anneal (the trainer's tiny set-up, act_fn silu, the shared tokenizer)."""

import itertools

import pytest

import tl_bilinear
from tests.helpers.runs import tiny_config
from tl_bilinear.train import train


@pytest.fixture()
def anneal_config(tmp_path, tokenizer_dir):
    """``anneal_config(**overrides)``: tiny TrainConfig fields for an annealing run (no preset fields)."""
    counter = itertools.count()

    def make(**kw):
        fields = tiny_config(tmp_path / f"anneal{next(counter)}", str(tokenizer_dir)).to_json()
        for name in ("preset", "model_overrides", "tokenizer"):
            fields.pop(name)
        return {**fields, **kw}

    return make


@pytest.fixture(scope="session")
def swiglu_run(tmp_path_factory, tokenizer_dir):
    """A run directory: a 1-layer d_model-32 SwiGLU model trained 6 steps on the built-in corpus."""
    out = tmp_path_factory.mktemp("swiglu")
    cfg = tiny_config(out, str(tokenizer_dir))
    cfg.model_overrides.update(act_fn="silu")
    train(cfg)
    return out


@pytest.fixture(scope="session")
def swiglu_model(swiglu_run):
    """The SwiGLU run's model."""
    return tl_bilinear.load(swiglu_run)
