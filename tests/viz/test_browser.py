"""The saved HTML renders in a real headless Chromium with networking disabled.

Checks every circuitsvis view: its token texts appear literally in the DOM, its token
spans are coloured with the sign of their value (blue > 0, red < 0, white for 0 and
missing), no SEVERE console message, and no element created by an injected token.
Writes screenshots (to $TL_BILINEAR_ARTIFACTS if set, else the test's tmp folder).

Never skipped in CI: if env CI is set and chromium/chromedriver are missing, it fails.
"""

import html
import math
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.text import CORPUS, NASTY
from tests.viz.helpers import rendered_props
from tl_bilinear.data import TokenBlockStream
from tl_bilinear.viz import analysis_report, colored_tokens, colored_tokens_multi, topk_samples, topk_tokens

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
JS_SPACE = re.compile("[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        message = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1400",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    yield driver
    driver.quit()


@pytest.fixture
def artifacts(tmp_path):
    folder = Path(os.environ.get("TL_BILINEAR_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def _open_and_check(driver, path: Path, screenshot: Path) -> dict:
    page = path.read_text(encoding="utf-8")
    components = rendered_props(page)
    assert components, "the page has no circuitsvis views"
    driver.get_log("browser")  # drop messages from earlier pages
    driver.get(path.as_uri())
    deadline = time.time() + 120  # a generous wait for the page to render (a busy machine is slow), not a bound
    while time.time() < deadline:
        empty = driver.execute_script(
            "return Array.from(document.querySelectorAll('.tlb-view')).filter(e => !e.querySelector('.colored-tokens')).length"
        )
        if empty == 0:
            break
        time.sleep(0.2)
    assert empty == 0, f"{empty} views did not render"
    assert driver.execute_script("return navigator.onLine") is False  # really offline
    severe = [m for m in driver.get_log("browser") if m["level"] == "SEVERE"]
    assert not severe, severe
    # nothing created by an injected token
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.execute_script("return document.querySelectorAll('script').length") == 2
    assert driver.execute_script("return document.querySelectorAll('s, b, iframe, img:not(.tlb-plot)').length") == 0
    checked = {"views": 0, "positive": 0, "negative": 0, "white": 0}
    for element_id, name, props in components:
        spans = driver.execute_script(
            "return Array.from(document.querySelectorAll('#' + arguments[0] + ' .colored-tokens > span > span'))"
            ".map(s => [s.textContent, getComputedStyle(s).backgroundColor])",
            element_id,
        )
        if name == "ColoredTokens":
            values, bound = props["values"], props["maxValue"]
        else:  # ColoredTokensMulti shows column 0 first
            values, bound = [row[0] for row in props["values"]], props["positiveBounds"][0]
        expected = [JS_SPACE.sub("\u00a0", html.unescape(t)) for t in props["tokens"]]
        assert [text for text, _ in spans] == expected, f"{name} {element_id}: token texts differ"
        for (text, colour), value in zip(spans, values):
            r, g, b = _rgb(colour)
            if value is None or value == 0:
                assert (r, g, b) == (255, 255, 255), (text, value, colour)
                checked["white"] += 1
            elif abs(value) / bound > 0.02:
                if value > 0:
                    assert b > r, (text, value, colour)
                    checked["positive"] += 1
                else:
                    assert r > b, (text, value, colour)
                    checked["negative"] += 1
        checked["views"] += 1
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1200, min(max(height + 50, 600), 6000))
    driver.save_screenshot(str(screenshot))
    driver.set_window_size(1200, 1400)
    assert screenshot.read_bytes()[:4] == b"\x89PNG"
    return checked


def test_views_with_hostile_tokens_and_edge_values(browser, tmp_path, artifacts):
    tokens = NASTY + ["😀", "", " sad", "\n", "ok"]
    n = len(tokens)
    values = [(-1.0) ** i * (i + 1) for i in range(n)]
    values[2], values[5], values[n - 1] = math.nan, math.inf, 0.0
    doc = colored_tokens(tokens, values, title="<b>edge values</b>")
    doc += colored_tokens(["zero", "zero"], [0.0, 0.0], title="all zero")
    doc += colored_tokens_multi(tokens, torch.tensor([[v, -v] for v in values]), labels=["<s>col</s>", "neg"])
    doc += topk_tokens(
        [NASTY[:3], ["a", "b"]],
        [[3.0, 2.0, 1.0], [1.0, 0.5]],
        [["x"], ["</script>"]],
        [[-1.0], [-2.0]],
        labels=["<img src=x onerror=window.__pwned=2>", "f1"],
    )
    doc += topk_samples(
        [[NASTY[:2], ["plain", "&amp;"]]],
        [[[1.0, -1.0], [0.5, math.nan]]],
        labels=["feature"],
        sample_labels=[["<s>one</s>", "two"]],
    )
    path = doc.save(tmp_path / "views.html")
    checked = _open_and_check(browser, path, artifacts / "views.png")
    assert checked["views"] == 1 + 1 + 1 + 4 + 2
    assert checked["positive"] > 5 and checked["negative"] > 5 and checked["white"] >= 5


def test_saved_report_renders_offline(browser, text_model, tmp_path, artifacts):
    text = "The dog was sad. " + " ".join(NASTY) + " Then the cat was happy 😀."
    corpus = [c + " " + NASTY[i % len(NASTY)] for i, c in enumerate(CORPUS[:16])]
    dataset = TokenBlockStream(corpus, text_model.tokenizer, 16).batches(4, drop_last=False)
    doc = analysis_report(
        text_model, 1, " sad", versus=" happy", text=text, dataset=dataset, k=3, n_contexts=3, rank_sample=32
    )
    path = doc.save(tmp_path / "report.html")
    checked = _open_and_check(browser, path, artifacts / "report.png")
    assert checked["views"] == len(doc.components) and checked["positive"] > 0 and checked["negative"] > 0
    assert browser.execute_script("return document.querySelectorAll('img.tlb-plot').length") == 2
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('img.tlb-plot')).every(i => i.complete && i.naturalWidth > 0)"
    )
    body = browser.find_element("tag name", "body").text
    assert "<script>alert(1)</script>" in body.replace("\u00a0", " ")


def test_tiny_values_keep_their_colour_scale(browser, tmp_path, artifacts):
    values = [[1e-8, 1e-9], [-1e-8, -5e-10], [0.0, 0.0]]
    doc = colored_tokens_multi(["up", "down", "zero"], values) + colored_tokens(
        ["up", "down", "zero"], [1e-8, -1e-8, 0.0]
    )
    checked = _open_and_check(browser, doc.save(tmp_path / "tiny.html"), artifacts / "tiny.png")
    assert checked == {"views": 2, "positive": 2, "negative": 2, "white": 2}
