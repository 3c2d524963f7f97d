"""The demo's weight-based analysis: sentiment words' spectra, the identity check, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

SENTIMENT_WORDS = (" happy", " sad", " scared", " angry", " good", " bad")


def _sentiment_words(model) -> list[str]:
    """Up to three of ``SENTIMENT_WORDS`` that are single tokens of the model's tokenizer."""
    words = [w for w in SENTIMENT_WORDS if len(model.tokenizer.encode(w, add_special_tokens=False)) == 1]
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


def write_report(model, layer: int, text: str, batches: list[torch.Tensor], path: Path) -> Path:
    """The self-contained HTML report of ``" sad"`` (vs ``" happy"`` when both are tokens).

    Args:
        model: the trained model (with tokenizer).
        layer: the layer to analyse.
        text: a story to show the eigenvectors' activations on.
        batches: ``[batch, n_ctx]`` token blocks to scan for top-activating contexts.
        path: where to write the page.

    Returns:
        The path written.
    """
    from tl_bilinear.viz import analysis_report

    words = _sentiment_words(model)
    direction = " sad" if " sad" in words else words[0]
    versus = " happy" if " happy" in words and direction != " happy" else None
    report = analysis_report(model, layer, direction, versus=versus, text=text, dataset=batches, max_batches=None)
    return report.save(path)
