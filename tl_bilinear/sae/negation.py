"""Is a "not <feeling>" output feature an AND gate between negation and sentiment input features? (paper §5)

On probe sentences of the built-in corpus ("{name} was not {feeling}." against
"{name} was {feeling}."), at the feeling word: output features (the dictionary after
the MLP) that fire for the negated form and not the plain one; input features (the
dictionary at the MLP input) that separate the two forms (negation) or that fire in
both (sentiment). The output feature's interaction matrix in the input basis then says
whether the negation x sentiment cross terms stand out against its typical entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tl_bilinear.analysis import as_dictionary, eigendecompose, feature_interactions, mlp_input, mlp_input_hook_names
from tl_bilinear.compat import HookedTransformer
from tl_bilinear.data.story_templates import NEG_FEELINGS, POS_FEELINGS

NAMES = ("tom", "lily", "ben", "mia", "sam", "anna")


@dataclass(frozen=True)
class NegationStudy:
    """The outcome of :func:`negation_study` for one feeling group.

    Attributes:
        output_feature: the output feature most specific to the negated form.
        output_score: its mean activation on negated minus plain sentences.
        negation_features: input features most active on negated versus plain.
        sentiment_features: other input features most active on the feeling word in both forms.
        cross: [n_neg, n_sent] their entries in the output feature's ``D Q Dᵀ``.
        cross_scores: [n_neg, n_sent] ``|entry| / typical off-diagonal std``.
        best_cross_rank: rank of the strongest cross pair among all pairs of the matrix (0 = top).
        scale: the typical cross-interaction scale (std of the off-diagonal entries).
        top_eigenvalues: the largest |λ| of the output feature's Q, largest first.
        texts: the number of negated / plain probe sentences.
    """

    output_feature: int
    output_score: float
    negation_features: list[int]
    sentiment_features: list[int]
    cross: Tensor
    cross_scores: Tensor
    best_cross_rank: int
    scale: float
    top_eigenvalues: Tensor
    texts: int


@torch.no_grad()
def _at_word(model: HookedTransformer, layer: int, texts: list[str], words: list[str]) -> tuple[Tensor, Tensor]:
    """MLP input and output at the last token of ``word`` in each text: ([n, d_model], [n, d_model])."""
    xs, ys = [], []
    names = set(mlp_input_hook_names(model, layer)) | {f"blocks.{layer}.hook_mlp_out"}
    for text, word in zip(texts, words):
        prefix = text[: text.index(word) + len(word)]
        position = model.to_tokens(prefix).shape[1] - 1
        _, cache = model.run_with_cache(text, names_filter=lambda n: n in names, stop_at_layer=layer + 1)
        xs.append(mlp_input(model, layer, cache)[0, position])
        ys.append(cache[f"blocks.{layer}.hook_mlp_out"][0, position])
    return torch.stack(xs), torch.stack(ys)


def negation_study(
    model: HookedTransformer,
    layer: int,
    in_features: object,
    out_features: object,
    *,
    negated: str = "pos",
    contrast: str = "plain",
    top: int = 3,
) -> NegationStudy:
    """Find the output feature of "not <feeling>" and measure its negation x sentiment interactions.

    Args:
        model: a model trained on the built-in corpus (it has "was not happy" sentences).
        layer: the layer both dictionaries sit around.
        in_features: the dictionary at the MLP input.
        out_features: the dictionary at the MLP output.
        negated: ``"pos"`` ("not happy") or ``"neg"`` ("not sad").
        contrast: how the output feature is chosen: ``"plain"``, its mean activation on the negated
            sentences minus that on the plain ones; ``"polarity"``, minus the larger of that and its
            mean on the other polarity negated ("not sad" for "not happy"), which passes over a
            generic "after *not*" feature for one specific to this polarity.
        top: negation and sentiment input features kept.

    Returns:
        The NegationStudy.

    Raises:
        ValueError: if ``negated`` is neither "pos" nor "neg", ``contrast`` neither "plain" nor
            "polarity", or a dictionary does not match.
    """
    if negated not in ("pos", "neg"):
        raise ValueError(f"negated={negated!r} must be 'pos' or 'neg'")
    if contrast not in ("plain", "polarity"):
        raise ValueError(f"contrast={contrast!r} must be 'plain' or 'polarity'")
    feelings, others = (POS_FEELINGS, NEG_FEELINGS) if negated == "pos" else (NEG_FEELINGS, POS_FEELINGS)
    d_in, d_out = as_dictionary(in_features, model.cfg.d_model), as_dictionary(out_features, model.cfg.d_model)
    pairs = [(name, f) for name in NAMES for f in feelings]
    words = [f" {f}" for _, f in pairs]
    x_not, y_not = _at_word(model, layer, [f"{n} was not {f}." for n, f in pairs], words)
    x_plain, y_plain = _at_word(model, layer, [f"{n} was {f}." for n, f in pairs], words)
    out_not, out_plain = d_out.encode(y_not), d_out.encode(y_plain)  # [n, d_sae_out]
    baseline = out_plain.mean(0)
    if contrast == "polarity":
        other = [(name, f) for name in NAMES for f in others]
        _, y_other = _at_word(model, layer, [f"{n} was not {f}." for n, f in other], [f" {f}" for _, f in other])
        baseline = torch.maximum(baseline, d_out.encode(y_other).mean(0))
    specific = out_not.mean(0) - baseline
    feature = int(specific.argmax())
    in_not, in_plain = d_in.encode(x_not), d_in.encode(x_plain)  # [n, d_sae_in]
    negation = (in_not.mean(0) - in_plain.mean(0)).topk(top).indices
    both = torch.minimum(in_not.mean(0), in_plain.mean(0))
    both[negation] = -torch.inf  # a feature is counted as negation or as sentiment, not both
    sentiment = both.topk(top).indices
    result = feature_interactions(model, layer, d_out, feature, d_in, top=1, dtype=torch.float64)
    M, scale = result.matrices[0], result.scale[0]
    cross = M[negation][:, sentiment]
    upper = torch.triu_indices(len(M), len(M))
    entries = M[upper[0], upper[1]].abs()
    best_rank = int((entries > cross.abs().max()).sum())
    eig = eigendecompose(model, layer, d_out.W_enc[:, feature].double(), k=6, method="dense")
    return NegationStudy(
        output_feature=feature,
        output_score=float(specific[feature]),
        negation_features=negation.tolist(),
        sentiment_features=sentiment.tolist(),
        cross=cross,
        cross_scores=cross.abs() / scale,
        best_cross_rank=best_rank,
        scale=float(scale),
        top_eigenvalues=eig.eigenvalues[0],
        texts=len(pairs),
    )
