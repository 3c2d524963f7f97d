"""The training loop: it learns, biases stay zero, checkpoints, errors that lose nothing."""

import json
import math

import pytest
import torch

import tl_bilinear
from tests.helpers.clock import FakeClock, charge
from tl_bilinear.data import TokenBlockStream
from tl_bilinear.train import (
    ResumeMismatch,
    TimeBudget,
    Trainer,
    TrainingDiverged,
    restore_stock_forwards,
    train,
)
from tl_bilinear.train import state as train_state
from tl_bilinear.train.budget import final_validation_batches


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_training_learns_and_biases_stay_zero(tiny, tmp_path):
    cfg = tiny(out_dir=tmp_path / "run", total_tokens=30 * 4 * 32, lr=1e-2, eval_every=10)
    trainer = Trainer(cfg)
    val_before = trainer.validation_loss()
    result = trainer.run()
    assert result.step == 30 and not result.interrupted
    assert result.val_loss < val_before - 1.0, (val_before, result.val_loss)  # it learns
    assert all(p.abs().max() == 0 for n, p in trainer.model.named_parameters() if n.rsplit(".", 1)[-1].startswith("b_"))
    rows = metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= set(rows[0])
    assert [r["step"] for r in rows if "val_loss" in r] == [10, 20, 30]


def test_checkpoint_loads_as_identical_model_with_tokenizer(tiny, tmp_path):
    cfg = tiny(out_dir=tmp_path / "run")
    trainer = Trainer(cfg)
    trainer.run()
    loaded = tl_bilinear.load(tmp_path / "run")
    tokens = torch.randint(0, 320, (2, 32))
    torch.testing.assert_close(loaded(tokens), trainer.model.eval()(tokens), rtol=0, atol=1e-5)  # fast vs stock
    restore_stock_forwards(trainer.model)
    torch.testing.assert_close(loaded(tokens), trainer.model(tokens), rtol=0, atol=0)
    assert loaded.tokenizer.get_vocab() == trainer.tokenizer.get_vocab()
    text = "once upon a time there was a happy cat."
    assert loaded.to_tokens(text)[0, 1:].tolist() == trainer.tokenizer.encode(text, add_special_tokens=False)
    meta = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert meta["train_config"]["lr"] == cfg.lr and meta["step"] == 6 and meta["preset"] == "ts-micro"


def test_failed_checkpoint_write_keeps_previous(tiny, tmp_path, monkeypatch):
    cfg = tiny(out_dir=tmp_path / "run", total_tokens=12 * 4 * 32, save_every=3)
    trainer = Trainer(cfg)
    real_write_state = train_state.write_state

    def write_then_fail(directory, *args, **kwargs):
        real_write_state(directory, *args, **kwargs)  # the new files are (partly) there
        if trainer.step >= 6:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_state, "write_state", write_then_fail)
    with pytest.raises(OSError, match="No space"):
        trainer.run()
    assert trainer.step == 6
    meta = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert meta["step"] == 3  # the previous checkpoint, intact
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint", "metrics.jsonl"]
    tl_bilinear.load(tmp_path / "run")
    monkeypatch.undo()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 7, "lo')  # a line cut short by the failure
    result = train(cfg, resume=True)  # and it resumes from it
    assert result.step == 12
    assert [r["step"] for r in metrics(tmp_path / "run")] == list(range(1, 13))


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(tiny, tmp_path):
    cfg = tiny(out_dir=tmp_path / "run", total_tokens=12 * 4 * 32, save_every=3)
    trainer = Trainer(cfg)
    good = {}

    def poison(resid, hook):
        if trainer.step >= 4:  # from the 5th step on
            return resid * float("nan")
        return resid

    trainer.model.add_hook("blocks.0.hook_resid_post", poison)
    with pytest.raises(TrainingDiverged, match=r"nan at step 5.*step 3"):
        trainer.run()
    trainer.model.reset_hooks()
    loaded = tl_bilinear.load(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["step"] == 3
    good = {n: p for n, p in loaded.named_parameters()}
    assert all(torch.isfinite(p).all() for p in good.values())
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # no NaN update happened


def test_resume_with_a_different_config_is_refused(tiny, tmp_path):
    cfg = tiny(out_dir=tmp_path / "run")
    train(cfg)
    with pytest.raises(ResumeMismatch, match=r"lr: saved 0.003, now 0.01"):
        train(tiny(out_dir=tmp_path / "run", lr=1e-2), resume=True)
    bigger = tiny(out_dir=tmp_path / "run", model_overrides={**cfg.model_overrides, "d_model": 64})
    with pytest.raises(ResumeMismatch, match="model_overrides"):
        train(bigger, resume=True)
    with pytest.raises(FileExistsError, match="already holds a run: checkpoint"):
        train(cfg)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        train(tiny(out_dir=tmp_path / "empty"), resume=True)
    tl_bilinear.save(tl_bilinear.make_model("ts-micro"), tmp_path / "saved" / "checkpoint")  # no training state
    with pytest.raises(ResumeMismatch, match="no training config"):
        train(tiny(out_dir=tmp_path / "saved"), resume=True)
    result = train(tiny(out_dir=tmp_path / "run", eval_every=2), resume=True)  # logging fields may change
    assert result.step == 6


def test_tokenizer_vocab_mismatch_is_a_clear_error(tiny):
    cfg = tiny(model_overrides=dict(d_vocab=4096, n_ctx=32, d_model=32, n_heads=2, n_layers=1))
    with pytest.raises(ValueError, match=r"320.*4096"):
        Trainer(cfg)


def test_grad_accumulation_matches_one_big_batch(tiny):
    one = Trainer(tiny(batch_size=4, grad_accum=1, num_threads=1))
    two = Trainer(tiny(batch_size=4, grad_accum=2, num_threads=1))
    b1, b2 = one._batches(), two._batches()
    for _ in range(3):
        l1, l2 = one.train_step(b1)["loss"], two.train_step(b2)["loss"]
        assert l1 == pytest.approx(l2, abs=1e-5)
    torch.testing.assert_close(one.model.W_U, two.model.W_U, atol=1e-5, rtol=1e-4)


def test_bf16_autocast_on_cpu_trains_stably(tiny):
    result = train(tiny(precision="bf16", total_tokens=20 * 4 * 32, lr=1e-2))
    assert math.isfinite(result.val_loss) and result.val_loss < math.log(320) - 1.0


def test_ctrl_c_saves_and_stops(tiny, tmp_path):
    import signal

    cfg = tiny(out_dir=tmp_path / "run", total_tokens=12 * 4 * 32, save_every=0)
    trainer = Trainer(cfg)

    def interrupt(resid, hook):
        if trainer.step == 4 and trainer.model.training:
            signal.raise_signal(signal.SIGINT)
        return resid

    trainer.model.add_hook("blocks.0.hook_resid_post", interrupt)
    result = trainer.run()
    assert result.interrupted and result.step == 5
    assert json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_data_stream_is_the_packed_builtin_corpus(tiny):
    trainer = Trainer(tiny())
    assert isinstance(trainer.train_stream, TokenBlockStream)
    block = next(trainer._batches())
    assert block.shape == (4, 32) and block.dtype == torch.long and int(block.max()) < 320


def test_time_budget_plans_the_steps_from_the_measured_step_time(tiny, tmp_path):
    budget, dt = 1.5, 0.05  # seconds: an injected clock charges dt per training step
    cfg = tiny(
        out_dir=tmp_path / "run",
        total_tokens=1000 * 4 * 32,
        time_budget_s=budget,
        warmup_steps=8,
        eval_every=0,
        save_every=0,
    )
    clock = FakeClock()
    trainer = Trainer(cfg, clock=clock)
    charge(trainer, clock, lambda step: dt)
    result = trainer.run()
    expected = 8 + int((0.9 * budget - 8 * dt) / dt)  # planned at step 8: 10% of the budget kept in reserve
    assert abs(result.max_steps - expected) <= 1, (result.max_steps, expected)
    assert result.step == result.max_steps and result.stop_reason is None and not result.interrupted
    saved = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["train_config"]
    assert saved["total_tokens"] == result.max_steps * 4 * 32  # the plan is recorded: a resume continues it
    assert cfg.total_tokens == 1000 * 4 * 32  # the caller's config is not modified


def test_time_budget_overrun_stops_and_shrinks_the_final_validation(tiny, tmp_path, caplog):
    kw = dict(total_tokens=1000 * 4 * 32, time_budget_s=1.0, warmup_steps=5, eval_every=0, save_every=0)
    clock = FakeClock()
    slower = Trainer(tiny(out_dir=tmp_path / "run", eval_batches=4, **kw), clock=clock)
    charge(slower, clock, lambda step: 0.01 if step < 5 else 0.1)  # planned while fast, then 10x slower
    with caplog.at_level("INFO"):
        result = slower.run()
    assert result.stop_reason == "time budget" and result.interrupted
    assert 17 <= result.step <= 18 < result.max_steps  # the first step past 1.25 x 1.0 s: 0.05 + 13 x 0.1
    assert "the final validation uses 1 of 4 batches" in caplog.text  # nothing left of the budget
    assert result.val_loss is not None
    assert json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["step"] == result.step
    again = Trainer(tiny(out_dir=tmp_path / "run", eval_batches=4, **kw), resume=True)
    assert (again.step, again.max_steps) == (result.step, result.max_steps)  # the same config resumes the plan


def test_final_validation_uses_what_the_budget_leaves():
    clock = FakeClock()
    budget = TimeBudget(100.0, warmup_steps=5, clock=clock)
    budget.per_step = 3.0  # a measured step: a validation batch (a forward) is estimated at 1 s
    assert final_validation_batches(budget, 64, None) == 64  # 100 s left: all fit
    clock.advance(93.0)
    assert final_validation_batches(budget, 64, None) == 7  # 7 s left
    assert final_validation_batches(budget, 64, None, micro_batches_per_step=3) == 21  # a step is 3 forwards
    assert final_validation_batches(budget, 64, 0.5) == 14  # a measured validation batch wins over the estimate
    clock.advance(10.0)
    assert final_validation_batches(budget, 64, 0.5) == 1  # past the budget: still one batch
    assert final_validation_batches(None, 64, None) == 64  # no budget: all of them
