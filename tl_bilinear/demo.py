"""The main job: train a bilinear model on the built-in corpus, sample it, analyse it.

``tl-bilinear demo --out runs/demo`` (what ``scripts/demo.sh`` runs) does, offline, in
a wall-clock budget for the whole job (default 7 minutes on 2 CPU cores, at most 10),
in named stages:

1. ``tokenizer``: trains a BPE tokenizer (4096 tokens, lowercase) on the synthetic story
   corpus, builds the model and chooses the precision (``"auto"``: bf16 autocast only
   where this CPU runs it clearly faster than fp32, measured);
2. ``train``: trains it (linear-decay schedule) for what the budget leaves after the
   other stages' reserve (``POST_TRAINING_S``), fitting the step count to the measured
   speed, with a final validation that shrinks to the time left; the checkpoint goes to
   ``out/checkpoint``;
3. ``samples`` and ``entropy``: sample stories, and the validation tokens' unigram entropy
   (nats/token) to compare the validation loss with;
4. ``analysis``: eigendecomposes the interaction matrices of a few sentiment words'
   unembedding directions, plots their spectra (``out/spectra.png``), and checks the
   identity ``u · hook_mlp_out == Σ λ_i (v_i · x)²`` on held-out stories;
5. ``report``: the self-contained HTML analysis report of ``" sad"`` vs ``" happy"``
   (``out/report.html``), scanning as many validation contexts as fit in the time left;
6. everything to ``out/demo_summary.json``.

Ctrl-C or SIGTERM stops any stage within seconds (training saves its checkpoint first),
logs one line saying what was saved, and raises ``JobStopped``; a second one exits at once.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from tl_bilinear.train import Deadline, JobStopped, TrainConfig, Trainer, TrainResult
from tl_bilinear.train.budget import Clock
from tl_bilinear.train.stop import raise_on_signals

logger = logging.getLogger(__name__)

DEMO_PRESET = "ts-small"
SENTIMENT_WORDS = (" happy", " sad", " scared", " angry", " good", " bad")
PROMPTS = ("once upon a time", "one day, a little girl named", "the dog was not")
#: Seconds of the job's budget kept for the stages after training (measured quiet: ~30 s).
POST_TRAINING_S = 60.0
#: Validation sequences per report batch, and the most batches the report scans.
REPORT_BATCH, REPORT_BATCHES = 32, 8


@dataclass
class DemoResult:
    """What the demo measured (also written to ``demo_summary.json``)."""

    out_dir: str
    preset: str
    precision: str
    tokens: int
    steps: int
    train_seconds: float
    tokens_per_s: float
    val_loss: float
    unigram_entropy: float
    samples: list[str]
    words: list[str]
    top_eigenvalues: dict[str, list[float]]
    identity_max_abs_error: float
    identity_max_abs_value: float
    spectra_png: str
    report_html: str
    report_contexts: int
    seconds: dict[str, float] = field(default_factory=dict)


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


def _sentiment_words(model) -> list[str]:
    """Up to three of ``SENTIMENT_WORDS`` that are single tokens of the model's tokenizer."""
    words = [w for w in SENTIMENT_WORDS if model.to_tokens(w, prepend_bos=False).shape[-1] == 1]
    if not words:
        raise ValueError(
            f"none of {list(SENTIMENT_WORDS)} is a single token of this tokenizer "
            f"({model.cfg.d_vocab} entries); the analysis needs one: train the tokenizer with a larger vocabulary"
        )
    return words[:3]


def analyse(model, layer: int, texts: list[str], out_dir: Path) -> dict[str, Any]:
    """Eigen-spectra of sentiment words and the identity check on real text.

    Args:
        model: the trained bilinear model (with tokenizer).
        layer: the layer to decompose.
        texts: held-out stories for the identity check.
        out_dir: where ``spectra.png`` goes.

    Returns:
        ``{"words", "top_eigenvalues", "identity_max_abs_error", "identity_max_abs_value", "spectra_png"}``.
    """
    from tl_bilinear.analysis import eigendecompose, mlp_input, mlp_input_hook_names, unembed_directions
    from tl_bilinear.viz import save_figure, spectra_figure

    words = _sentiment_words(model)
    directions = unembed_directions(model, words)  # [n, d_model]
    eig = eigendecompose(model, layer, directions)  # all eigenpairs: the identity is exact
    png = save_figure(
        spectra_figure(eig.eigenvalues, [f"W_U[{w!r}]" for w in words], f"layer {layer}"), out_dir / "spectra.png"
    )
    tokens = model.to_tokens(texts[:4], padding_side="right")[:, : model.cfg.n_ctx]
    names = [*mlp_input_hook_names(model, layer), f"blocks.{layer}.hook_mlp_out"]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    x = mlp_input(model, layer, cache)  # [batch, pos, d_model]
    direct = cache[f"blocks.{layer}.hook_mlp_out"] @ directions.T  # [batch, pos, n]
    rebuilt = eig.reconstruct(x.to(eig.eigenvalues.dtype))  # Σ λ (v·x)² + constant
    return {
        "words": words,
        "top_eigenvalues": {w: [round(float(v), 5) for v in eig.eigenvalues[i, :5]] for i, w in enumerate(words)},
        "identity_max_abs_error": float((direct - rebuilt).abs().max()),
        "identity_max_abs_value": float(direct.abs().max()),
        "spectra_png": str(png),
    }


def write_report(model, layer: int, text: str, dataset, path: Path, *, max_batches: int = REPORT_BATCHES) -> Path:
    """The self-contained HTML report of ``" sad"`` (vs ``" happy"`` when both are tokens).

    Args:
        model: the trained model (with tokenizer).
        layer: the layer to analyse.
        text: a story to show the eigenvectors' activations on.
        dataset: a ``TokenBlockStream`` to scan for top-activating contexts.
        path: where to write the page.
        max_batches: ``REPORT_BATCH``-sequence batches of ``dataset`` to scan.

    Returns:
        The path written.
    """
    from tl_bilinear.viz import analysis_report

    words = _sentiment_words(model)
    direction = " sad" if " sad" in words else words[0]
    versus = " happy" if " happy" in words and direction != " happy" else None
    batches = dataset.batches(REPORT_BATCH)
    report = analysis_report(
        model, layer, direction, versus=versus, text=text, dataset=batches, max_batches=max_batches
    )
    return report.save(path)


def _check_new_run(out_dir: str | os.PathLike, minutes: float, preset: str | None) -> None:
    """Refuse a bad budget, an unknown preset, or an ``out_dir`` holding a run, before any work."""
    from tl_bilinear.config import get_preset
    from tl_bilinear.model import resolve_checkpoint

    if not minutes > 0:  # also NaN
        raise ValueError(f"--minutes {minutes} must be positive: the whole job's wall-clock budget (default 7)")
    if preset is not None:
        get_preset(preset)
    try:
        resolve_checkpoint(out_dir)
    except FileNotFoundError:
        return  # nothing there yet: the usual case
    raise FileExistsError(
        f"{str(out_dir)!r} already holds a trained run; the demo always starts a new one: "
        "pass another --out, or delete that directory"
    )


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


def report_batches(job: Deadline, batch_s: float) -> int:
    """Report batches that fit in 60% of the job's time left (1 to ``REPORT_BATCHES``).

    Args:
        job: the job's deadline.
        batch_s: seconds to scan one batch (a measured forward of ``REPORT_BATCH`` sequences,
            times 1.5 for the activation caching).

    Returns:
        The number of batches to scan.
    """
    return job.fits(batch_s, share=0.6, at_most=REPORT_BATCHES)


class _Stages:
    """The demo's stages, timed into ``seconds``, each named while it runs (for a stop)."""

    def __init__(self, clock: Clock):
        self.clock, self.seconds, self.current = clock, {}, "set-up"

    def run(self, name: str, fn, *args, **kwargs):
        self.current, start = name, self.clock()
        result = fn(*args, **kwargs)
        self.seconds[name] = self.clock() - start
        return result


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


def _report_stage(model, text: str, val_stream, path: Path, job: Deadline, small: bool) -> tuple[Path, int]:
    """Time one forward of a report batch, then write the report with the batches that fit."""
    block = next(iter(val_stream.batches(REPORT_BATCH)))
    start = job.clock()
    with torch.no_grad():
        model(block, return_type="logits")
    batches = 2 if small else report_batches(job, 1.5 * (job.clock() - start))
    layer = model.cfg.n_layers - 1
    return write_report(model, layer, text, val_stream, path, max_batches=batches), batches * REPORT_BATCH


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
        preset: the model preset (default ``DEMO_PRESET``, or ``"ts-micro"`` when ``small``).
        max_tokens: upper bound on training tokens (default: the config's).
        precision: ``"auto"`` (measured), ``"fp32"`` or ``"bf16"``.
        stream: where the report goes (default: stdout).
        progress: show progress bars.
        clock: seconds from an arbitrary origin (tests inject one).

    Returns:
        The ``DemoResult``.

    Raises:
        FileExistsError: if ``out_dir`` already holds a checkpoint.
        KeyError: for an unknown preset (the message lists the known ones).
        ValueError: if ``minutes`` is not positive or ``precision`` is unknown.
        JobStopped: after a Ctrl-C or SIGTERM (logged in one line: the stage, what was saved).
    """
    from tl_bilinear.data import TokenBlockStream, unigram_entropy
    from tl_bilinear.model import load

    _check_new_run(out_dir, minutes, preset)
    job, out, stages = Deadline(minutes * 60, clock), Path(out_dir), _Stages(clock)
    extra: dict[str, Any] = {"total_tokens": max_tokens} if max_tokens else {}
    cfg = demo_config(out, small=small, preset=preset, progress=progress, precision=precision, **extra)
    try:
        with raise_on_signals():
            trainer = stages.run("tokenizer", Trainer, cfg, clock=clock)  # also the model and precision
            result = stages.run("train", _train, trainer, job, small)
            model = load(out)
            samples = stages.run("samples", _samples, model, job, small)
            val_stream = TokenBlockStream("builtin", model.tokenizer, model.cfg.n_ctx, split="validation")
            entropy = stages.run("entropy", unigram_entropy, val_stream, model.cfg.d_vocab, max_tokens=200_000)
            held_out = _held_out_stories()
            analysis = stages.run("analysis", analyse, model, model.cfg.n_layers - 1, held_out, out)
            report, contexts = stages.run(
                "report", _report_stage, model, held_out[0], val_stream, out / "report.html", job, small
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
    _report(demo, stream or sys.stdout)
    return demo


def _report(demo: DemoResult, stream: TextIO) -> None:
    w = stream.write
    w("\n=== sample stories (temperature 0.7) ===\n")
    for text in demo.samples:  # indented continuation lines keep each story inside its bullet
        w("- " + text.strip().replace("\n", "\n  ") + "\n")
    w("\n=== it learns ===\n")
    w(f"validation loss       {demo.val_loss:.3f} nats/token (perplexity {math.exp(demo.val_loss):.1f})\n")
    w(f"unigram entropy       {demo.unigram_entropy:.3f} nats/token (a context-free model's best)\n")
    w(
        f"trained on            {demo.tokens:,} tokens, {demo.steps} steps, {demo.tokens_per_s:,.0f} tokens/s "
        f"({demo.precision})\n"
    )
    w("\n=== weight-based analysis ===\n")
    w(f"spectra of {', '.join(repr(x) for x in demo.words)}: {demo.spectra_png}\n")
    w(f"analysis report (opens offline in a browser): {demo.report_html}\n")
    for word, values in demo.top_eigenvalues.items():
        w(f"  top |λ| of W_U[{word!r}]: {', '.join(f'{v:+.4f}' for v in values)}\n")
    w(
        f"identity u·hook_mlp_out == Σλ(v·x)²: max |error| {demo.identity_max_abs_error:.2e} "
        f"(values up to {demo.identity_max_abs_value:.2f})\n"
    )
    w("\ntimes: " + ", ".join(f"{k} {v:.0f}s" for k, v in demo.seconds.items()) + "\n")
    w(f"checkpoint: {demo.out_dir}/checkpoint   (tl_bilinear.load({demo.out_dir!r}))\n")
    stream.flush()
