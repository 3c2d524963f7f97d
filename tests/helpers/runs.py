"""Tiny real training runs: the one builder of their config (and CLI flags), and directory snapshots."""

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import AutoTokenizer

from tl_bilinear.train import TrainConfig, train

#: Every tiny run: a 1-layer d_model-32 bilinear model, steps of 4 x 32 tokens, on one CPU thread.
N_CTX = 32
BATCH = 4
TOKENS_PER_STEP = BATCH * N_CTX


@functools.lru_cache
def vocab_size(tokenizer_dir: str) -> int:
    """Every id of the tokenizer in ``tokenizer_dir`` (special tokens included): the model's d_vocab."""
    return len(AutoTokenizer.from_pretrained(tokenizer_dir))


def tiny_config(out_dir, tokenizer_dir, **overrides) -> TrainConfig:
    """A tiny run of 6 steps into ``out_dir`` (validated and saved every 3 steps); ``overrides`` replace fields."""
    fields = dict(
        out_dir=str(out_dir),
        preset="ts-micro",
        tokenizer=str(tokenizer_dir),
        model_overrides=dict(d_vocab=vocab_size(str(tokenizer_dir)), n_ctx=N_CTX, d_model=32, n_heads=2, n_layers=1),
        total_tokens=6 * TOKENS_PER_STEP,
        batch_size=BATCH,
        lr=3e-3,
        warmup_steps=2,
        eval_every=3,
        eval_batches=2,
        save_every=3,
        log_every=1,
        progress=False,
        device="cpu",
        precision="fp32",
        num_threads=1,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def tiny_train_flags(tokenizer_dir) -> list[str]:
    """``tl-bilinear train`` flags for ``tiny_config``'s model and optimiser (give --out and --tokens)."""
    cfg = tiny_config("unused", tokenizer_dir)
    return [
        *("--preset", cfg.preset, "--tokenizer", cfg.tokenizer, "--batch-size", str(cfg.batch_size)),
        *("--device", cfg.device, "--threads", str(cfg.num_threads), "--no-progress"),
        *("--warmup", str(cfg.warmup_steps), "--lr", str(cfg.lr), "--precision", cfg.precision),
        *[arg for key, value in cfg.model_overrides.items() for arg in ("--set", f"{key}={value}")],
    ]


def make_run(out: Path, tokenizer_dir, steps: int = 3) -> Path:
    """Train ``steps`` steps of ``tiny_config`` into ``out`` (one checkpoint at the end, metrics.jsonl)."""
    kw = dict(total_tokens=steps * TOKENS_PER_STEP, warmup_steps=1, eval_every=0, eval_batches=1, save_every=0)
    train(tiny_config(out, tokenizer_dir, **kw))
    return out


def copy_run(run: Path, to: Path) -> Path:
    """A private copy of a run to damage."""
    shutil.copytree(run, to)
    return to


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(Path(root).rglob("*"))}


#: A process holding a directory's run lock until its stdin closes; it loads ``rundir.py`` alone (stdlib only: fast).
_HOLD_LOCK = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("rundir", sys.argv[1])
rundir = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rundir)
try:
    with rundir.run_lock(sys.argv[2], "holder"):
        print("locked", flush=True)
        sys.stdin.read()
except rundir.RunLocked as refused:
    print("refused:", refused, flush=True)
"""


@contextmanager
def lock_held_elsewhere(directory) -> Iterator[int]:
    """Another process holds ``directory``'s writer lock (``rundir.run_lock``) in the block; yields its pid."""
    holder, answer = _try_lock(directory)
    try:
        assert answer == "locked\n", answer
        yield holder.pid
    finally:
        holder.communicate("")  # releases the lock


def lock_elsewhere(directory) -> str:
    """Whether another process can take ``directory``'s writer lock now: ``"locked"`` or ``"refused: <message>"``."""
    holder, answer = _try_lock(directory)
    holder.communicate("")
    return answer.strip()


def _try_lock(directory) -> tuple[subprocess.Popen, str]:
    import tl_bilinear.rundir

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, tl_bilinear.rundir.__file__, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return holder, holder.stdout.readline()
