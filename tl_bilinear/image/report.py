"""A self-contained HTML report of a trained image classifier, built on ``tl_bilinear.viz``'s HTMLDocument."""

from __future__ import annotations

from tl_bilinear.image.adversarial import hidden_decomposition, mask_attack
from tl_bilinear.image.datasets import ImageData
from tl_bilinear.image.decompose import class_eigendecompose
from tl_bilinear.image.experiments import regularisation_metrics, truncation_curve
from tl_bilinear.image.model import BilinearClassifier
from tl_bilinear.image.plots import eigen_images_figure, mask_attack_figure, truncation_figure
from tl_bilinear.viz import HTMLDocument, spectra_figure
from tl_bilinear.viz.plots import figure_html


def image_report(
    model: BilinearClassifier,
    data: ImageData,
    title: str = "bilinear image classifier",
    target: int = 0,
    k_max: int = 30,
) -> HTMLDocument:
    """Eigen-images, spectra, the truncation curve and an adversarial mask of a one-layer classifier.

    Args:
        model: a classifier whose first layer is decomposed in pixel space.
        data: its data set (the test split is evaluated).
        title: the page title.
        target: the adversarial mask's target class.
        k_max: the truncation curve's largest k (capped at the pixel count).

    Returns:
        The document (``save(path)`` writes one HTML file that needs no network).

    Raises:
        ValueError: if the model does not fit the data or has more than one layer.
    """
    if model.cfg.n_layers != 1:
        raise ValueError(f"the report covers one-layer classifiers; this one has {model.cfg.n_layers} layers")
    model = model.double()
    ce = class_eigendecompose(model)
    hidden = hidden_decomposition(model)
    images = ce.inputs(model, data.test_images)
    ks = range(min(k_max, ce.eig.k, hidden.eig.k) + 1)
    curve = truncation_curve(ce, images, data.test_labels, ks)
    hidden_curve = truncation_curve(hidden, hidden.inputs(model, data.test_images), data.test_labels, ks)
    full = truncation_curve(ce, images, data.test_labels, [ce.eig.k])[ce.eig.k]
    metrics = regularisation_metrics(ce)
    doc = HTMLDocument(title=title)
    doc.add_text(title, "h1")
    cfg = model.cfg
    doc.add_text(
        f"data {data.name}: {len(data.train_images)} training and {len(images)} test images of {cfg.image_shape}; "
        f"d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, biases {cfg.bias}, residual {cfg.residual}. "
        f"Test accuracy {100 * full:.2f}%; mean effective rank of the class spectra {metrics['effective_rank']:.2f}.",
        css_class="tlb-note",
    )
    doc.add_text("Eigen-images", "h2")
    doc.add_html(figure_html(eigen_images_figure(ce, data.classes), "eigen-images"))
    doc.add_text("Spectra", "h2")
    shown = min(4, ce.n_classes)
    doc.add_html(figure_html(spectra_figure(ce.eig.eigenvalues[:shown], list(data.classes[:shown])), "spectra"))
    doc.add_text("Truncation", "h2")
    curves = {"pixel space (eigen-images)": curve, "embedding space (the paper's decompose)": hidden_curve}
    doc.add_html(figure_html(truncation_figure(curves, full), "truncation curves"))
    rows = "".join(
        f"<tr><td>{k}</td><td>{100 * curve[k]:.2f}</td><td>{100 * hidden_curve[k]:.2f}</td></tr>"
        for k in (0, 1, 2, 5, 10, 20, 30)
        if k in curve
    )
    doc.add_html(
        '<table class="tlb-table"><tr><th>k</th><th>accuracy, pixel space (%)</th>'
        f"<th>accuracy, embedding space (%)</th></tr>{rows}</table>"
    )
    # the stacked eigenvectors (k per class) should fill at most a fifth of the embedding: 10 at d_model = 512
    fill = model.cfg.d_model // (5 * model.cfg.n_classes)
    k_mask = min(10, max(1, fill), int((hidden.eig.eigenvalues > 0).sum(-1).min()))
    if k_mask > 0:
        attack = mask_attack(model, data.test_images.double(), data.test_labels, target, k=k_mask, ce=hidden)
        doc.add_text(f"Adversarial mask towards {data.classes[target]}", "h2")
        doc.add_html(figure_html(mask_attack_figure(attack, data.classes), "adversarial mask"))
    return doc
