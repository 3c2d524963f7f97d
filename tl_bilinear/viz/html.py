"""Self-contained HTML documents of circuitsvis components, safe with untrusted tokens.

circuitsvis renders React components from a JavaScript bundle. Its own ``str()`` and
``show_code()`` import that bundle from a CDN (a blank page offline), its
``_repr_html_`` probes the internet at display time, it inserts token text as raw
HTML, and it cannot serialise numpy scalars or NaN. :class:`HTMLDocument` fixes these:

* the bundle shipped inside the circuitsvis wheel (``circuitsvis/dist/cdn/iife.js``) is
  inlined exactly once per document, in a classic ``<script>``, so a saved file and a
  notebook output both render with no network;
* component props are JSON in which ``<``, ``>``, ``&``, U+2028 and U+2029 are written
  as ``\\uXXXX`` escapes, so no string can close the ``<script>`` element;
* token text is HTML-escaped before it reaches the component (which renders tokens with
  ``innerHTML``), so ``<s>`` shows as the characters ``<s>``;
* every other piece of text on the page goes through :func:`html.escape`.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import circuitsvis

#: The JavaScript bundle shipped in the circuitsvis wheel (defines ``var CircuitsVis``).
BUNDLE_PATH = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"

#: Page-level style of a saved file only (in a notebook it would restyle the whole page).
_PAGE_STYLE = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em;max-width:1200px}"
#: Style of the document's own elements (scoped to ``.tlb-doc``), also in notebook outputs.
_STYLE = """
.tlb-doc h2{margin-top:1.4em;border-bottom:1px solid #ddd}
.tlb-doc h3{margin:1em 0 .3em}
.tlb-doc table.tlb-table{border-collapse:collapse;margin:.5em 0}
.tlb-doc table.tlb-table td,.tlb-doc table.tlb-table th{border:1px solid #ddd;padding:2px 8px;text-align:right}
.tlb-doc .tlb-note{color:#666;font-size:90%}
.tlb-doc .tlb-missing{color:#a40;font-size:90%}
.tlb-doc .tlb-view{margin:4px 0}
.tlb-doc .tlb-label{font-weight:bold;display:block;margin-top:.6em}
"""


@functools.lru_cache(maxsize=1)
def circuitsvis_bundle() -> str:
    """The circuitsvis JavaScript bundle, safe to place inside a ``<script>`` element.

    Returns:
        The bundle's source with every ``</script`` written as ``<\\/script`` (it only
        occurs inside string literals, where the two spellings are the same string).

    Raises:
        FileNotFoundError: if the installed circuitsvis wheel has no bundle.
    """
    if not BUNDLE_PATH.is_file():
        raise FileNotFoundError(
            f"circuitsvis bundle not found at {BUNDLE_PATH}; reinstall circuitsvis (pip install -U circuitsvis)"
        )
    source = BUNDLE_PATH.read_text(encoding="utf-8")
    return re.sub(r"</(script)", r"<\\/\1", source, flags=re.IGNORECASE)


def script_json(value: Any) -> str:
    """JSON for a ``<script>`` element: no ``<``, ``>``, ``&``, U+2028 or U+2029 left raw.

    Args:
        value: plain JSON data (dicts, lists, str, int, float without NaN, None, bool).

    Returns:
        JSON text that cannot end the script element or start an HTML comment.

    Raises:
        ValueError: if the data holds NaN or infinity (clean it with :func:`clean_values`).
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for char, escape in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def escape_token(token: str) -> str:
    """HTML-escape a token for circuitsvis, which renders token text with ``innerHTML``.

    Args:
        token: the token's text (any string, the empty one included).

    Returns:
        The text with ``&``, ``<``, ``>`` and quotes as entities; shown literally.

    Raises:
        TypeError: if ``token`` is not a string.
    """
    if not isinstance(token, str):
        raise TypeError(f"tokens must be strings, got {token!r} of type {type(token).__name__}")
    return html.escape(token, quote=True)


def clean_values(values: Any) -> tuple[list[float | None], list[int]]:
    """Plain Python floats from a list, numpy array or tensor; NaN/inf become ``None``.

    Args:
        values: a flat sequence of numbers (numpy scalars and 0-d tensors included).

    Returns:
        ``(floats, missing)``: the values as floats with ``None`` where a value was NaN
        or infinite, and the indices of those missing values.

    Raises:
        TypeError: if an entry is not a number.
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().tolist()
    elif hasattr(values, "tolist"):
        values = values.tolist()
    out: list[float | None] = []
    missing: list[int] = []
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"value {i} is {value!r}; expected a number") from None
        if math.isfinite(number):
            out.append(number)
        else:
            out.append(None)
            missing.append(i)
    return out, missing


def symmetric_bound(values: Sequence[float | None]) -> float:
    """Half-width of a colour scale centred on 0: max |v| over finite values, never 0.

    Args:
        values: floats, ``None`` for missing ones.

    Returns:
        ``max |v|``, or 1.0 when there is no nonzero finite value.
    """
    bound = max((abs(v) for v in values if v is not None), default=0.0)
    return bound if bound > 0 else 1.0


@dataclass
class Component:
    """One circuitsvis React component: its exported name and JSON-ready props."""

    name: str
    props: dict[str, Any]
    view: str = ""


@dataclass
class HTMLDocument:
    """A sequence of static HTML fragments and circuitsvis components.

    Views (``colored_tokens`` ...) return one; documents concatenate with ``+`` and
    :meth:`extend`. Displaying it in a notebook (``_repr_html_``) or saving it
    (:meth:`save`) inlines the circuitsvis bundle once, so neither needs the network.
    """

    parts: list[str | Component] = field(default_factory=list)
    title: str = "tl-bilinear"

    def add_html(self, fragment: str) -> HTMLDocument:
        """Append trusted HTML (escape any user text in it with :func:`html.escape`).

        Args:
            fragment: the HTML, inserted as is.

        Returns:
            This document.
        """
        self.parts.append(fragment)
        return self

    def add_text(self, text: str, tag: str = "p", css_class: str | None = None) -> HTMLDocument:
        """Append ``text`` escaped inside ``<tag>``.

        Args:
            text: plain text (escaped).
            tag: the element, e.g. ``"p"`` or ``"h1"`` (trusted, not escaped).
            css_class: optional class attribute.

        Returns:
            This document.
        """
        cls = f' class="{html.escape(css_class)}"' if css_class else ""
        self.parts.append(f"<{tag}{cls}>{html.escape(text)}</{tag}>")
        return self

    def add_component(self, name: str, props: dict[str, Any], view: str = "") -> HTMLDocument:
        """Append a circuitsvis component.

        Args:
            name: the component as exported by ``CircuitsVis`` (e.g. ``"ColoredTokens"``).
            props: its JSON-ready props (token text already HTML-escaped).
            view: a name for the ``data-view`` attribute (default: ``name``).

        Returns:
            This document.

        Raises:
            ValueError: if ``name`` is not a JavaScript identifier, or the props hold
                NaN or infinity.
            TypeError: if the props are not JSON-serialisable.
        """
        if not (isinstance(name, str) and name.isidentifier() and name.isascii()):
            raise ValueError(
                f"component name {name!r} must be an identifier exported by CircuitsVis, e.g. 'ColoredTokens'"
            )
        script_json(props)  # fail now on props that cannot be serialised
        self.parts.append(Component(name, props, view or name))
        return self

    def extend(self, other: HTMLDocument) -> HTMLDocument:
        """Append all parts of ``other``.

        Args:
            other: another document (its title is ignored).

        Returns:
            This document.
        """
        self.parts.extend(other.parts)
        return self

    def __add__(self, other: HTMLDocument) -> HTMLDocument:
        return HTMLDocument(list(self.parts) + list(other.parts), self.title)

    @property
    def components(self) -> list[Component]:
        """The circuitsvis components in document order."""
        return [p for p in self.parts if isinstance(p, Component)]

    def body_html(self) -> str:
        """The document as an HTML fragment: content, then the bundle, then the renders.

        Element ids get a fresh random prefix per call, so several outputs can share
        one notebook page.
        """
        prefix = "tlb-" + uuid.uuid4().hex[:10]
        body: list[str] = []
        calls: list[str] = []
        for i, part in enumerate(self.parts):
            if isinstance(part, str):
                body.append(part)
                continue
            element_id = f"{prefix}-{i}"
            body.append(f'<div class="tlb-view" id="{element_id}" data-view="{html.escape(part.view)}"></div>')
            calls.append(
                f'try{{CircuitsVis.render("{element_id}",CircuitsVis.{part.name},{script_json(part.props)});}}'
                f'catch(e){{console.error("tl-bilinear: {part.name} failed to render",e);}}'
            )
        out = ['<div class="tlb-doc">', f"<style>{_STYLE}</style>", *body, "</div>"]
        if calls:
            out.append(f"<script>{circuitsvis_bundle()}</script>")
            out.append("<script>\n" + "\n".join(calls) + "\n</script>")
        return "\n".join(out)

    def to_html(self) -> str:
        """A complete, self-contained HTML page (no network needed to view it)."""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_PAGE_STYLE}</style></head>\n"
            f"<body>\n{self.body_html()}\n</body></html>\n"
        )

    def _repr_html_(self) -> str:
        return self.body_html()

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path`` (UTF-8), creating parent folders.

        Args:
            path: the output file, e.g. ``"report.html"``.

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path
