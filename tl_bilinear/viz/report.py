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

import torch
from torch import Tensor

from tl_bilinear.analysis import contrast_directions, effective_rank, eigendecompose, spectrum, unembed_directions
from tl_bilinear.analysis.activations import eigen_activations
from tl_bilinear.analysis.direct_path import direct_path_tokens
from tl_bilinear.analysis.topk import top_activating_contexts
from tl_bilinear.analysis.weights import check_layer
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


def _vocab(model: HookedTransformer) -> list[str]:
    return display_vocab(model) if model.tokenizer is not None else [f"#{i}" for i in range(model.cfg.d_vocab)]


def _direction(model: HookedTransformer, direction, versus) -> tuple[str, Tensor]:
    if isinstance(direction, Tensor) and direction.is_floating_point():
        if versus is not None:
            raise ValueError("versus= needs a token direction; subtract the vectors yourself")
        return "custom direction", direction.reshape(1, -1)
    if versus is None:
        return f"{direction!r} (unembedding)", unembed_directions(model, direction)[:1]
    return f"{direction!r} minus {versus!r}", contrast_directions(model, direction, versus)[:1]


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="tlb-table"><tr>{head}</tr>{body}</table>'


def analysis_report(
    model: HookedTransformer,
    layer: int,
    direction: str | int | Tensor,
    versus: str | int | None = None,
    text: str | Tensor | None = None,
    dataset: Iterable[Tensor] | None = None,
    *,
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
    check_layer(model, layer)
    label, U = _direction(model, direction, versus)
    full = eigendecompose(model, layer, U, method="dense")
    k = max(1, min(k, full.k))
    eig = full.truncate(k)
    lam = full.eigenvalues[0]
    vocab = _vocab(model)
    title = title or f"tl-bilinear: layer {layer}, {label}"
    doc = HTMLDocument(title=title)
    doc.add_text(title, "h1")

    doc.add_html("<h2>Model</h2>")
    cfg = model.cfg
    doc.add_html(_table(["field", "value"], [[f, getattr(cfg, f, None)] for f in _SUMMARY_FIELDS]))
    doc.add_text(
        f"Direction u: {label}; layer {layer}; u · mlp_out(x) = Σ λ_i (v_i · x)² + {full.constant[0].item():.4g}.",
        css_class="tlb-note",
    )

    doc.add_html("<h2>Spectrum</h2>")
    doc.add_html(figure_html(spectrum_figure(lam, label=label), alt="eigenvalue spectrum"))
    if rank_sample > 0:
        g = torch.Generator().manual_seed(seed)
        ids = torch.randperm(cfg.d_vocab_out, generator=g)[: min(rank_sample, cfg.d_vocab_out)]
        ranks = effective_rank(spectrum(model, layer, model.W_U[:, ids].T.detach()))
        doc.add_html(
            figure_html(
                effective_rank_figure(ranks, title=f"effective rank of {len(ids)} vocabulary directions"),
                alt="effective rank histogram",
            )
        )
    share = lam.square() / lam.square().sum().clamp_min(1e-300)
    doc.add_html(
        _table(
            ["eigenvector", "λ", "share of Σλ²"],
            [[i, f"{lam[i].item():+.4g}", f"{share[i].item():.1%}"] for i in range(k)],
        )
    )

    labels = [f"v{i} (λ={lam[i].item():+.3g})" for i in range(k)]
    doc.add_html("<h2>Direct-path tokens</h2>")
    doc.add_text(
        "Vocabulary tokens whose embedding, through this layer's input norm alone (attention ignored), "
        "projects most positively (top) and most negatively (bottom) onto each eigenvector.",
        css_class="tlb-note",
    )
    direct = direct_path_tokens(model, eig, n_tokens=min(n_vocab_tokens, cfg.d_vocab), layer=layer)
    top, bottom = direct.strings(vocab)
    doc.extend(topk_tokens(top[0], direct.top_values[0], bottom[0], direct.bottom_values[0], labels=labels))

    if text is not None:
        acts = eigen_activations(model, layer, eig, text, k=None)
        str_tokens = [vocab[i] for i in acts.tokens[0].tolist()]
        explained = acts.explained()[0].item()
        doc.add_html("<h2>Activations on the text</h2>")
        if math.isnan(explained):  # a constant total (e.g. one token): no variation to explain
            note = f"{len(str_tokens)} tokens; u · mlp_out does not vary over them."
        else:
            note = (
                f"{len(str_tokens)} tokens; the top {k} eigenvectors explain {explained:.1%} of the variation "
                "of u · mlp_out over them."
            )
        doc.add_text(note, css_class="tlb-note")
        bound = acts.total[0, :, 0].abs().max().item()
        doc.extend(
            colored_tokens(
                str_tokens, acts.total[0, :, 0], title="exact u · mlp_out (from hook_mlp_out)", max_abs=bound
            )
        )
        doc.extend(
            colored_tokens(str_tokens, acts.reconstruction[0, :, 0], title=f"top-{k} reconstruction", max_abs=bound)
        )
        doc.extend(
            colored_tokens_multi(
                str_tokens,
                acts.contributions[0, :, 0, :],
                labels=labels,
                title="contribution λ_i (v_i · x)² of each eigenvector (click a label)",
            )
        )

    if dataset is not None:
        found = top_activating_contexts(model, layer, eig, dataset, k=None, n=n_contexts, max_batches=max_batches)
        doc.add_html("<h2>Top-activating dataset contexts</h2>")
        doc.add_text(
            f"Scanned {found.n_sequences} sequences; each context is "
            "a window around the position where the feature fires hardest.",
            css_class="tlb-note",
        )
        for name, res, feature_labels in (
            ("the direction u · mlp_out", found.directions, [label]),
            ("each eigenvector, λ_i (v_i · x)²", found.eigenvectors, labels),
        ):
            tokens, values, captions = [], [], []
            for f in range(len(feature_labels)):
                pairs = res.contexts(f, vocab)
                tokens.append([t for t, _ in pairs])
                values.append([v for _, v in pairs])
                captions.append(
                    [
                        f"score {res.scores[f, s].item():.4g} (sequence {res.sequence[f, s].item()}, "
                        f"position {res.position[f, s].item()})"
                        for s in range(len(pairs))
                    ]
                )
            doc.extend(
                topk_samples(tokens, values, labels=feature_labels, sample_labels=captions, title=f"Contexts of {name}")
            )
    logger.info("report for layer %d, %s: %d views", layer, label, len(doc.components))
    return doc
