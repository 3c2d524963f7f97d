"""A run killed with SIGKILL and resumed follows the uninterrupted loss trajectory exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tl_bilinear.train import Trainer, train

SCRIPT = Path(__file__).with_name("run_config.py")


def run(cfg_json: Path, *extra: str, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(cfg_json), *extra], env=env, stderr=subprocess.PIPE, text=True
    )
    if wait:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    return proc


def losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)), "metrics must hold each step once"
    return {r["step"]: r["loss"] for r in rows}


def checkpoint_step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoint" / "config.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_sigkill_then_resume_matches_uninterrupted_run(tiny, tmp_path, precision="fp32"):
    steps = 14
    configs = {}
    for name in ("straight", "killed"):
        cfg = tiny(
            out_dir=tmp_path / name, total_tokens=steps * 4 * 32, save_every=3, eval_every=5, precision=precision
        )
        configs[name] = tmp_path / f"{name}.json"
        configs[name].write_text(json.dumps(cfg.to_json()))

    victim = run(configs["killed"], "--hang-at-step", "7", wait=False)  # hangs after the step-6 checkpoint
    straight = run(configs["straight"], wait=False)
    deadline = time.time() + 300  # a generous wait, not a bound: the hang makes the kill step exact
    while checkpoint_step(tmp_path / "killed") < 6 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert checkpoint_step(tmp_path / "killed") == 6  # killed mid-run, after two checkpoints
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err[-3000:]

    run(configs["killed"], "--resume")
    expected, got = losses(tmp_path / "straight"), losses(tmp_path / "killed")
    assert sorted(got) == sorted(expected) == list(range(1, steps + 1))
    for step in expected:
        assert abs(got[step] - expected[step]) <= 1e-6, (step, got[step], expected[step])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_in_process_is_exact_with_accumulation(tiny, tmp_path, precision):
    """Ctrl-C a run (it saves), continue it in a new Trainer: the same losses."""
    kw = dict(total_tokens=9 * 4 * 32, save_every=3, grad_accum=2, precision=precision)
    train(tiny(out_dir=tmp_path / "straight", **kw))
    stopped = Trainer(tiny(out_dir=tmp_path / "resumed", **kw))

    fired = []

    def interrupt(resid, hook):
        if stopped.step == 3 and stopped.model.training and not fired:
            fired.append(True)  # one Ctrl-C (a second one would kill, by design)
            signal.raise_signal(signal.SIGINT)
        return resid

    stopped.model.add_hook("blocks.0.hook_resid_post", interrupt)
    assert stopped.run().interrupted
    assert checkpoint_step(tmp_path / "resumed") == 4
    train(tiny(out_dir=tmp_path / "resumed", **kw), resume=True)
    expected, got = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert sorted(got) == list(range(1, 10))
    assert all(abs(got[s] - expected[s]) <= 1e-6 for s in expected), (got, expected)
