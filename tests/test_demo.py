"""The main job's decisions (budget shares, with an injected clock) and its stops in any stage."""

import logging
import signal

import pytest
import torch

import tl_bilinear
from tests.helpers.clock import FakeClock
from tl_bilinear.demo import POST_TRAINING_S, job, run_demo
from tl_bilinear.train import Deadline, JobStopped


def test_training_gets_what_the_later_stages_leave():
    assert job.training_budget_s(400.0, small=False) == 400.0 - POST_TRAINING_S
    assert job.training_budget_s(50.0, small=False) == 30.0  # a floor: some training always happens
    assert job.training_budget_s(400.0, small=True) is None  # the smoke test trains a fixed number of steps


def test_the_report_scans_what_fits_in_the_time_left():
    clock = FakeClock()
    deadline = Deadline(100.0, clock)
    assert job.report_batches(deadline, batch_s=1.0, available=7) == 7  # 60 s would fit 60: as many as were read
    assert job.report_batches(deadline, batch_s=10.0, available=7) == 6
    clock.advance(95.0)
    assert job.report_batches(deadline, batch_s=1.0, available=7) == 3  # 60% of 5 s
    clock.advance(50.0)
    assert job.report_batches(deadline, batch_s=1.0, available=7) == 1  # past the deadline: still a report


class SlowStream:
    """Validation batches of 32 x 8 tokens, each costing ``seconds`` on the injected clock."""

    def __init__(self, clock, seconds):
        self.clock, self.seconds = clock, seconds

    def batches(self, n):
        while True:
            self.clock.advance(self.seconds)
            yield torch.zeros(n, 8, dtype=torch.long)


def test_validation_tokens_read_stop_at_the_wanted_count_or_a_fifth_of_the_time_left():
    clock = FakeClock()
    deadline = Deadline(100.0, clock)
    assert len(job.validation_blocks(SlowStream(clock, 0.1), deadline, want_tokens=1000)) == 4  # 4 x 256 >= 1000
    clock.now = 0.0
    assert len(job.validation_blocks(SlowStream(clock, 3.0), deadline, want_tokens=10**6)) == 7  # 21 s > 20 s
    clock.now = 200.0
    assert len(job.validation_blocks(SlowStream(clock, 3.0), deadline, want_tokens=10**6)) == 1


def stop_when_called(monkeypatch, target, name, signum):
    """Make ``target.name`` send this process ``signum`` when called (as a user's Ctrl-C/kill would)."""
    real = getattr(target, name)

    def send_then_call(*args, **kwargs):
        signal.raise_signal(signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, send_then_call)


def test_sigterm_in_the_tokenizer_stage_stops_the_job_saying_nothing_was_saved(tmp_path, monkeypatch, caplog):
    import tl_bilinear.data

    stop_when_called(monkeypatch, tl_bilinear.data, "train_tokenizer", signal.SIGTERM)
    with caplog.at_level(logging.WARNING), pytest.raises(JobStopped, match="SIGTERM"):
        run_demo(tmp_path / "demo", small=True, progress=False)
    assert "demo stopped during tokenizer: no checkpoint was saved yet" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back


def test_ctrl_c_in_the_report_stage_stops_the_job_with_the_checkpoint_complete(tmp_path, monkeypatch, caplog):
    stop_when_called(monkeypatch, job, "write_report", signal.SIGINT)
    with caplog.at_level(logging.WARNING), pytest.raises(JobStopped):
        run_demo(tmp_path / "demo", small=True, progress=False)
    assert "demo stopped during report: the checkpoint" in caplog.text and "(step 40) is complete" in caplog.text
    assert not (tmp_path / "demo" / "report.html").exists()
    assert tl_bilinear.load(tmp_path / "demo").cfg.n_ctx == 64  # what was saved loads
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(("bf16_gflops", "expected"), [(0.9, "fp32"), (817.0, "bf16")])
def test_auto_precision_picks_the_demo_model_for_the_measured_precision(tmp_path, monkeypatch, bf16_gflops, expected):
    from tl_bilinear.train import PrecisionRates
    from tl_bilinear.train import precision as precision_module

    monkeypatch.setattr(precision_module, "gemm_rates", lambda *a, **k: PrecisionRates("GEMM", 56.0, bf16_gflops, "x"))
    monkeypatch.setattr(precision_module, "step_rates", lambda *a, **k: PrecisionRates("step", 1.0, 2.0, "x"))
    cfg = job._config(tmp_path, False, None, "auto")
    assert (cfg.precision, cfg.preset) == (expected, job.DEMO_PRESETS[expected])
    assert job._config(tmp_path, False, "ts-tiny", "auto").preset == "ts-tiny"  # the user's preset wins
