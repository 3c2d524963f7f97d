"""Schedules, weight-decay groups, config validation."""

import json

import pytest
import torch

import tl_bilinear
from tl_bilinear.train import TrainConfig, lr_at, make_optimizer, param_groups


def lrs(**kw):
    cfg = TrainConfig(lr=1.0, warmup_steps=10, total_tokens=110 * 16 * 128, batch_size=16, preset="ts-micro", **kw)
    assert cfg.max_steps == 110
    return [lr_at(s, cfg) for s in range(cfg.max_steps)]


def test_warmup_then_linear_decay():
    values = lrs(final_lr_frac=0.1)
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(values[:10], values[1:10]))  # rising warm-up
    decay = values[10:]
    diffs = [b - a for a, b in zip(decay, decay[1:])]
    assert all(d == pytest.approx(diffs[0]) for d in diffs) and diffs[0] < 0  # a straight line down
    assert values[-1] == pytest.approx(0.1)


def test_cosine_and_constant():
    values = lrs(schedule="cosine")
    assert values[10] == pytest.approx(1.0) and values[-1] == pytest.approx(0.0, abs=1e-12)
    assert values[60] == pytest.approx(0.5, abs=0.02)  # half-way down at half-way
    assert lrs(schedule="linear")[60] == pytest.approx(0.5, abs=0.02)
    assert set(lrs(schedule="constant")[10:]) == {1.0}


def test_weight_decay_groups():
    model = tl_bilinear.make_model("ts-micro", n_layers=2)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    for name in ("blocks.0.attn.W_Q", "blocks.1.mlp.W_gate", "blocks.1.mlp.W_in", "blocks.0.mlp.W_out", "unembed.W_U"):
        assert name in decay["names"]
    assert no_decay["names"] == ["embed.W_E"]
    everything = set(decay["names"]) | set(no_decay["names"])
    assert not any(".b_" in n for n in everything)  # frozen biases: not optimised at all
    opt = make_optimizer(model, TrainConfig(preset="ts-micro"))
    assert opt.defaults["betas"] == (0.9, 0.95)


def test_learned_positions_are_not_decayed():
    """W_pos (non-rotary configs) is an embedding lookup table, like W_E."""
    model = tl_bilinear.make_model("ts-micro", n_layers=1, positional_embedding_type="standard")
    decay, no_decay = param_groups(model, 0.1)
    assert no_decay["names"] == ["embed.W_E", "pos_embed.W_pos"]
    assert "pos_embed.W_pos" not in decay["names"]


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("batch_size", 0, "batch_size"),
        ("schedule", "step", "schedule"),
        ("precision", "fp16", "precision"),
        ("lr", -1.0, "lr"),
        ("grad_accum", 3, "divisible"),
        ("beta2", 1.0, "beta2"),
        ("eps", 0.0, "eps"),
        ("num_threads", 0, "num_threads"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_config_json_round_trip():
    cfg = TrainConfig(preset="ts-micro", model_overrides={"act_fn": "silu"}, lr=2e-3)
    again = TrainConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again == cfg and not again.differences(cfg)
    assert TrainConfig(lr=1e-3).differences(TrainConfig(lr=2e-3, out_dir="x")) == {"lr": (1e-3, 2e-3)}
    with pytest.raises(ValueError, match="unknown TrainConfig"):
        TrainConfig.from_json({"learning_rate": 1})


def test_lr_is_applied_to_the_optimizer(tiny):
    from tl_bilinear.train import Trainer

    trainer = Trainer(tiny())
    batches = trainer._batches()
    seen = []
    for _ in range(3):
        out = trainer.train_step(batches)
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        assert out["lr"] == seen[-1]
    assert seen == [lr_at(s, trainer.cfg) for s in range(3)]
    assert torch.isfinite(torch.tensor(out["grad_norm"]))
