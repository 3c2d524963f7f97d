"""Matplotlib figures of the image experiments (Agg, no pyplot state; ``tl_bilinear.viz`` saves or inlines them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tl_bilinear.image.adversarial import MaskAttack
from tl_bilinear.image.decompose import ClassEigen


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def eigen_images_figure(
    ce: ClassEigen, class_names: Sequence[str] | None = None, n_positive: int = 2, n_negative: int = 2
) -> Figure:
    """Per class (rows): the top positive and top negative eigen-images with their λ (paper Fig. 2-3).

    Each image uses a symmetric colour scale (red +, blue −); the sign of an eigenvector is
    arbitrary, the sign of λ is not.

    Raises:
        ValueError: if ``ce`` is not a pixel-space decomposition or the names do not match.
    """
    images = ce.eigen_images()
    names = list(class_names) if class_names is not None else [str(c) for c in range(ce.n_classes)]
    if len(names) != ce.n_classes:
        raise ValueError(f"got {len(names)} class names for {ce.n_classes} classes")
    columns = n_positive + n_negative
    fig = _figure(1.3 * columns + 0.8, 1.3 * ce.n_classes)
    for c in range(ce.n_classes):
        values = ce.eig.eigenvalues[c]
        positive = (values > 0).nonzero().flatten()[:n_positive].tolist()
        negative = (values < 0).nonzero().flatten()[:n_negative].tolist()
        for column, index in enumerate(positive + negative):
            ax = fig.add_subplot(ce.n_classes, columns, c * columns + column + 1)
            image = images[c, index].detach().cpu().double().numpy()
            bound = abs(image).max() or 1.0
            ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"λ={values[index].item():+.3g}", fontsize=7)
            if column == 0:
                ax.set_ylabel(names[c], fontsize=8)
    fig.suptitle(f"top {n_positive} positive and {n_negative} negative eigen-images per class", fontsize=9)
    fig.tight_layout()
    return fig


def truncation_figure(
    curves: Mapping[int, float] | Mapping[str, Mapping[int, float]], full_accuracy: float | None = None
) -> Figure:
    """Accuracy against the eigenvectors kept per class (paper Fig. 5B).

    Args:
        curves: one ``{k: accuracy}`` curve, or several by label (e.g. per decomposition space).
        full_accuracy: the model's accuracy, drawn as a dashed line.
    """
    if all(isinstance(key, int) for key in curves):
        curves = {"top-k eigenvectors per class": curves}
    fig = _figure(5.6, 3.2)
    ax = fig.add_subplot()
    for label, curve in curves.items():
        ks = sorted(curve)
        ax.plot(ks, [100 * curve[k] for k in ks], marker="o", markersize=3, label=label)
    if full_accuracy is not None:
        ax.axhline(100 * full_accuracy, color="black", linestyle="--", linewidth=0.8, label="all eigenvectors")
    ax.set_xlabel("eigenvectors kept per class (k)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mask_attack_figure(attack: MaskAttack, class_names: Sequence[str] | None = None) -> Figure:
    """The eigen-mask, and accuracy and target rate against strength for it and a permuted mask (Fig. 7)."""
    name = class_names[attack.target] if class_names is not None else str(attack.target)
    fig = _figure(9.0, 3.0)
    ax = fig.add_subplot(1, 3, 1)
    mask = attack.mask.detach().cpu().double().numpy()
    bound = abs(mask).max() or 1.0
    ax.imshow(mask, cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"eigen-mask towards {name}", fontsize=9)
    for i, (what, label) in enumerate((("accuracy", "accuracy (%)"), ("target_rate", f"classified as {name} (%)"))):
        ax = fig.add_subplot(1, 3, i + 2)
        for kind, style in (("eigen", "-o"), ("permuted", "--s")):
            values = getattr(attack, f"{what}_{kind}")
            ax.plot(attack.strengths, [100 * v for v in values], style, markersize=3, label=f"{kind} mask")
        ax.set_xlabel("mask strength (std of its positive pixels)" if attack.scale == "paper" else "mask norm (L2)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
