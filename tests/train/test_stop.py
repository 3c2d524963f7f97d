"""Stop means stop: a SIGTERM during the final validation ends the run within seconds, saved."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tl_bilinear

SCRIPT = Path(__file__).with_name("run_config.py")


def test_sigterm_during_the_final_validation_stops_with_a_loadable_checkpoint(tiny, tmp_path):
    # 40 validation batches of 4 s each: an ignored SIGTERM would keep the process 160 s in its validation
    cfg = tiny(out_dir=tmp_path / "run", total_tokens=3 * 4 * 32, eval_every=0, save_every=0, eval_batches=40)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg.to_json()))
    mark = tmp_path / "validating"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config), "--validation-mark", str(mark), "--validation-sleep", "4"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300  # a generous wait for the start, not a bound
    while not mark.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert mark.read_text() == "3"  # in the final validation, after the last step
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)  # generous (a busy machine); the validation alone takes 156 s more
    assert proc.returncode == 0, err[-3000:]
    assert "stopped before finishing the validation" in err and "stopped (signal) at step 3" in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"step": 3, "stop_reason": "signal", "val_loss": None}  # no validation loss was made up
    assert json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["step"] == 3
    tl_bilinear.load(tmp_path / "run")


def test_a_first_signal_is_a_request_and_a_second_one_acts_at_once():
    from tl_bilinear.train.stop import StopRequest

    with StopRequest() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested and stop.describe() == "SIGINT"  # noted: the run stops at its next safe point
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # Python's own handler again: at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
