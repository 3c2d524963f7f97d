"""Baselines: same trainer, other MLPs, matched parameter counts."""

import math

import pytest

import tl_bilinear
from tl_bilinear.config import BASELINES, baseline_config, baseline_overrides
from tl_bilinear.train import Trainer


def mlp_params(model):
    return sum(p.numel() for n, p in model.named_parameters() if ".mlp.W_" in n)


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_match_parameters_and_train_a_step(name, tiny):
    reference = mlp_params(tl_bilinear.make_model("ts-tiny"))
    cfg = baseline_config(name, "ts-tiny")
    assert mlp_params(tl_bilinear.make_model(cfg)) == reference
    expected_act = {"bilinear": "bilinear", "reglu": "relu", "geglu": "gelu", "swiglu": "silu", "mlp-gelu": "gelu"}
    assert cfg.act_fn == expected_act[name] and cfg.gated_mlp == (name != "mlp-gelu")

    base = tiny().model_overrides
    trainer = Trainer(tiny(model_overrides=baseline_overrides(name, "ts-micro", **base)))
    assert trainer.model.cfg.act_fn == expected_act[name]
    batches = trainer._batches()
    first = trainer.train_step(batches)["loss"]
    second = trainer.train_step(batches)["loss"]
    assert math.isfinite(first) and math.isfinite(second)


def test_unknown_baseline():
    with pytest.raises(KeyError, match="swiglu"):
        baseline_overrides("gelu-mlp", "ts-tiny")
