"""Matplotlib plots of eigenvalue spectra (Agg, no pyplot state: safe headless and in notebooks).

Each function returns a ``matplotlib.figure.Figure``; a notebook displays it inline, and
:func:`save_figure` / :func:`figure_data_uri` turn it into a PNG file or an ``<img>``
for a self-contained HTML page.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from tl_bilinear.analysis.metrics import effective_rank

POSITIVE, NEGATIVE = "#1f4fd1", "#d62728"


def _as_numpy(values, ndim: int, what: str) -> np.ndarray:
    array = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(values, dtype=float)
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"{what} must be a non-empty {ndim}-D array, got shape {array.shape}")
    return array


def _draw_spectrum(ax, values: np.ndarray, title: str) -> None:
    """Bars of λ sorted from most positive to most negative, with the effective rank."""
    ordered = np.sort(values[np.isfinite(values)])[::-1]
    eff = float(effective_rank(torch.from_numpy(ordered.copy())))
    ax.bar(np.arange(len(ordered)), ordered, color=[POSITIVE if v >= 0 else NEGATIVE for v in ordered], width=1.0)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("eigenvalue index (sorted by λ)")
    ax.set_ylabel("λ")
    ax.set_title(title)
    ax.text(
        0.99,
        0.95,
        f"effective rank {eff:.2f}\n{(ordered > 0).sum()} positive, {(ordered < 0).sum()} negative",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
    )


def spectrum_figure(
    eigenvalues: Float[Tensor, k],
    title: str = "eigenvalue spectrum",
    label: str | None = None,
) -> Figure:
    """The eigenvalues of one direction's interaction matrix, sorted, both signs.

    Args:
        eigenvalues: [k] eigenvalues in any order (e.g. ``eig.eigenvalues[0]``).
        title: the axes title.
        label: optional caption for the direction (e.g. ``'" sad" - " happy"'``).

    Returns:
        A figure: λ sorted from most positive to most negative as bars (blue = pushes
        the direction up, red = down), with the effective rank in the legend.

    Raises:
        ValueError: if ``eigenvalues`` is not a non-empty 1-D array.
    """
    values = _as_numpy(eigenvalues, 1, "eigenvalues")
    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    _draw_spectrum(fig.add_subplot(), values, title if label is None else f"{title}: {label}")
    fig.tight_layout()
    return fig


def spectra_figure(
    eigenvalues: Float[Tensor, "n k"],
    labels: list[str],
    title: str = "eigenvalue spectrum",
) -> Figure:
    """One panel per direction, side by side, as in ``spectrum_figure``.

    Args:
        eigenvalues: [n, k], one row per direction (e.g. ``eig.eigenvalues``).
        labels: n captions.
        title: prefix of each panel's title.

    Returns:
        The figure.

    Raises:
        ValueError: if ``eigenvalues`` is not a non-empty 2-D array or the labels do not match.
    """
    values = _as_numpy(eigenvalues, 2, "eigenvalues")
    if len(labels) != len(values):
        raise ValueError(f"got {len(labels)} labels for {len(values)} directions")
    fig = Figure(figsize=(4.2 * len(values), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    for i, (row, label) in enumerate(zip(values, labels)):
        _draw_spectrum(fig.add_subplot(1, len(values), i + 1), row, f"{title}: {label}")
    fig.tight_layout()
    return fig


def effective_rank_figure(
    effective_ranks: Float[Tensor, n],
    title: str = "effective rank across output directions",
    bins: int = 40,
) -> Figure:
    """Histogram of effective ranks ``(Σ|λ|)² / Σλ²`` over many directions.

    Args:
        effective_ranks: [n] one per direction
            (``tl_bilinear.analysis.effective_rank(spectrum(model, layer, W_U.T))``).
        title: the axes title.
        bins: histogram bins.

    Returns:
        The figure, with the median marked.

    Raises:
        ValueError: if ``effective_ranks`` is not a non-empty 1-D array.
    """
    ranks = _as_numpy(effective_ranks, 1, "effective_ranks")
    ranks = ranks[np.isfinite(ranks)]
    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(ranks, bins=bins, color="#555")
    if ranks.size:
        median = float(np.median(ranks))
        ax.axvline(median, color=NEGATIVE, linestyle="--", label=f"median {median:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("effective rank")
    ax.set_ylabel("directions")
    ax.set_title(f"{title} (n={ranks.size})")
    fig.tight_layout()
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes.

    Args:
        fig: the figure.

    Returns:
        The PNG file's bytes.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def figure_data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI.

    Args:
        fig: the figure.

    Returns:
        The URI, usable as an ``<img src>`` with no file or network.
    """
    return "data:image/png;base64," + base64.b64encode(figure_png(fig)).decode("ascii")


def figure_html(fig: Figure, alt: str = "plot") -> str:
    """An ``<img>`` element with the PNG inlined (no file or network needed).

    Args:
        fig: the figure.
        alt: the image's alternative text (escaped).

    Returns:
        The element's HTML, with class ``tlb-plot``.
    """
    return f'<img class="tlb-plot" alt="{html.escape(alt)}" src="{figure_data_uri(fig)}">'


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file, creating parent folders.

    Args:
        fig: the figure.
        path: the output path (``.png``).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(fig))
    return path


__all__ = [
    "effective_rank_figure",
    "figure_data_uri",
    "figure_html",
    "figure_png",
    "save_figure",
    "spectra_figure",
    "spectrum_figure",
]
