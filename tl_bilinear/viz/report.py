"""A self-contained HTML analysis report of one output direction of one bilinear layer.

:func:`analysis_report` puts on one page: the model summary, the eigenvalue spectrum of
the direction (and the effective-rank histogram over a sample of vocabulary
directions), the top eigenvectors with the vocabulary tokens that excite them through
the direct path, their activations on a given text, and their top-activating contexts
in a dataset. The result displays in a notebook and ``save(path)`` writes one HTML file
that needs no network.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from tl_bilinear.analysis import (
    Eigendecomposition,
    Layer,
    Vocabulary,
    check_layer,
    contrast_directions,
    direct_path_tokens,
    effective_rank,
    eigen_activations,
    eigendecompose,
    spectrum,
    top_activating_contexts,
    unembed_directions,
    vocabulary,
)
from tl_bilinear.compat import HookedTransformer
from tl_bilinear.viz.html import HTMLDocument
from tl_bilinear.viz.plots import effective_rank_figure, figure_html, spectrum_figure
from tl_bilinear.viz.tokens import colored_tokens, colored_tokens_multi, display_vocab, topk_samples, topk_tokens

logger = logging.getLogger(__name__)

_SUMMARY_FIELDS = (
    "model_name",
    "n_layers",
    "d_model",
    "d_mlp",
    "n_heads",
    "n_ctx",
    "d_vocab",
    "act_fn",
    "normalization_type",
    "positional_embedding_type",
    "dtype",
)


@dataclass(frozen=True)
class _Subject:
    """What every section of the report is about, resolved once.

    Attributes:
        model: the model.
        layer: the resolved layer.
        label: how the direction is named on the page.
        full: the direction's full eigendecomposition.
        eig: its top-k part, the eigenvectors shown.
        shown: the display string of every token id.
        labels: one label per shown eigenvector.
    """

    model: HookedTransformer
    layer: Layer
    label: str
    full: Eigendecomposition
    eig: Eigendecomposition
    shown: list[str]
    labels: list[str]


def _direction(model: HookedTransformer, direction, versus, vocab: Vocabulary | None) -> tuple[str, Tensor]:
    if isinstance(direction, Tensor) and direction.is_floating_point():
        if versus is not None:
            raise ValueError("versus= needs a token direction; subtract the vectors yourself")
        return "custom direction", direction.reshape(1, -1)
    if versus is None:
        return f"{direction!r} (unembedding)", unembed_directions(model, direction, vocab=vocab)[:1]
    return f"{direction!r} minus {versus!r}", contrast_directions(model, direction, versus, vocab=vocab)[:1]


def _subject(model: HookedTransformer, layer: int, direction, versus, k: int, vocab: Vocabulary | None) -> _Subject:
    """Resolve the layer, decode the vocabulary and decompose the direction, once for the whole report."""
    layer = check_layer(model, layer)
    if vocab is None and model.tokenizer is not None:
        vocab = vocabulary(model)
    label, U = _direction(model, direction, versus, vocab)
    full = eigendecompose(model, layer, U, method="dense")
    k = max(1, min(k, full.k))
    lam = full.eigenvalues[0]
    shown = display_vocab(model, vocab) if vocab is not None else [f"#{i}" for i in range(model.cfg.d_vocab)]
    labels = [f"v{i} (λ={lam[i].item():+.3g})" for i in range(k)]
    return _Subject(model, layer, label, full, full.truncate(k), shown, labels)


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="tlb-table"><tr>{head}</tr>{body}</table>'


def _model_section(doc: HTMLDocument, s: _Subject) -> None:
    doc.add_html("<h2>Model</h2>")
    doc.add_html(_table(["field", "value"], [[f, getattr(s.model.cfg, f, None)] for f in _SUMMARY_FIELDS]))
    doc.add_text(
        f"Direction u: {s.label}; layer {s.layer}; u · mlp_out(x) = Σ λ_i (v_i · x)² + {s.full.constant[0].item():.4g}.",
        css_class="tlb-note",
    )


def _spectrum_section(doc: HTMLDocument, s: _Subject, rank_sample: int, seed: int) -> None:
    lam = s.full.eigenvalues[0]
    doc.add_html("<h2>Spectrum</h2>")
    doc.add_html(figure_html(spectrum_figure(lam, label=s.label), alt="eigenvalue spectrum"))
    if rank_sample > 0:
        d_vocab_out = s.model.cfg.d_vocab_out
        ids = torch.randperm(d_vocab_out, generator=torch.Generator().manual_seed(seed))[
            : min(rank_sample, d_vocab_out)
        ]
        ranks = effective_rank(spectrum(s.model, s.layer, s.model.W_U[:, ids].T.detach()))
        title = f"effective rank of {len(ids)} vocabulary directions"
        doc.add_html(figure_html(effective_rank_figure(ranks, title=title), alt="effective rank histogram"))
    share = lam.square() / lam.square().sum().clamp_min(1e-300)
    rows = [[i, f"{lam[i].item():+.4g}", f"{share[i].item():.1%}"] for i in range(s.eig.k)]
    doc.add_html(_table(["eigenvector", "λ", "share of Σλ²"], rows))


def _direct_path_section(doc: HTMLDocument, s: _Subject, n_vocab_tokens: int) -> None:
    doc.add_html("<h2>Direct-path tokens</h2>")
    doc.add_text(
        "Vocabulary tokens whose embedding, through this layer's input norm alone (attention ignored), "
        "projects most positively (top) and most negatively (bottom) onto each eigenvector.",
        css_class="tlb-note",
    )
    direct = direct_path_tokens(s.model, s.eig, n_tokens=min(n_vocab_tokens, s.model.cfg.d_vocab), layer=s.layer)
    top, bottom = direct.strings(s.shown)
    doc.extend(topk_tokens(top[0], direct.top_values[0], bottom[0], direct.bottom_values[0], labels=s.labels))


def _text_section(doc: HTMLDocument, s: _Subject, text: str | Tensor) -> None:
    acts = eigen_activations(s.model, s.layer, s.eig, text, k=None)
    str_tokens = [s.shown[i] for i in acts.tokens[0].tolist()]
    explained = acts.explained()[0].item()
    doc.add_html("<h2>Activations on the text</h2>")
    if math.isnan(explained):  # a constant total (e.g. one token): no variation to explain
        note = f"{len(str_tokens)} tokens; u · mlp_out does not vary over them."
    else:
        note = (
            f"{len(str_tokens)} tokens; the top {s.eig.k} eigenvectors explain {explained:.1%} of the variation "
            "of u · mlp_out over them."
        )
    doc.add_text(note, css_class="tlb-note")
    bound = acts.total[0, :, 0].abs().max().item()
    doc.extend(
        colored_tokens(str_tokens, acts.total[0, :, 0], title="exact u · mlp_out (from hook_mlp_out)", max_abs=bound)
    )
    doc.extend(
        colored_tokens(str_tokens, acts.reconstruction[0, :, 0], title=f"top-{s.eig.k} reconstruction", max_abs=bound)
    )
    doc.extend(
        colored_tokens_multi(
            str_tokens,
            acts.contributions[0, :, 0, :],
            labels=s.labels,
            title="contribution λ_i (v_i · x)² of each eigenvector (click a label)",
        )
    )


def _dataset_section(
    doc: HTMLDocument, s: _Subject, dataset: Iterable[Tensor], n_contexts: int, max_batches: int | None
) -> None:
    found = top_activating_contexts(s.model, s.layer, s.eig, dataset, k=None, n=n_contexts, max_batches=max_batches)
    doc.add_html("<h2>Top-activating dataset contexts</h2>")
    doc.add_text(
        f"Scanned {found.n_sequences} sequences; each context is "
        "a window around the position where the feature fires hardest.",
        css_class="tlb-note",
    )
    for name, res, feature_labels in (
        ("the direction u · mlp_out", found.directions, [s.label]),
        ("each eigenvector, λ_i (v_i · x)²", found.eigenvectors, s.labels),
    ):
        tokens, values, captions = [], [], []
        for f in range(len(feature_labels)):
            pairs = res.contexts(f, s.shown)
            tokens.append([t for t, _ in pairs])
            values.append([v for _, v in pairs])
            captions.append(
                [
                    f"score {res.scores[f, i].item():.4g} (sequence {res.sequence[f, i].item()}, "
                    f"position {res.position[f, i].item()})"
                    for i in range(len(pairs))
                ]
            )
        doc.extend(
            topk_samples(tokens, values, labels=feature_labels, sample_labels=captions, title=f"Contexts of {name}")
        )


def analysis_report(
    model: HookedTransformer,
    layer: int,
    direction: str | int | Tensor,
    versus: str | int | None = None,
    text: str | Tensor | None = None,
    dataset: Iterable[Tensor] | None = None,
    *,
    vocab: Vocabulary | None = None,
    k: int = 4,
    n_vocab_tokens: int = 8,
    n_contexts: int = 5,
    max_batches: int | None = 16,
    rank_sample: int = 256,
    title: str | None = None,
    seed: int = 0,
) -> HTMLDocument:
    """Build the report for one output direction of layer ``layer``.

    Args:
        model: a bilinear HookedTransformer (with a tokenizer for string tokens/text).
        layer: the layer index.
        direction: a single-token string (e.g. ``" sad"``), a token id, or a
            [d_model] vector.
        versus: optional token to contrast with (direction = ``W_U[a] - W_U[b]``).
        text: text (string or token ids) to show activations on; any length.
        dataset: iterable of [batch, pos] token batches for top-activating contexts.
        vocab: the model's Vocabulary, if already built (default: decoded here, once).
        k: eigenvectors shown (largest |λ| first).
        n_vocab_tokens: direct-path tokens shown at each end.
        n_contexts: dataset contexts per eigenvector.
        max_batches: dataset batches scanned (None: all).
        rank_sample: vocabulary directions in the effective-rank histogram (0: skip).
        title: the page title.
        seed: seed for the vocabulary sample.

    Returns:
        The report (``_repr_html_``, ``save(path)``).

    Raises:
        IndexError: if the layer is out of range.
        ValueError: for an unknown token (with near matches) or bad sizes.
    """
    subject = _subject(model, layer, direction, versus, k, vocab)
    title = title or f"tl-bilinear: layer {subject.layer}, {subject.label}"
    doc = HTMLDocument(title=title)
    doc.add_text(title, "h1")
    _model_section(doc, subject)
    _spectrum_section(doc, subject, rank_sample, seed)
    _direct_path_section(doc, subject, n_vocab_tokens)
    if text is not None:
        _text_section(doc, subject, text)
    if dataset is not None:
        _dataset_section(doc, subject, dataset, n_contexts, max_batches)
    logger.info("report for layer %d, %s: %d views", subject.layer, subject.label, len(doc.components))
    return doc
