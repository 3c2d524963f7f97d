"""What the demo measured: ``DemoResult`` (also ``demo_summary.json``) and its printed summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TextIO


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


def print_summary(demo: DemoResult, stream: TextIO) -> None:
    """Write the samples, the losses, the analysis and the stage times to ``stream``.

    Args:
        demo: the result.
        stream: where to write (stdout for the CLI).
    """
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
