"""Stop means stop: a SIGTERM during the final validation ends the run within seconds, saved."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tl_bilinear

SCRIPT = Path(__file__).with_name("run_config.py")


def test_sigterm_during_the_final_validation_stops_with_a_loadable_checkpoint(tiny, tmp_path):
    # 40 validation batches of 2 s each: an ignored SIGTERM would keep the process 80 s in its validation
    cfg = tiny(out_dir=tmp_path / "run", total_tokens=3 * 4 * 32, eval_every=0, save_every=0, eval_batches=40)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg.to_json()))
    mark = tmp_path / "validating"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config), "--validation-mark", str(mark), "--validation-sleep", "2"],
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
    out, err = proc.communicate(timeout=60)  # generous: the validation alone would take 80 s more
    assert proc.returncode == 0, err[-3000:]
    assert "stopped before finishing the validation" in err and "stopped (signal) at step 3" in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"step": 3, "stop_reason": "signal", "val_loss": None}  # no validation loss was made up
    assert json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["step"] == 3
    tl_bilinear.load(tmp_path / "run")
