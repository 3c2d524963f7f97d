"""Nothing saved is lost: a run directory has one writer, and existing runs are never written over unasked.

Two real ``tl-bilinear train`` processes contend for one directory; a reader loads the run in a loop
while it saves every step. Every data-loss case asserts the existing files are byte-identical after.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import tl_bilinear
from tests.helpers.cli import one_clear_line, run_main
from tests.helpers.runs import (
    TOKENS_PER_STEP,
    copy_run,
    lock_elsewhere,
    lock_held_elsewhere,
    make_run,
    snapshot,
    tiny_config,
    tiny_train_flags,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tokenizer_dir):
    return make_run(tmp_path_factory.mktemp("good") / "run", tokenizer_dir)


def remove_tree(path):
    for child in path.iterdir():
        remove_tree(child) if child.is_dir() else child.unlink()
    path.rmdir()


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda r: (r / "checkpoint" / "config.json").unlink(), "a damaged checkpoint/ (no config.json"),
        (lambda r: None, "checkpoint/ (step 3)"),
        (lambda r: remove_tree(r / "checkpoint"), "metrics.jsonl"),
        (lambda r: (r / "checkpoint").rename(r / ".checkpoint.old"), ".checkpoint.old/"),
    ],
)
def test_train_refuses_a_directory_holding_a_run(damage, needle, run, tmp_path, tokenizer_dir, capsys):
    target = copy_run(run, tmp_path / "run")
    damage(target)
    before = snapshot(target)
    status, err = run_main("train", "--out", target, *tiny_train_flags(tokenizer_dir), "--tokens", 384, capsys=capsys)
    one_clear_line(status, err, needle, "--resume", "a new --out", "--overwrite", "Nothing was changed")
    assert snapshot(target) == before


def test_train_refuses_a_lone_tokenizer_folder_and_overwrite_replaces_the_run(run, tmp_path, tokenizer_dir, capsys):
    lone = tmp_path / "lone"
    copy_run(run / "checkpoint" / "tokenizer", lone / "tokenizer")
    flags = [*tiny_train_flags(tokenizer_dir), "--tokens", 256, "--log-every", 1]
    one_clear_line(*run_main("train", "--out", lone, *flags, capsys=capsys), "tokenizer/")
    target = copy_run(run, tmp_path / "run")
    old_weights = (target / "checkpoint" / "model.safetensors").read_bytes()
    assert run_main("train", "--out", target, *flags, "--overwrite", capsys=capsys)[0] == 0
    assert json.loads((target / "checkpoint" / "config.json").read_text())["step"] == 2
    assert (target / "checkpoint" / "model.safetensors").read_bytes() != old_weights
    assert [json.loads(line)["step"] for line in (target / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert not (target / ".tl-bilinear.lock").exists()


def test_other_outputs_are_never_written_over(run, tmp_path, capsys):
    target = copy_run(run, tmp_path / "run")
    before = snapshot(target)
    tok = target / "checkpoint" / "tokenizer"
    status, err = run_main("tokenizer", "--out", tok, "--vocab-size", 280, "--docs", 100, capsys=capsys)
    one_clear_line(status, err, str(tok), "not empty", "--overwrite")
    status, err = run_main("analyze", target, "--layer", 0, "--token", "a", "--out", target, capsys=capsys)
    one_clear_line(status, err, "is a directory", "report.html")
    status, err = run_main("train", "--out", target / "metrics.jsonl", capsys=capsys)
    one_clear_line(status, err, "metrics.jsonl", "is a file")
    status, err = run_main("demo", "--out", target, "--small", "--no-progress", capsys=capsys)
    one_clear_line(status, err, "already holds a run", "another --out")
    assert snapshot(target) == before


def test_a_stale_lock_is_taken_over_and_locks_nest(tmp_path, caplog):
    from tl_bilinear.rundir import LOCK_FILE, run_lock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "command": "killed", "started": 0}))
    with run_lock(tmp_path, "test"), run_lock(tmp_path, "nested"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert "stale lock of pid" in caplog.text
    assert not (tmp_path / LOCK_FILE).exists()
    with run_lock(tmp_path / "new", "test"):
        pass
    assert not (tmp_path / "new").exists()  # created for the lock, left empty: removed


@pytest.mark.parametrize("previous", ["", "dead writer"])
def test_a_contender_arriving_before_the_holder_records_itself_still_names_it(previous, tmp_path):
    import fcntl
    import socket
    import threading

    from tl_bilinear.rundir import LOCK_FILE, RunLocked, run_lock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / LOCK_FILE
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}) if previous else "")
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, the record not yet written: a writer starting up
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": "train", "started": time.time()}
    late = threading.Timer(0.3, lambda: (os.ftruncate(fd, 0), os.pwrite(fd, json.dumps(record).encode(), 0)))
    late.start()
    try:
        with pytest.raises(RunLocked, match=f"being written by pid {os.getpid()} \\(train, since"):
            with run_lock(tmp_path, "contender"):
                pass
    finally:
        late.join()
        os.close(fd)


def test_library_writers_take_the_run_lock_and_nest_in_their_own(run, tmp_path):
    from tl_bilinear.data import train_tokenizer
    from tl_bilinear.rundir import LOCK_FILE, RunLocked, run_lock

    target = copy_run(run, tmp_path / "run")
    model, docs = tl_bilinear.load(target), ["once upon a time there was a dog"] * 20
    with lock_held_elsewhere(target) as holder:
        before = snapshot(target)
        for write in (
            lambda: tl_bilinear.save(model, target / "checkpoint"),
            lambda: train_tokenizer(docs, vocab_size=260, out_dir=target / "checkpoint" / "tokenizer"),
        ):
            with pytest.raises(RunLocked) as refused:
                write()
            assert str(target) in str(refused.value) and f"pid {holder}" in str(refused.value)
        assert snapshot(target) == before
    with run_lock(target, "test"):  # a caller holding the lock (the trainer, the demo) writes through it
        tl_bilinear.save(model, target / "checkpoint", note="nested")
        train_tokenizer(docs, vocab_size=260, out_dir=target / "tokenizer", show_progress=False)
        assert json.loads((target / LOCK_FILE).read_text())["pid"] == os.getpid()  # still held, still ours
    assert json.loads((target / "checkpoint" / "config.json").read_text())["note"] == "nested"
    assert not (target / LOCK_FILE).exists()
    alone = tl_bilinear.save(model, tmp_path / "alone")  # in no run: it locks itself, swapped away by the save
    assert not (alone / LOCK_FILE).exists() and tl_bilinear.load(alone).cfg.d_model == model.cfg.d_model


def test_every_directory_writer_takes_the_lock_of_the_run_it_writes_into(run, tmp_path, capsys):
    from tl_bilinear.hf import to_hf
    from tl_bilinear.image import BilinearClassifier, ClassifierConfig, save_classifier
    from tl_bilinear.rundir import RunLocked
    from tl_bilinear.sae import SAEConfig, TopKSAE, save_sae

    target = copy_run(run, tmp_path / "run")
    model = tl_bilinear.load(target)
    sae = TopKSAE(SAEConfig(d_in=model.cfg.d_model, d_sae=8, k=2))
    classifier = BilinearClassifier(ClassifierConfig(image_shape=(4, 4), n_classes=3, d_model=8))
    with lock_held_elsewhere(target) as holder:
        before = snapshot(target)
        for write in (
            lambda: to_hf(model, target / "hf"),
            lambda: save_sae(sae, target / "sae"),
            lambda: save_classifier(classifier, target / "classifier"),
        ):
            with pytest.raises(RunLocked, match=f"pid {holder} "):
                write()
        one_clear_line(*run_main("export", target, "--out", target / "hf", capsys=capsys), f"pid {holder} ")
        assert snapshot(target) == before


def test_a_whole_run_is_never_replaced_and_a_lock_never_leaves_its_directory(run, tmp_path, capsys):
    from tl_bilinear.hf import to_hf
    from tl_bilinear.rundir import LOCK_FILE, run_lock

    target = copy_run(run, tmp_path / "run")
    model, before = tl_bilinear.load(target), snapshot(target)
    for write in (lambda: tl_bilinear.save(model, target), lambda: to_hf(model, target)):
        with pytest.raises(FileExistsError, match="holds a training run .*checkpoint/ \\(step 3\\).*/checkpoint"):
            write()
    one_clear_line(*run_main("export", target, "--out", target, capsys=capsys), "holds a training run", "Nothing")
    assert snapshot(target) == before
    alone = tmp_path / "alone"
    with run_lock(alone, "test"):  # a directory that holds its own lock, replaced twice as a whole
        held = (alone / LOCK_FILE).stat().st_ino
        for _ in range(2):
            tl_bilinear.save(model, alone)
            assert (alone / LOCK_FILE).stat().st_ino == held  # the lock followed the new directory
            assert lock_elsewhere(alone).startswith(f"refused: {str(alone)!r} is being written by pid {os.getpid()}")
    assert not (alone / LOCK_FILE).exists() and tl_bilinear.load(alone).cfg.d_model == model.cfg.d_model


def test_two_writers_of_one_run_contend_whatever_is_on_disk(run, tmp_path):
    from tl_bilinear.rundir import RunLocked, writing_into

    fresh = tmp_path / "fresh"  # nothing of a run exists yet: a save or a tokenizer into its parts comes first
    for part in (fresh / "checkpoint", fresh / "checkpoint" / "tokenizer", fresh / "tokenizer"):
        with writing_into(part, "first"):
            assert lock_elsewhere(fresh).startswith(f"refused: {str(fresh)!r}")  # e.g. `train --out fresh`
    starting = tmp_path / "starting"  # `train --out starting` has locked it and written nothing yet
    model = tl_bilinear.load(run)
    with lock_held_elsewhere(starting) as holder:
        for path in (starting / "checkpoint", starting / "new"):
            with pytest.raises(RunLocked, match=f"pid {holder} "):
                tl_bilinear.save(model, path)
        assert sorted(p.name for p in starting.iterdir()) == [".tl-bilinear.lock"]
    from tl_bilinear.rundir import run_of  # the rule: by name alone

    assert run_of(tmp_path / "r" / "checkpoint" / "tokenizer") == run_of(tmp_path / "r" / "metrics.jsonl")
    assert run_of(tmp_path / "r" / "checkpoint") == run_of(tmp_path / "r") == tmp_path / "r"
    assert run_of(tmp_path / "r" / "hf") == tmp_path / "r" / "hf"


def test_a_trainer_trains_its_tokenizer_inside_its_own_lock(tmp_path, tokenizer_dir):
    from tl_bilinear.train import train

    fields = dict(tokenizer=None, tokenizer_docs=300, total_tokens=TOKENS_PER_STEP, eval_every=0, save_every=0)
    result = train(tiny_config(tmp_path / "run", tokenizer_dir, eval_batches=1, **fields))  # train_tokenizer nests
    assert result.step == 1 and (tmp_path / "run" / "tokenizer" / "tokenizer.json").is_file()
    assert not (tmp_path / "run" / ".tl-bilinear.lock").exists()


def test_a_released_lock_removes_only_its_own_file(tmp_path):
    from tl_bilinear.rundir import LOCK_FILE, run_lock

    with run_lock(tmp_path, "test"):
        (tmp_path / LOCK_FILE).rename(tmp_path / "swapped-away")  # as a save into the locked directory does
        (tmp_path / LOCK_FILE).write_text("{}")  # a later writer's lock file
    assert (tmp_path / LOCK_FILE).read_text() == "{}"


def tl_process(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tl_bilinear.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition, *processes, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_writer_per_run_and_readers_never_disturb_a_save_every_step(tmp_path, tokenizer_dir, capsys):
    out = tmp_path / "run"
    flags = [*tiny_train_flags(tokenizer_dir), "--tokens", "10M", "--save-every", 1, "--log-every", 1]
    both = [tl_process("train", "--out", out, *flags, "--lr", lr) for lr in ("3e-3", "1e-3")]  # started together
    try:
        wait_for(lambda: any(p.poll() is not None for p in both), both[0], both[1])
        loser = next(p for p in both if p.poll() is not None)
        winner = both[1 - both.index(loser)]
        _, err = loser.communicate()
        one_clear_line(loser.returncode, err, f"pid {winner.pid}", "tl-bilinear train", "another --out")
        wait_for(lambda: (out / "checkpoint" / "config.json").exists(), winner)
        for _ in range(20):  # a reader loops while the trainer saves every step: it never disturbs the trainer
            tl_bilinear.load(out)
            time.sleep(0.05)
        for command in (  # other writers into the run are refused too, before any computation
            ["tokenizer", "--out", out / "tokenizer", "--overwrite"],
            ["analyze", out, "--layer", 0, "--token", "a", "--out", out / "report.html"],
        ):
            one_clear_line(*run_main(*command, capsys=capsys), f"pid {winner.pid}")
        assert winner.poll() is None  # still training
    finally:
        for process in both:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # saves and exits
    stdout, stderr = winner.communicate(timeout=120)
    assert winner.returncode == 130 and "interrupted" in stdout, stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 1  # one run's metrics, none mixed in
    assert json.loads((out / "checkpoint" / "config.json").read_text())["step"] == steps[-1]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "metrics.jsonl"]  # no lock, no temp left
