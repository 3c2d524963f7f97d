"""Plots of SAE-feature analyses: interaction heatmaps and the low-rank correlation curve (paper Figs. 8-9)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from tl_bilinear.viz.plots import _as_numpy

#: Mean correlation of the rank-1 approximation reported by the paper (§5, Fig. 9A).
PAPER_MEAN_K1 = 0.65


def interaction_heatmap_figure(
    matrix: Float[Tensor, "s s"], labels: Sequence[str], title: str = "input-feature interactions"
) -> Figure:
    """A symmetric interaction matrix between a few input features, diverging colours around 0.

    Args:
        matrix: [s, s] entries of ``D Q Dᵀ`` for the chosen input features.
        labels: s names of the input features.
        title: the figure title.

    Returns:
        The figure.

    Raises:
        ValueError: if the matrix is not square or the labels do not match.
    """
    values = _as_numpy(matrix, 2, "matrix")
    if values.shape[0] != values.shape[1] or len(labels) != values.shape[0]:
        raise ValueError(
            f"matrix has shape {values.shape} and there are {len(labels)} labels; need [s, s] and s labels"
        )
    bound = float(np.abs(values).max()) or 1.0
    fig = Figure(figsize=(1.2 + 0.45 * len(labels), 1.0 + 0.45 * len(labels)))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def correlation_figure(
    mean_curve: Float[Tensor, " K"], at_k2: Float[Tensor, " m"], title: str = "low-rank approximation"
) -> Figure:
    """The mean correlation against k (Fig. 9A) and the histogram of correlations at k = 2 (Fig. 9B).

    Args:
        mean_curve: [K] mean correlation at k = 1..K.
        at_k2: [m] per-feature correlations at k = 2.
        title: the figure title.

    Returns:
        The figure.

    Raises:
        ValueError: for empty inputs.
    """
    curve = _as_numpy(mean_curve, 1, "mean_curve")
    hist = _as_numpy(at_k2, 1, "at_k2")
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    left.plot(np.arange(1, len(curve) + 1), curve, marker=".")
    left.axhline(PAPER_MEAN_K1, color="gray", linestyle="--", linewidth=0.8, label=f"paper, k=1: {PAPER_MEAN_K1}")
    left.set_xscale("log")
    left.set_xlabel("eigenvectors kept (k)")
    left.set_ylabel("mean Pearson correlation")
    left.set_ylim(0, 1)
    left.legend(fontsize=7)
    right.hist(hist, bins=np.linspace(-1, 1, 41))
    right.axvline(0.75, color="gray", linestyle="--", linewidth=0.8)
    right.set_xlabel("correlation at k = 2")
    right.set_ylabel("output features")
    right.set_title(f"{(hist > 0.75).mean():.0%} above 0.75", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
