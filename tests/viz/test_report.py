"""Plots, the HTML report and the `analyze` command on a real (tiny) model and tokenizer."""

import base64
import io
import re

import matplotlib.image
import numpy as np
import pytest
import torch

import tl_bilinear
from tests.helpers.cli import run_main
from tests.helpers.text import CORPUS
from tests.viz.helpers import rendered_props
from tl_bilinear.analysis import effective_rank, spectrum
from tl_bilinear.data import TokenBlockStream
from tl_bilinear.viz import analysis_report, effective_rank_figure, save_figure, spectrum_figure

TEXT = "The dog was sad <s> &amp; <script>alert(1)</script> then happy. " * 3


def escaped(text: str) -> str:
    """The HTML escaping the report must apply, written out independently of ``html.escape``."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        text = text.replace(char, entity)
    return text


def decoded_png(data: bytes) -> np.ndarray:
    """The pixels of a PNG, decoded (raises for anything that is not a readable PNG)."""
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def assert_drawn(pixels: np.ndarray) -> None:
    """An RGBA image of plot size with something drawn on it (not one flat colour)."""
    assert pixels.ndim == 3 and pixels.shape[2] == 4 and min(pixels.shape[:2]) >= 200
    assert pixels[..., :3].std() > 0.01


def test_plots_write_pngs(tmp_path, text_model):
    lam = spectrum(text_model, 0, text_model.W_U[:, :20].T.detach())
    path = save_figure(spectrum_figure(lam[0], label='" sad"'), tmp_path / "spectrum.png")
    assert_drawn(decoded_png(path.read_bytes()))
    hist = save_figure(effective_rank_figure(effective_rank(lam)), tmp_path / "ranks.png")
    assert_drawn(decoded_png(hist.read_bytes()))
    with pytest.raises(ValueError, match="1-D"):
        spectrum_figure(torch.zeros(2, 3))
    spectrum_figure(torch.tensor([0.0, float("nan")]))  # degenerate input still draws


def test_report_has_every_section(text_model, tmp_path):
    dataset = TokenBlockStream(CORPUS[:12], text_model.tokenizer, 16).batches(4, drop_last=False)
    doc = analysis_report(
        text_model, 1, " sad", versus=" happy", text=TEXT, dataset=dataset, k=3, n_contexts=3, rank_sample=32
    )
    page = doc.save(tmp_path / "report.html").read_text(encoding="utf-8")
    for section in (
        "Model",
        "Spectrum",
        "Direct-path tokens",
        "Activations on the text",
        "Top-activating dataset contexts",
    ):
        assert f"<h2>{section}</h2>" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    for image in images:
        assert_drawn(decoded_png(base64.b64decode(image)))
    names = [name for _, name, _ in rendered_props(page)]
    assert len(names) == len(doc.components)
    # direct path: 3 eigenvectors x (top, bottom); text: total, reconstruction (+ the multi view);
    # contexts: 3 for the direction and 3 for each of the 3 eigenvectors
    assert names.count("ColoredTokensMulti") == 1 and names.count("ColoredTokens") == 6 + 2 + 3 + 9
    label = "' sad' minus ' happy'"
    assert f"<h1>{escaped('tl-bilinear: layer 1, ' + label)}</h1>" in page
    assert f"Direction u: {escaped(label)}; layer 1;" in page
    assert label not in page and "<script>alert(1)" not in page
    # the text's tokens reach circuitsvis escaped exactly once
    views = [props for _, name, props in rendered_props(page) if name == "ColoredTokens"]
    text_view = views[6]  # after the direct-path rows: 3 eigenvectors x (top, bottom)
    shown = [text_model.tokenizer.decode([i]) for i in text_model.to_tokens(TEXT, truncate=False)[0].tolist()]
    assert text_view["tokens"] == [escaped(t) for t in shown]
    for nasty in ("<script>alert(1)</script>", "<s>", "&amp;"):
        assert nasty in shown and escaped(nasty) in text_view["tokens"]


def test_report_errors(text_model):
    with pytest.raises(IndexError, match="out of range"):
        analysis_report(text_model, 2, " sad")
    with pytest.raises(ValueError, match="near matches"):
        analysis_report(text_model, 0, " sadd")


@pytest.fixture(scope="module")
def checkpoint(text_model, tmp_path_factory):
    return tl_bilinear.save(text_model, tmp_path_factory.mktemp("ckpt") / "model")


def test_analyze_command_writes_the_report(checkpoint, tmp_path, capsys):
    text = tmp_path / "story.txt"
    text.write_text(TEXT, encoding="utf-8")
    docs = tmp_path / "docs.txt"
    docs.write_text("<|endoftext|>".join(CORPUS[:6]), encoding="utf-8")
    out = tmp_path / "report.html"
    args = ["--layer", 0, "--token", " sad", "--vs", " happy", "--text", text, "--out", out, "--dataset", docs]
    status, _ = run_main("analyze", checkpoint, *args, "--max-batches", 2, "--k", 2, capsys=capsys)
    assert status == 0
    page = out.read_text(encoding="utf-8")
    assert "Top-activating dataset contexts" in page and "Activations on the text" in page


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layer", "7", "--token", " sad"], "--layer 7 is out of range"),
        (["--layer", "0", "--token", " sadd"], "near matches: ' sad'"),
        (["--layer", "0", "--token", " sad", "--vs", "hapy"], "--vs 'hapy'"),
    ],
)
def test_analyze_command_bad_input(checkpoint, tmp_path, capsys, args, message):
    status, err = run_main(
        "analyze", checkpoint, *args, "--out", tmp_path / "r.html", "--dataset", "none", capsys=capsys
    )
    assert status == 2 and message in err


def test_tl_bilinear_command_dispatches_analyze(checkpoint, tmp_path, capsys):
    from tl_bilinear.cli import main as tl_bilinear_main

    out = tmp_path / "r.html"
    assert (
        tl_bilinear_main(
            ["analyze", str(checkpoint), "--layer", "1", "--token", " happy", "--dataset", "none", "--out", str(out)]
        )
        == 0
    )
    assert "<h2>Spectrum</h2>" in out.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        tl_bilinear_main(["analyze", str(checkpoint), "--layer", "-1", "--token", " happy", "--out", str(out)])
    assert "tl-bilinear analyze: error: --layer -1 is out of range" in capsys.readouterr().err


def test_report_shows_partial_utf8_tokens_as_byte_escapes(text_model):
    page = analysis_report(text_model, 0, " sad", text="The dog 😀 was sad.", k=2, rank_sample=0).to_html()
    tokens = [t for _, _, props in rendered_props(page) for t in props["tokens"]]
    assert "\ufffd" not in "".join(tokens)
    assert "\\xf0" in tokens and "\\x80" in tokens  # the emoji's four byte tokens
