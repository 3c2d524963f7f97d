"""The main job: train a bilinear model on the built-in corpus, sample it, analyse it.

``tl-bilinear demo --out runs/demo`` (what ``scripts/demo.sh`` runs) does, offline, in
a fixed wall-clock budget (default 7 minutes on 2 CPU cores, at most 10):

1. trains a BPE tokenizer (4096 tokens, lowercase) on the synthetic story corpus;
2. trains the bilinear model (bf16 autocast on CPU, linear-decay schedule), fitting the
   token budget to the time budget from the first steps' measured speed
   (``TrainConfig.time_budget_s``), and saves the checkpoint in ``out/checkpoint``;
3. prints sample stories and compares the validation loss with the unigram entropy of
   the validation tokens (nats/token);
4. eigendecomposes the interaction matrices of a few sentiment words' unembedding
   directions, plots their spectra (``out/spectra.png``), and checks the identity
   ``u · hook_mlp_out == Σ λ_i (v_i · x)²`` on held-out stories;
5. writes the self-contained HTML analysis report of ``" sad"`` vs ``" happy"``
   (spectrum, top eigenvectors, direct-path tokens, activations on a held-out story,
   top-activating validation contexts) to ``out/report.html``;
6. writes everything to ``out/demo_summary.json``.
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

from tl_bilinear.rundir import refuse_existing_run, run_lock
from tl_bilinear.train import TrainConfig, Trainer

logger = logging.getLogger(__name__)

DEMO_PRESET = "ts-small"
SENTIMENT_WORDS = (" happy", " sad", " scared", " angry", " good", " bad")
PROMPTS = ("once upon a time", "one day, a little girl named", "the dog was not")
#: Seconds of the demo's budget kept for everything but training (measured: ~40 s).
OVERHEAD_S = 75.0


@dataclass
class DemoResult:
    """What the demo measured (also written to ``demo_summary.json``)."""

    out_dir: str
    preset: str
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
    seconds: dict[str, float] = field(default_factory=dict)


def demo_config(
    out_dir: str | os.PathLike, *, small: bool = False, preset: str | None = None, **overrides: Any
) -> TrainConfig:
    """The demo's training settings (``small``: a seconds-long smoke-test version).

    Args:
        out_dir: the run directory.
        small: a tiny model and budget on one thread (used by the tests and ``TL_BILINEAR_DEMO_SMALL=1``).
        preset: the model preset (default ``DEMO_PRESET``, or ``"ts-micro"`` when ``small``).
        **overrides: TrainConfig fields.

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
    fields.update(out_dir=str(out_dir), data="builtin", precision="bf16", device="cpu", schedule="linear")
    fields.update(overrides)
    return TrainConfig(**fields)


def _sentiment_words(model) -> list[str]:
    from tl_bilinear.analysis.directions import vocab_strings

    vocab = set(vocab_strings(model))  # what unembed_directions accepts as a single token
    words = [word for word in SENTIMENT_WORDS if word in vocab]
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


def write_report(model, layer: int, text: str, dataset, path: Path, *, small: bool = False) -> Path:
    """The self-contained HTML report of ``" sad"`` (vs ``" happy"`` when both are tokens).

    Args:
        model: the trained model (with tokenizer).
        layer: the layer to analyse.
        text: a story to show the eigenvectors' activations on.
        dataset: a ``TokenBlockStream`` to scan for top-activating contexts.
        path: where to write the page.
        small: scan fewer contexts.

    Returns:
        The path written.
    """
    from tl_bilinear.viz import analysis_report

    words = _sentiment_words(model)
    direction = " sad" if " sad" in words else words[0]
    versus = " happy" if " happy" in words and direction != " happy" else None
    batches = dataset.batches(8 if small else 32)
    report = analysis_report(
        model, layer, direction, versus=versus, text=text, dataset=batches, max_batches=2 if small else 8
    )
    return report.save(path)


def run_demo(
    out_dir: str | os.PathLike = "runs/demo",
    *,
    minutes: float = 7.0,
    small: bool = False,
    preset: str | None = None,
    max_tokens: int | None = None,
    stream: TextIO | None = None,
    progress: bool = True,
) -> DemoResult:
    """Train, save, sample and analyse a bilinear model on the built-in corpus.

    Args:
        out_dir: the run directory (must not hold a checkpoint yet).
        minutes: wall-clock budget for the whole job; training gets ``minutes * 60 -
            OVERHEAD_S`` seconds.
        small: a seconds-long version (tiny model, small vocabulary, one thread).
        preset: the model preset (default ``DEMO_PRESET``, or ``"ts-micro"`` when ``small``).
        max_tokens: upper bound on training tokens (default: the config's).
        stream: where the report goes (default: stdout).
        progress: show progress bars.

    Returns:
        The ``DemoResult``.

    Raises:
        FileExistsError: if ``out_dir`` already holds anything of a run (even a damaged one).
        RunLocked: if another process is writing into ``out_dir``.
        KeyError: for an unknown preset (the message lists the known ones).
        ValueError: if ``minutes`` is not positive.
    """
    from tl_bilinear.config import get_preset

    if not minutes > 0:  # also NaN
        raise ValueError(f"--minutes {minutes} must be positive: the whole job's wall-clock budget (default 7)")
    if preset is not None:
        get_preset(preset)
    fix = "the demo always starts a new one: pass another --out, or delete that directory"
    refuse_existing_run(out_dir, fix=fix)  # before the lock creates the directory
    with run_lock(out_dir, "tl-bilinear demo"):
        refuse_existing_run(out_dir, fix=fix)  # again, now that no other writer can change it
        return _run_locked(out_dir, minutes, small, preset, max_tokens, stream, progress)


def _run_locked(out_dir, minutes, small, preset, max_tokens, stream, progress) -> DemoResult:
    from tl_bilinear.data import TokenBlockStream, is_validation, iter_documents, unigram_entropy
    from tl_bilinear.model import load
    from tl_bilinear.train.loop import VAL_FRACTION

    stream = stream or sys.stdout
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    out = Path(out_dir)
    extra: dict[str, Any] = {"total_tokens": max_tokens} if max_tokens else {}
    if not small:  # what the rest of the job needs: imports, tokenizer, samples, analysis, entropy
        extra["time_budget_s"] = max(30.0, minutes * 60 - OVERHEAD_S)
    cfg = demo_config(out, small=small, preset=preset, progress=progress, **extra)

    trainer = Trainer(cfg)  # trains the tokenizer into out/tokenizer
    seconds["tokenizer"] = time.perf_counter() - start
    t0 = time.perf_counter()
    result = trainer.run()  # fits itself into cfg.time_budget_s
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = load(out)
    n_ctx, d_vocab = model.cfg.n_ctx, model.cfg.d_vocab
    val_stream = TokenBlockStream("builtin", model.tokenizer, n_ctx, split="validation", val_fraction=VAL_FRACTION)
    entropy = unigram_entropy(val_stream, d_vocab, max_tokens=200_000)
    seconds["entropy"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    torch.manual_seed(0)
    samples = []
    for prompt in PROMPTS:
        text = model.generate(prompt, max_new_tokens=80 if not small else 20, temperature=0.7, verbose=False)
        samples.append(text.replace("<|endoftext|>", "").strip())
    seconds["samples"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    held_out = [
        d for i, d in enumerate(itertools.islice(iter_documents("builtin"), 5000)) if is_validation(i, VAL_FRACTION)
    ]
    analysis = analyse(model, model.cfg.n_layers - 1, held_out, out)
    seconds["analysis"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = write_report(model, model.cfg.n_layers - 1, held_out[0], val_stream, out / "report.html", small=small)
    seconds["report"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start

    demo = DemoResult(
        out_dir=str(out),
        preset=cfg.preset,
        tokens=result.tokens,
        steps=result.step,
        train_seconds=seconds["train"],
        tokens_per_s=result.tokens / max(result.elapsed_s, 1e-9),
        val_loss=float(result.val_loss),
        unigram_entropy=entropy,
        samples=samples,
        seconds=seconds,
        report_html=str(report),
        **analysis,
    )
    (out / "demo_summary.json").write_text(json.dumps(asdict(demo), indent=2))
    _report(demo, stream)
    return demo


def _report(demo: DemoResult, stream: TextIO) -> None:
    w = stream.write
    w("\n=== sample stories (temperature 0.7) ===\n")
    for text in demo.samples:  # indented continuation lines keep each story inside its bullet
        w("- " + text.strip().replace("\n", "\n  ") + "\n")
    w("\n=== it learns ===\n")
    w(f"validation loss       {demo.val_loss:.3f} nats/token (perplexity {math.exp(demo.val_loss):.1f})\n")
    w(f"unigram entropy       {demo.unigram_entropy:.3f} nats/token (a context-free model's best)\n")
    w(f"trained on            {demo.tokens:,} tokens, {demo.steps} steps, {demo.tokens_per_s:,.0f} tokens/s\n")
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
