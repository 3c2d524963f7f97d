"""``run_demo``: the main job's stages in one wall-clock budget, and how a stop ends them.

Each stage is named while it runs (a Ctrl-C/SIGTERM logs which one it stopped, and what
was saved); the stages after training size their work from the time left: the final
validation's batches (the trainer), the sample length, the validation tokens read for
the unigram entropy and the report's contexts (see ``tl_bilinear.demo``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import torch

from tl_bilinear.demo.analysis import analyse, write_report
from tl_bilinear.demo.summary import DemoResult, print_summary
from tl_bilinear.rundir import refuse_existing_run, writing_into
from tl_bilinear.train import Deadline, JobStopped, TrainConfig, Trainer, TrainResult
from tl_bilinear.train.budget import Clock
from tl_bilinear.train.stop import raise_on_signals

logger = logging.getLogger(__name__)

DEMO_PRESET = "ts-small"
#: The demo's model for each training precision (a preset given by the user wins). In fp32
#: (bf16 emulated away, load ~13 on this 2-core EPYC, same budget) ts-tiny reached 2.60
#: nats/token on 4.2x the tokens where ts-small reached 4.48: a CPU without native bf16
#: trains the smaller model better in the budget.
DEMO_PRESETS = {"bf16": "ts-small", "fp32": "ts-tiny"}
PROMPTS = ("once upon a time", "one day, a little girl named", "the dog was not")
#: Seconds of the job's budget kept for the stages after training (measured: ~30 s quiet, ~75 s at load 14).
POST_TRAINING_S = 75.0
#: Validation sequences per report batch, and the most batches the report scans.
REPORT_BATCH, REPORT_BATCHES = 32, 8
#: Validation tokens for the unigram entropy (fewer when time is short).
ENTROPY_TOKENS = 200_000


def demo_config(
    out_dir: str | os.PathLike, *, small: bool = False, preset: str | None = None, **overrides: Any
) -> TrainConfig:
    """The demo's training settings (``small``: a seconds-long smoke-test version).

    Args:
        out_dir: the run directory.
        small: a tiny model and budget on one thread (used by the tests and ``TL_BILINEAR_DEMO_SMALL=1``).
        preset: the model preset (default ``DEMO_PRESET``, or ``"ts-micro"`` when ``small``).
        **overrides: TrainConfig fields (e.g. ``precision="fp32"``; the default is ``"auto"``).

    Returns:
        The TrainConfig (``total_tokens`` is the upper bound; the time budget may lower it).
    """
    if small:  # one thread: on a busy 2-core machine two made these tiny steps ~30x slower (measured)
        fields: dict[str, Any] = dict(
            preset=preset or "ts-micro",
            model_overrides={"d_vocab": 1024, "n_ctx": 64},
            tokenizer_docs=2000,
            total_tokens=40 * 16 * 64,
            batch_size=16,
            lr=5e-3,
            warmup_steps=5,
            eval_every=20,
            eval_batches=4,
            save_every=0,
            num_threads=1,
        )
    else:
        fields = dict(
            preset=preset or DEMO_PRESET,
            tokenizer_docs=20_000,
            total_tokens=6_000_000,
            batch_size=16,
            lr=2e-3,
            warmup_steps=50,
            eval_every=100,
            eval_batches=16,
            save_every=200,
        )
    fields.update(out_dir=str(out_dir), data="builtin", precision="auto", device="cpu", schedule="linear")
    fields.update(overrides)
    return TrainConfig(**fields)


#: What a refused ``--out`` suggests.
NEW_RUN_FIX = "the demo always starts a new one: pass another --out, or delete that directory"


def _check_new_run(out_dir: str | os.PathLike, minutes: float, preset: str | None) -> None:
    """Refuse a bad budget, an unknown preset, or an ``out_dir`` holding a run, before any work."""
    from tl_bilinear.config import get_preset

    if not minutes > 0:  # also NaN
        raise ValueError(f"--minutes {minutes} must be positive: the whole job's wall-clock budget (default 7)")
    if preset is not None:
        get_preset(preset)
    refuse_existing_run(out_dir, fix=NEW_RUN_FIX)  # before the lock creates the directory


def training_budget_s(remaining_s: float, *, small: bool) -> float | None:
    """The seconds training may take when ``remaining_s`` are left of the job (None: no limit).

    Training gets what is left after ``POST_TRAINING_S`` for the later stages (at least
    30 s); the small demo trains a fixed number of steps.

    Args:
        remaining_s: seconds left of the job after the tokenizer stage.
        small: the seconds-long demo.

    Returns:
        The training budget in seconds, or None.
    """
    return None if small else max(30.0, remaining_s - POST_TRAINING_S)


def report_batches(job: Deadline, batch_s: float, available: int) -> int:
    """Report batches that fit in 60% of the job's time left (1 to ``available``).

    Args:
        job: the job's deadline.
        batch_s: seconds to scan one batch (a measured forward of ``REPORT_BATCH`` sequences,
            times 1.5 for the activation caching).
        available: the validation batches read.

    Returns:
        The number of batches to scan.
    """
    return job.fits(batch_s, share=0.6, at_most=min(available, REPORT_BATCHES))


def validation_blocks(val_stream, job: Deadline, want_tokens: int = ENTROPY_TOKENS) -> list[torch.Tensor]:
    """``REPORT_BATCH``-sequence validation batches: ``want_tokens`` of them, or what 20% of the time left reads.

    The same blocks give the unigram entropy and the report's contexts (generating the
    validation split of the built-in corpus is the cost: 1% of its stories).

    Args:
        val_stream: the validation ``TokenBlockStream``.
        job: the job's deadline.
        want_tokens: the tokens wanted.

    Returns:
        At least one batch.
    """
    read = Deadline(0.2 * max(job.remaining(), 0.0), job.clock)
    blocks: list[torch.Tensor] = []
    for block in val_stream.batches(REPORT_BATCH):
        blocks.append(block)
        if sum(b.numel() for b in blocks) >= want_tokens or read.remaining() < 0:
            break
    return blocks


class _Stages:
    """The demo's stages, timed into ``seconds``, each named while it runs (for a stop)."""

    def __init__(self, clock: Clock):
        self.clock, self.seconds, self.current = clock, {}, "set-up"

    def run(self, name: str, fn, *args, **kwargs):
        self.current, start = name, self.clock()
        result = fn(*args, **kwargs)
        self.seconds[name] = self.clock() - start
        return result


def _config(out: Path, small: bool, preset: str | None, precision: str, **fields: Any) -> TrainConfig:
    """The run's config: ``"auto"`` measured once on ``DEMO_PRESET``, then the preset for that precision."""
    if precision == "auto" and not small:
        from tl_bilinear.model import make_model
        from tl_bilinear.train.precision import resolve_for_model

        precision, _ = resolve_for_model("auto", make_model(DEMO_PRESET, device="cpu"), sequences=2)
    if preset is None and not small:
        preset = DEMO_PRESETS.get(precision, DEMO_PRESET)
    return demo_config(out, small=small, preset=preset, precision=precision, **fields)


def _train(trainer: Trainer, job: Deadline, small: bool) -> TrainResult:
    result = trainer.run(time_budget_s=training_budget_s(job.remaining(), small=small))
    if result.stop_reason == "signal":
        raise JobStopped("a signal")
    return result


def _samples(model, job: Deadline, small: bool) -> list[str]:
    torch.manual_seed(0)
    new_tokens = 20 if small or job.remaining() < 30 else 80
    texts = (model.generate(p, max_new_tokens=new_tokens, temperature=0.7, verbose=False) for p in PROMPTS)
    return [text.replace("<|endoftext|>", "").strip() for text in texts]


def _held_out_stories() -> list[str]:
    from tl_bilinear.data import is_validation, iter_documents

    return [d for i, d in enumerate(itertools.islice(iter_documents("builtin"), 5000)) if is_validation(i)]


def _entropy(blocks: list[torch.Tensor], d_vocab: int) -> float:
    from tl_bilinear.data import unigram_entropy

    return unigram_entropy(torch.cat(blocks), d_vocab, max_tokens=None)


def _report_stage(model, text: str, blocks: list[torch.Tensor], path: Path, job: Deadline, small: bool):
    """Time one forward of a report batch, then write the report with the batches that fit."""
    start = job.clock()
    with torch.no_grad():
        model(blocks[0], return_type="logits")
    batches = min(2, len(blocks)) if small else report_batches(job, 1.5 * (job.clock() - start), len(blocks))
    report = write_report(model, model.cfg.n_layers - 1, text, blocks[:batches], path)
    return report, sum(len(b) for b in blocks[:batches])


def _saved(out: Path) -> str:
    """What a stopped job leaves: the checkpoint (and its step), or nothing."""
    from tl_bilinear.model import read_checkpoint_config

    try:
        step = read_checkpoint_config(out / "checkpoint").get("step")
    except (FileNotFoundError, ValueError):
        return "no checkpoint was saved yet"
    return f"the checkpoint {out / 'checkpoint'} (step {step}) is complete: tl_bilinear.load({str(out)!r})"


def run_demo(
    out_dir: str | os.PathLike = "runs/demo",
    *,
    minutes: float = 7.0,
    small: bool = False,
    preset: str | None = None,
    max_tokens: int | None = None,
    precision: str = "auto",
    stream: TextIO | None = None,
    progress: bool = True,
    clock: Clock = time.perf_counter,
) -> DemoResult:
    """Train, save, sample and analyse a bilinear model on the built-in corpus.

    Args:
        out_dir: the run directory (must not hold a checkpoint yet).
        minutes: wall-clock budget for the whole job (training gets what the other
            stages leave; the final validation and the report shrink to the time left).
        small: a seconds-long version (tiny model, small vocabulary, one thread).
        preset: the model preset (default: ``DEMO_PRESETS`` of the precision, or ``"ts-micro"``
            when ``small``).
        max_tokens: upper bound on training tokens (default: the config's).
        precision: ``"auto"`` (measured), ``"fp32"`` or ``"bf16"``.
        stream: where the report goes (default: stdout).
        progress: show progress bars.
        clock: seconds from an arbitrary origin (tests inject one).

    Returns:
        The ``DemoResult``.

    Raises:
        FileExistsError: if ``out_dir`` already holds anything of a run (even a damaged one).
        KeyError: for an unknown preset (the message lists the known ones).
        ValueError: if ``minutes`` is not positive or ``precision`` is unknown.
        JobStopped: after a Ctrl-C or SIGTERM (logged in one line: the stage, what was saved).
        RunLocked: if another process is writing into ``out_dir``.
    """
    _check_new_run(out_dir, minutes, preset)
    with writing_into(out_dir, "tl-bilinear demo"):
        refuse_existing_run(out_dir, fix=NEW_RUN_FIX)  # again, now that no other writer can change it
        return _run_locked(Path(out_dir), minutes, small, preset, max_tokens, precision, stream, progress, clock)


def _run_locked(out, minutes, small, preset, max_tokens, precision, stream, progress, clock) -> DemoResult:
    """``run_demo`` once the run directory's lock is held."""
    from tl_bilinear.data import TokenBlockStream
    from tl_bilinear.model import load

    job, stages = Deadline(minutes * 60, clock), _Stages(clock)
    extra: dict[str, Any] = {"total_tokens": max_tokens} if max_tokens else {}
    try:
        with raise_on_signals():
            cfg = stages.run("precision", _config, out, small, preset, precision, progress=progress, **extra)
            trainer = stages.run("tokenizer", Trainer, cfg, clock=clock)  # also the model
            result = stages.run("train", _train, trainer, job, small)
            model = load(out)
            samples = stages.run("samples", _samples, model, job, small)
            val_stream = TokenBlockStream("builtin", model.tokenizer, model.cfg.n_ctx, split="validation")
            blocks = stages.run("validation data", validation_blocks, val_stream, job)
            entropy = stages.run("entropy", _entropy, blocks, model.cfg.d_vocab)
            held_out = _held_out_stories()
            analysis = stages.run("analysis", analyse, model, model.cfg.n_layers - 1, held_out, out)
            report, contexts = stages.run(
                "report", _report_stage, model, held_out[0], blocks, out / "report.html", job, small
            )
    except JobStopped:
        logger.warning("demo stopped during %s: %s", stages.current, _saved(out))
        raise
    stages.seconds["total"] = job.elapsed()
    demo = DemoResult(
        out_dir=str(out),
        preset=cfg.preset,
        precision=result.precision,
        tokens=result.tokens,
        steps=result.step,
        train_seconds=stages.seconds["train"],
        tokens_per_s=result.tokens / max(result.elapsed_s, 1e-9),
        val_loss=float(result.val_loss),
        unigram_entropy=entropy,
        samples=samples,
        seconds=stages.seconds,
        report_html=str(report),
        report_contexts=contexts,
        **analysis,
    )
    (out / "demo_summary.json").write_text(json.dumps(asdict(demo), indent=2))
    print_summary(demo, stream or sys.stdout)
    return demo
