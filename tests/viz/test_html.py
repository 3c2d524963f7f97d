"""Offline, injection-safe HTML documents: bundle inlined once, JSON and tokens escaped."""

import html
import json
import math
import re

import numpy as np
import pytest
import torch

from tests.helpers.text import NASTY
from tests.viz.helpers import rendered_props
from tl_bilinear.viz.html import BUNDLE_PATH, HTMLDocument, clean_values, script_json, symmetric_bound
from tl_bilinear.viz.tokens import colored_tokens, colored_tokens_multi

TOKENS = NASTY + ["😀", "", " sad", "\n"]


def test_bundle_inlined_once_and_no_cdn():
    doc = colored_tokens(["a"], [1.0]) + colored_tokens(["b"], [2.0]) + colored_tokens_multi(["c"], [[1.0, 2.0]])
    page = doc.to_html()
    bundle_marker = "var CircuitsVis="
    assert bundle_marker in BUNDLE_PATH.read_text(encoding="utf-8")
    assert page.count(bundle_marker) == 1
    assert doc._repr_html_().count(bundle_marker) == 1
    assert "unpkg.com" not in page and not re.search(r"src=[\"']?https?:", page)  # nothing loaded from the network
    assert 'type="module"' not in page and "import {" not in page
    assert len(rendered_props(page)) == 3


def test_no_token_can_close_the_script_or_inject():
    doc = colored_tokens(TOKENS, range(len(TOKENS)))
    page = doc.to_html()
    # the only closing script tags are the two real ones (bundle, render calls)
    assert len(re.findall(r"</script", page, flags=re.IGNORECASE)) == 2
    assert "<script>alert(1)" not in page and "<s>" not in page and "<b>" not in page
    assert "\u2028" not in page and "\u2029" not in page
    ((_, name, props),) = rendered_props(page)
    assert name == "ColoredTokens"
    # the component renders tokens as HTML, so it receives them HTML-escaped
    assert props["tokens"] == [html.escape(t) for t in TOKENS]
    assert props["tokens"][NASTY.index("&amp;")] == "&amp;amp;"
    assert "😀" in props["tokens"] and "" in props["tokens"]


def test_script_json_escapes_and_round_trips():
    value = {"t": "</script><!-- & \u2028\u2029 >"}
    text = script_json(value)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == value
    with pytest.raises(ValueError):
        script_json({"x": float("nan")})


def test_titles_and_labels_are_escaped():
    page = colored_tokens(["a"], [1], title="<i>t</i>").to_html()
    assert "&lt;i&gt;t&lt;/i&gt;" in page and "<i>" not in page
    props = rendered_props(colored_tokens_multi(["a"], [[1.0]], labels=["<b>x"]).to_html())[0][2]
    assert props["labels"] == ["<b>x"]  # rendered by React as text: must not be entity-escaped
    assert HTMLDocument(title="<x>").to_html().count("<title>&lt;x&gt;</title>") == 1


def test_values_numpy_tensor_nan_inf_and_zero():
    values, missing = clean_values(np.array([np.float32(1.5), np.nan, np.inf, -np.inf, 0]))
    assert values == [1.5, None, None, None, 0.0] and missing == [1, 2, 3]
    assert all(type(v) is float for v in values if v is not None)
    assert clean_values(torch.tensor([2.0, float("nan")]))[0] == [2.0, None]
    assert symmetric_bound([0.0, None, 0.0]) == 1.0 and symmetric_bound([-3.0, 2.0]) == 3.0
    doc = colored_tokens(["a", "b", "c", "d"], np.array([np.float64(-4), np.nan, np.inf, 2]))
    page = doc.to_html()
    props = rendered_props(page)[0][2]
    assert props["values"] == [-4.0, None, None, 2.0]
    assert props["minValue"] == -4.0 and props["maxValue"] == 4.0  # symmetric around 0
    assert "2 value(s) are NaN or infinite" in page
    zero = rendered_props(colored_tokens(["a", "b"], [0.0, 0.0]).to_html())[0][2]
    assert zero["minValue"] == -1.0 and zero["maxValue"] == 1.0  # never a zero range
    nan_only = rendered_props(colored_tokens(["a"], [math.nan]).to_html())[0][2]
    assert nan_only["values"] == [None] and nan_only["maxValue"] == 1.0


def test_multi_bounds_are_symmetric_per_column_or_shared():
    values = torch.tensor([[1.0, -10.0], [-2.0, 5.0], [float("nan"), 0.0]])
    props = rendered_props(colored_tokens_multi(["a", "b", "c"], values).to_html())[0][2]
    assert props["positiveBounds"] == [2.0, 10.0] and props["negativeBounds"] == [-2.0, -10.0]
    assert props["values"][2] == [0.0, 0.0]
    shared = rendered_props(colored_tokens_multi(["a", "b", "c"], values, shared_scale=True).to_html())[0][2]
    assert shared["positiveBounds"] == [10.0, 10.0]


def test_length_mismatch_and_bad_types_raise():
    with pytest.raises(ValueError, match="2 tokens but 3 values"):
        colored_tokens(["a", "b"], [1, 2, 3])
    with pytest.raises(ValueError, match="2 tokens but 1 rows"):
        colored_tokens_multi(["a", "b"], [[1.0]])
    with pytest.raises(ValueError, match="labels"):
        colored_tokens_multi(["a"], [[1.0, 2.0]], labels=["x"])
    with pytest.raises(TypeError, match="one string"):
        colored_tokens("ab", [1, 2])
    with pytest.raises(TypeError, match="strings"):
        colored_tokens([1], [1])
    with pytest.raises(TypeError, match="number"):
        colored_tokens(["a"], ["x"])


def test_save_writes_a_full_page(tmp_path):
    path = colored_tokens(["a"], [1.0]).save(tmp_path / "sub" / "v.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and 'charset="utf-8"' in text


def test_partial_utf8_tokens_read_as_byte_escapes(text_model):
    from tl_bilinear.analysis import vocab_strings
    from tl_bilinear.viz.tokens import display_vocab, readable_token

    tok = text_model.tokenizer
    decoded, shown = vocab_strings(text_model), display_vocab(text_model)
    assert "\ufffd" in "".join(decoded)  # the byte tokens of the byte-level alphabet
    assert "\ufffd" not in "".join(shown)
    lead = tok.convert_tokens_to_ids("ð")  # the byte 0xF0, first byte of 4-byte characters such as emoji
    assert decoded[lead] == "\ufffd" and shown[lead] == "\\xf0"
    assert all(s == d for s, d in zip(shown, decoded) if "\ufffd" not in d)  # everything else unchanged
    ids = tok("😀 sad", add_special_tokens=False)["input_ids"]
    assert "".join(shown[i] for i in ids) == "\\xf0\\x9f\\x98\\x80 sad"
    assert readable_token("\ufffd", "<0xF0>") == "<0xF0>"  # SentencePiece byte fallback stays readable
    assert readable_token("\ufffd", None) == "\ufffd"


def test_unusable_max_abs_falls_back_to_the_values():
    for bad in (0.0, math.nan, math.inf, -2.0):
        props = rendered_props(colored_tokens(["a", "b"], [3.0, -1.0], max_abs=bad).to_html())[0][2]
        assert props["minValue"] == -3.0 and props["maxValue"] == 3.0
    props = rendered_props(colored_tokens(["a"], [3.0], max_abs=10).to_html())[0][2]
    assert props["maxValue"] == 10.0


def test_component_name_cannot_inject_script():
    with pytest.raises(ValueError, match="identifier"):
        HTMLDocument().add_component("ColoredTokens,{});alert(1);//", {"tokens": []})
    assert (
        HTMLDocument().add_component("ColoredTokens", {"tokens": ["a"], "values": [1.0]}).components[0].view
        == "ColoredTokens"
    )


def test_multi_scales_tiny_columns_instead_of_a_rounded_zero_range():
    values = [[1e-8, 2.0], [-5e-9, -1.0], [0.0, 0.5]]
    props = rendered_props(colored_tokens_multi(["a", "b", "c"], values, labels=["tiny", "big"]).to_html())[0][2]
    assert props["labels"] == ["tiny (×1e+08)", "big"]
    assert props["positiveBounds"] == pytest.approx([1.0, 2.0]) and props["negativeBounds"] == pytest.approx(
        [-1.0, -2.0]
    )
    assert [row[0] for row in props["values"]] == pytest.approx([1.0, -0.5, 0.0])
    assert [row[1] for row in props["values"]] == [2.0, -1.0, 0.5]
    assert all(round(b, 6) > 0 for b in props["positiveBounds"])  # what circuitsvis keeps of them
    subnormal = rendered_props(colored_tokens_multi(["a", "b"], [[1e-310], [-5e-311]]).to_html())[0][2]
    assert subnormal["positiveBounds"] == pytest.approx([1.0]) and subnormal["labels"] == ["0 (×1e+310)"]


def test_notebook_output_does_not_restyle_the_page():
    doc = colored_tokens(["a"], [1.0])
    assert "body{" not in doc._repr_html_()  # a notebook's own <body> keeps its layout
    page = doc.to_html()
    assert page.count("body{") == 1 and page.index("body{") < page.index("<body>")
