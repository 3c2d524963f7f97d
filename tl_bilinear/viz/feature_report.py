"""One self-contained HTML page of an SAE-feature analysis (uses :class:`HTMLDocument`, no other template)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from tl_bilinear.viz.features import correlation_figure, interaction_heatmap_figure
from tl_bilinear.viz.html import HTMLDocument
from tl_bilinear.viz.plots import figure_html
from tl_bilinear.viz.tokens import colored_tokens_multi


@dataclass(frozen=True)
class FeatureView:
    """What the page shows of one output feature.

    Attributes:
        feature: its index.
        caption: one line about it (eigenvalues, top pairs, ...).
        matrix: [s, s] interactions between its strongest input features.
        labels: those input features' names.
        tokens: token strings of a text where it is active.
        actual: [S] its pre-activation on them.
        approximation: [S] the rank-k approximation.
        k: the rank shown.
    """

    feature: int
    caption: str
    matrix: Tensor
    labels: Sequence[str]
    tokens: Sequence[str]
    actual: Tensor
    approximation: Tensor
    k: int


def _table(rows: Sequence[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(a))}</th><td>{html.escape(str(b))}</td></tr>" for a, b in rows)
    return f'<table class="tlb-table">{cells}</table>'


def feature_report(
    title: str,
    summary: Sequence[tuple[str, object]],
    mean_curve: Tensor,
    at_k2: Tensor,
    views: Sequence[FeatureView],
) -> HTMLDocument:
    """The SAE-feature page: a summary table, the correlation curve and histogram, and per feature
    an interaction heatmap and a token view of the actual activation next to its rank-k approximation.

    Args:
        title: the page heading.
        summary: (name, value) rows.
        mean_curve: [K] mean correlation at k = 1..K.
        at_k2: [m] per-feature correlations at k = 2.
        views: the features shown.

    Returns:
        The HTMLDocument (``save(path)`` writes a file that renders offline).
    """
    doc = HTMLDocument()
    doc.add_text(title, tag="h1")
    doc.add_html(_table(summary))
    doc.add_text("Low-rank approximation of output features", tag="h2")
    doc.add_html(figure_html(correlation_figure(mean_curve, at_k2), alt="correlation against k"))
    for view in views:
        doc.add_text(f"Output feature {view.feature}", tag="h2")
        doc.add_text(view.caption, css_class="tlb-note")
        doc.add_html(figure_html(interaction_heatmap_figure(view.matrix, view.labels), alt="interaction heatmap"))
        values = [[a, b] for a, b in zip(view.actual.tolist(), view.approximation.tolist())]
        doc.extend(colored_tokens_multi(view.tokens, values, labels=["actual", f"rank {view.k}"], shared_scale=True))
    return doc
