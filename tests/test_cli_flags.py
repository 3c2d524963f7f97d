"""Hostile-but-ordinary flags are refused up front: one line naming the value and the fix, no traceback."""

import pytest

import tl_bilinear
from tests.helpers.cli import run_main


def refused(status, err, *needles):
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, text_model):
    return tl_bilinear.save(text_model, tmp_path_factory.mktemp("ckpt") / "run", tokenizer=text_model.tokenizer)


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--lr", "inf"], ["--lr", "'inf' is not a finite number"]),
        (["--lr", "nan"], ["--lr", "'nan'"]),
        (["--lr", "1e6"], ["lr must be a finite number in (0, 1]", "1000000.0"]),
        (["--final-lr-frac", "nan"], ["--final-lr-frac", "'nan'"]),
        (["--weight-decay", "inf"], ["--weight-decay", "'inf'"]),
        (["--grad-clip=-inf"], ["--grad-clip", "'-inf'"]),
    ],
)
def test_train_refuses_non_finite_and_absurd_floats_before_anything_is_written(flags, needles, tmp_path, capsys):
    refused(*run_main("train", "--out", tmp_path / "run", "--preset", "ts-micro", *flags, capsys=capsys), *needles)
    assert not (tmp_path / "run").exists()


def test_a_config_file_with_an_absurd_lr_is_refused(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"lr": 1e6}')
    refused(*run_main("train", "--out", tmp_path / "run", "--config", tmp_path / "c.json", capsys=capsys), "lr must")


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_generate_temperature_must_be_finite(value, checkpoint, capsys):
    refused(*run_main("generate", checkpoint, "--temperature", value, capsys=capsys), "--temperature", repr(value))


def test_demo_minutes_must_be_finite(tmp_path, capsys):
    refused(*run_main("demo", "--out", tmp_path / "d", "--minutes", "inf", "--small", capsys=capsys), "--minutes")
    assert not (tmp_path / "d").exists()


def test_analyze_vs_equal_to_token_and_a_binary_text(checkpoint, tmp_path, capsys):
    out = tmp_path / "r.html"
    status, err = run_main(
        "analyze", checkpoint, "--layer", 0, "--token", " happy", "--vs", " happy", "--out", out, capsys=capsys
    )
    refused(status, err, "--vs ' happy' is the same token as --token", "drop it")
    binary = tmp_path / "ls"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    status, err = run_main(
        "analyze", checkpoint, "--layer", 0, "--token", " happy", "--text", binary, "--out", out, capsys=capsys
    )
    refused(status, err, f"--text {binary}", "not UTF-8", "offset 8")
    assert not out.exists()
