"""``tl-bilinear convert`` and ``anneal``: checkpoints that load, generate, info and analyze accept."""

import json

import pytest

import tl_bilinear
from tests.helpers.cli import run_main
from tests.helpers.official import random_official, write_snapshot


@pytest.fixture()
def official_snapshot(tmp_path, tokenizer_dir):
    vocab = len(tl_bilinear.data.load_tokenizer(tokenizer_dir))  # every id, special tokens included
    config, state = random_official(vocab, n_layer=2, d_model=32, n_head=4, d_hidden=64)
    config["n_ctx"] = 32
    return write_snapshot(tmp_path / "snapshot", config, state, tokenizer_dir)


def test_convert_then_load_generate_info_analyze(official_snapshot, tmp_path, capsys):
    out = tmp_path / "converted"
    status, err = run_main("convert", official_snapshot, "--out", out, capsys=capsys)
    assert status == 0, err
    model = tl_bilinear.load(out)
    assert model.cfg.act_fn == "bilinear" and model.cfg.n_layers == 2 and model.tokenizer is not None
    assert run_main("generate", out, "--prompt", "the dog", "--max-new-tokens", "5", "-n", "1", capsys=capsys)[0] == 0
    assert run_main("info", out, "--json", capsys=capsys)[0] == 0
    token = model.tokenizer.convert_ids_to_tokens(model.to_tokens(" dog", prepend_bos=False)[0, :1].tolist())[0]
    token = model.tokenizer.convert_tokens_to_string([token])
    report = tmp_path / "report.html"
    status, err = run_main(
        "analyze", out, "--layer", "1", "--token", token, "--out", report, "--dataset", "none", capsys=capsys
    )
    assert status == 0, err
    assert report.stat().st_size > 0
    status, err = run_main("convert", official_snapshot, "--out", out, capsys=capsys)
    assert status == 2 and "already exists; choose another directory or pass --force" in err


def test_convert_bad_snapshot_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, err = run_main("convert", tmp_path / "empty", "--out", tmp_path / "x", capsys=capsys)
    assert status == 2 and "has no config.json" in err and "Traceback" not in err


def test_anneal_cli_writes_a_bilinear_run(swiglu_run, tmp_path, capsys):
    out = tmp_path / "annealed"
    args = ["anneal", swiglu_run, "--out", out, "--tokens", "768", "--anneal-frac", "0.5", "--no-progress"]
    status, err = run_main(
        *args, "--threads", "1", "--device", "cpu", "--warmup", "1", "--log-every", "1", capsys=capsys
    )
    assert status == 0, err
    model = tl_bilinear.load(out)
    assert model.cfg.act_fn == "bilinear"
    saved = json.loads((out / "checkpoint" / "config.json").read_text())["train_config"]
    assert saved["data"] == "builtin" and saved["batch_size"] == 4  # inherited from the source run
    betas = [json.loads(line)["beta"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert betas[0] == pytest.approx(2 / 3) and betas[-1] == 0.0
    assert run_main("info", out, capsys=capsys)[0] == 0
    # annealing a bilinear checkpoint is refused in one line
    status, err = run_main("anneal", out, "--out", tmp_path / "again", "--tokens", "768", capsys=capsys)
    assert status == 2 and "already bilinear" in err
