"""Token-level circuitsvis views: thin wrappers that render correctly offline.

Every view returns an :class:`~tl_bilinear.viz.html.HTMLDocument` (display it in a
notebook, ``save`` it, or concatenate it into a report). Compared with calling
circuitsvis directly:

* tokens are HTML-escaped (circuitsvis renders them as HTML);
* values become plain floats; NaN/inf are shown as missing (uncoloured, with a note
  listing their positions) instead of blanking the view;
* colour scales are symmetric around 0 (``-max|v| .. +max|v|``, never a zero range),
  so red always means negative and blue positive at the same intensity per unit;
* mismatched lengths raise a ``ValueError`` naming both lengths.

Known limitation: circuitsvis's hover tooltip prints the token as plain text, so there
it shows the escaped form (``&lt;s&gt;``); the token itself always reads ``<s>``.

circuitsvis's ``TopkTokens`` hard-codes a 0..1 colour scale (negative values come out
white) and ``TopkSamples`` scales positive and negative values separately with no way
to override it, so :func:`topk_tokens` and :func:`topk_samples` are built from
``ColoredTokens`` rows with an explicit symmetric scale instead.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence
from typing import Any

from tl_bilinear.analysis import Vocabulary, vocabulary
from tl_bilinear.compat import HookedTransformer
from tl_bilinear.viz.html import HTMLDocument, clean_values, escape_token, symmetric_bound


@functools.lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """Byte-level BPE's character for each byte (GPT-2 layout), inverted: char -> byte."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\u00a1"), ord("\u00ac") + 1),
        *range(ord("\u00ae"), ord("\u00ff") + 1),
    ]
    shifted = [b for b in range(256) if b not in printable]  # drawn as U+0100, U+0101, ...
    table = {chr(b): b for b in printable}
    table.update({chr(256 + i): b for i, b in enumerate(shifted)})
    return table


def readable_token(decoded: str, raw: str | None) -> str:
    """A token's text for display, with partial UTF-8 shown as ``\\xNN`` instead of U+FFFD.

    A byte-level BPE token that holds only part of a multi-byte character (e.g. the
    first two bytes of an emoji) decodes to ``'\ufffd'``; this returns its bytes with
    the undecodable ones written as ``\\xNN`` (``'\\xf0\\x9f'``). Tokens of other
    tokenizers fall back to their raw token string (e.g. SentencePiece's ``<0xF0>``).

    Args:
        decoded: the token decoded on its own (``tokenizer.decode([id])``).
        raw: the tokenizer's raw token string (``convert_ids_to_tokens(id)``), or None.

    Returns:
        ``decoded`` unchanged unless it holds U+FFFD that ``raw`` does not explain.
    """
    if "\ufffd" not in decoded or not raw or "\ufffd" in raw:
        return decoded
    table = _byte_level_decoder()
    if all(char in table for char in raw):
        return bytes(table[char] for char in raw).decode("utf-8", errors="backslashreplace")
    return raw


def display_vocab(model: HookedTransformer, vocab: Vocabulary | None = None) -> list[str]:
    """The display string of every token id: decoded text, partial UTF-8 as ``\\xNN``.

    Use it (instead of ``vocab_strings``) to label token views, so byte tokens such as
    the pieces of an emoji read ``\\xf0\\x9f`` rather than ``\ufffd``.

    Args:
        model: a HookedTransformer with a tokenizer.
        vocab: the model's decoded Vocabulary, if already built (default: decoded here).

    Returns:
        ``d_vocab`` strings, indexed by token id.

    Raises:
        ValueError: if the model has no tokenizer.
    """
    decoded = (vocabulary(model) if vocab is None else vocab).strings
    raw = model.tokenizer.convert_ids_to_tokens(list(range(len(decoded))))
    return [readable_token(d, r) for d, r in zip(decoded, raw)]


def _check_tokens(tokens: Sequence[str], what: str = "tokens") -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(f"{what} must be a list of token strings, got one string {tokens[:40]!r}")
    return [escape_token(t) for t in tokens]


def _missing_note(missing: list[int], tokens: Sequence[str]) -> str:
    shown = ", ".join(f"{i} ({tokens[i]!r})" for i in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return (
        f'<p class="tlb-missing">{len(missing)} value(s) are NaN or infinite and are shown '
        f"uncoloured: position {html.escape(shown)}{more}</p>"
    )


def _heading(title: str | None) -> str:
    return f"<h3>{html.escape(title)}</h3>" if title else ""


def colored_tokens(
    tokens: Sequence[str],
    values: Any,
    title: str | None = None,
    max_abs: float | None = None,
) -> HTMLDocument:
    """Tokens of a text coloured by one value each (e.g. one eigenvector's activation).

    Args:
        tokens: the token strings, e.g. ``model.to_str_tokens(text)``.
        values: one number per token (list, numpy array or tensor).
        title: optional heading shown above the tokens.
        max_abs: half-width of the colour scale (default ``max |values|``); pass the
            same number to several views to make their colours comparable. A value
            that is not a positive finite number (0, NaN, inf) falls back to the default.

    Returns:
        The view (``_repr_html_`` for notebooks, ``save(path)`` for files).

    Raises:
        ValueError: if ``tokens`` and ``values`` have different lengths.
        TypeError: if a token is not a string or a value is not a number.
    """
    escaped = _check_tokens(tokens)
    cleaned, missing = clean_values(values)
    if len(escaped) != len(cleaned):
        raise ValueError(f"got {len(escaped)} tokens but {len(cleaned)} values; pass exactly one value per token")
    usable = max_abs is not None and math.isfinite(max_abs) and max_abs > 0
    bound = float(max_abs) if usable else symmetric_bound(cleaned)
    doc = HTMLDocument()
    if title:
        doc.add_html(_heading(title))
    doc.add_component(
        "ColoredTokens",
        {"tokens": escaped, "values": cleaned, "minValue": -bound, "maxValue": bound},
        view="colored_tokens",
    )
    if missing:
        doc.add_html(_missing_note(missing, tokens))
    return doc


def colored_tokens_multi(
    tokens: Sequence[str],
    values: Any,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    shared_scale: bool = False,
) -> HTMLDocument:
    """Tokens coloured by one of several value columns (e.g. eigenvectors of a direction).

    Hovering/clicking a label selects the column; hovering a token lists all of its
    values.

    Args:
        tokens: the S token strings.
        values: ``[S, K]`` numbers (nested lists, numpy array or tensor).
        labels: K column names (default ``"0" .. "K-1"``).
        title: optional heading.
        shared_scale: one symmetric scale for all columns (comparable colours) instead
            of one per column (each column uses its full colour range). A column whose
            largest |value| is below 1e-3 is shown multiplied by a power of ten, named
            in its label (e.g. ``"v3 (×1e+08)"``), because circuitsvis rounds the bounds
            of this view to 6 decimals.

    Returns:
        The view.

    Raises:
        ValueError: if the numbers of tokens, rows and labels do not match.
    """
    escaped = _check_tokens(tokens)
    rows = values.tolist() if hasattr(values, "tolist") else [list(r) for r in values]
    if len(rows) != len(escaped):
        raise ValueError(f"got {len(escaped)} tokens but {len(rows)} rows of values; pass values of shape [S, K]")
    width = len(rows[0]) if rows else 0
    if any(not isinstance(r, (list, tuple)) or len(r) != width for r in rows) or (rows and width == 0):
        raise ValueError("values must be a non-empty 2-D array [S, K] with the same K in every row")
    labels = [str(i) for i in range(width)] if labels is None else [str(label) for label in labels]
    if len(labels) != width:
        raise ValueError(f"got {len(labels)} labels for {width} value columns")
    columns = [clean_values([r[j] for r in rows]) for j in range(width)]
    bounds = [symmetric_bound(col) for col, _ in columns]
    if shared_scale:
        bounds = [max(bounds, default=1.0)] * width
    missing = sorted({i for _, miss in columns for i in miss})
    # ColoredTokensMulti rounds its bounds to 6 decimals (a bound below 5e-7 becomes a zero
    # range: every value saturated, zeros transparent), so tiny columns are shown scaled.
    powers = [math.ceil(-math.log10(b)) if b < 1e-3 else 0 for b in bounds]
    labels = [f"{label} (×1e+{p:02d})" if p else label for label, p in zip(labels, powers)]
    bounds = [_times_pow10(b, p) for b, p in zip(bounds, powers)]
    # ColoredTokensMulti builds a numeric tensor: missing values are drawn as 0 (white).
    grid = [
        [_times_pow10(columns[j][0][i], powers[j]) if columns[j][0][i] is not None else 0.0 for j in range(width)]
        for i in range(len(rows))
    ]
    doc = HTMLDocument()
    if title:
        doc.add_html(_heading(title))
    doc.add_component(
        "ColoredTokensMulti",
        {
            "tokens": escaped,
            "values": grid,
            "labels": labels,  # rendered as React text, not HTML
            "positiveBounds": bounds,
            "negativeBounds": [-b for b in bounds],
        },
        view="colored_tokens_multi",
    )
    if missing:
        doc.add_html(_missing_note(missing, tokens))
    return doc


def _times_pow10(value: float, power: int) -> float:
    """``value * 10**power`` in two steps, so that even subnormal values do not overflow."""
    return value * 10.0 ** (power // 2) * 10.0 ** (power - power // 2)


def topk_tokens(
    top_tokens: Sequence[Sequence[str]],
    top_values: Any,
    bottom_tokens: Sequence[Sequence[str]] | None = None,
    bottom_values: Any = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> HTMLDocument:
    """For each feature (eigenvector), its top (and bottom) tokens coloured by value.

    Typical use: the vocabulary tokens that excite each eigenvector most and least
    through the direct path (:func:`tl_bilinear.analysis.direct_path_tokens`).

    Args:
        top_tokens: ``[F][n]`` token strings, strongest first.
        top_values: ``[F][n]`` their values.
        bottom_tokens: optional ``[F][m]`` token strings for the other end.
        bottom_values: ``[F][m]`` their values.
        labels: F feature names (default ``"0" .. "F-1"``).
        title: optional heading.

    Returns:
        The view: per feature a "top" row and a "bottom" row, one symmetric colour
        scale per feature.

    Raises:
        ValueError: if the nested lengths do not match.
    """
    top_values = top_values.tolist() if hasattr(top_values, "tolist") else top_values
    if (bottom_tokens is None) != (bottom_values is None):
        raise ValueError("pass both bottom_tokens and bottom_values, or neither")
    if bottom_values is not None and hasattr(bottom_values, "tolist"):
        bottom_values = bottom_values.tolist()
    n_features = len(top_tokens)
    labels = [str(i) for i in range(n_features)] if labels is None else [str(label) for label in labels]
    if (
        len(top_values) != n_features
        or len(labels) != n_features
        or (bottom_tokens is not None and (len(bottom_tokens) != n_features or len(bottom_values) != n_features))
    ):
        raise ValueError(
            f"top_tokens has {n_features} features but top_values/labels/bottom lists have "
            f"{len(top_values)}/{len(labels)}/{None if bottom_tokens is None else len(bottom_tokens)}"
        )
    doc = HTMLDocument()
    if title:
        doc.add_html(_heading(title))
    for f in range(n_features):
        rows = [("top", top_tokens[f], top_values[f])]
        if bottom_tokens is not None:
            rows.append(("bottom", bottom_tokens[f], bottom_values[f]))
        bound = max(symmetric_bound(clean_values(v)[0]) for _, _, v in rows)
        doc.add_html(f'<div class="tlb-topk-tokens"><span class="tlb-label">{html.escape(labels[f])}</span>')
        for name, tokens, values in rows:
            doc.add_html(f'<div class="tlb-note">{name}</div>')
            doc.extend(colored_tokens(tokens, values, max_abs=bound))
        doc.add_html("</div>")
    _retag(doc, "topk_tokens")
    return doc


def topk_samples(
    tokens: Sequence[Sequence[Sequence[str]]],
    values: Sequence[Sequence[Any]],
    labels: Sequence[str] | None = None,
    sample_labels: Sequence[Sequence[str]] | None = None,
    title: str | None = None,
) -> HTMLDocument:
    """Top-activating contexts: for each feature, its samples as coloured token rows.

    Args:
        tokens: ``[F][n][len]`` token strings of each context (lengths may differ).
        values: ``[F][n][len]`` values per token.
        labels: F feature names (default ``"0" .. "F-1"``).
        sample_labels: optional ``[F][n]`` captions per context (e.g. its max value).
        title: optional heading.

    Returns:
        The view; all contexts of a feature share one symmetric colour scale.

    Raises:
        ValueError: if the nested lengths do not match.
    """
    n_features = len(tokens)
    labels = [str(i) for i in range(n_features)] if labels is None else [str(label) for label in labels]
    if len(values) != n_features or len(labels) != n_features:
        raise ValueError(f"tokens has {n_features} features but values/labels have {len(values)}/{len(labels)}")
    doc = HTMLDocument()
    if title:
        doc.add_html(_heading(title))
    for f in range(n_features):
        if len(values[f]) != len(tokens[f]):
            raise ValueError(f"feature {f}: {len(tokens[f])} token lists but {len(values[f])} value lists")
        cleaned = [clean_values(v)[0] for v in values[f]]
        bound = max((symmetric_bound(c) for c in cleaned), default=1.0)
        doc.add_html(f'<div class="tlb-topk-samples"><span class="tlb-label">{html.escape(labels[f])}</span>')
        for s, (toks, vals) in enumerate(zip(tokens[f], values[f])):
            if sample_labels is not None:
                doc.add_html(f'<div class="tlb-note">{html.escape(str(sample_labels[f][s]))}</div>')
            doc.extend(colored_tokens(toks, vals, max_abs=bound))
        doc.add_html("</div>")
    _retag(doc, "topk_samples")
    return doc


def _retag(doc: HTMLDocument, view: str) -> None:
    for component in doc.components:
        component.view = view
