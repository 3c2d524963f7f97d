"""``tl-bilinear sae train`` and ``sae analyze`` in-process on a tiny saved model."""

import json

import pytest

import tl_bilinear
from tests.helpers.cli import run_main

TINY = ["--tokens", "768", "--batch-size", "128", "--buffer", "256", "--k", "4", "--expansion", "2", "--lr", "3e-3"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, text_model):
    return tl_bilinear.save(text_model, tmp_path_factory.mktemp("ckpt") / "run", tokenizer=text_model.tokenizer)


def test_train_then_analyze(checkpoint, tmp_path, capsys):
    for site in ("mlp_in", "mlp_out"):
        status, err = run_main(
            "sae", "train", checkpoint, "--layer", 1, "--site", site, "--out", tmp_path / site, *TINY, capsys=capsys
        )
        assert status == 0, err
    status, err = run_main(
        "sae", "analyze", checkpoint, "--layer", 1, "--in-sae", tmp_path / "mlp_in", "--out-sae", tmp_path / "mlp_out",
        "--out", tmp_path / "r.html", "--max-k", 8, "--batches", 2, "--features", 2, capsys=capsys,
    )  # fmt: skip
    assert status == 0, err
    page = (tmp_path / "r.html").read_text()
    assert page.count("Output feature") == 2 and "ColoredTokensMulti" in page and "rank 2" in page
    assert "cdn.jsdelivr" not in page and "<img" in page


def test_bad_hook_and_missing_sae(checkpoint, tmp_path, capsys):
    status, err = run_main(
        "sae",
        "train",
        checkpoint,
        "--layer",
        1,
        "--site",
        "blocks.1.hook_mlp_outt",
        "--out",
        tmp_path / "x",
        *TINY,
        capsys=capsys,
    )
    assert (
        status == 2 and "close names" in err and "blocks.1.hook_mlp_out" in err and len(err.strip().splitlines()) == 1
    )
    status, err = run_main(
        "sae",
        "analyze",
        checkpoint,
        "--layer",
        1,
        "--in-sae",
        tmp_path / "none",
        "--out-sae",
        tmp_path / "none",
        capsys=capsys,
    )
    assert status == 2 and "holds no SAE" in err


def test_train_prints_metrics(checkpoint, tmp_path, capsys):
    status = tl_bilinear.cli.main(
        ["sae", "train", str(checkpoint), "--layer", "0", "--out", str(tmp_path / "s"), *TINY]
    )
    assert status == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"variance_explained", "loss_recovered", "dead_fraction"} <= set(out)


def test_train_defaults_are_the_library_defaults():
    from tl_bilinear.cli import build_parser
    from tl_bilinear.cli.sae import train_config
    from tl_bilinear.sae import SAE_RECIPES, SAETrainConfig

    def config(*flags):
        args = build_parser().parse_args(["sae", "train", "run", "--layer", "0", "--out", "x", *flags])
        return args, train_config(args)

    args, cfg = config()
    library = SAETrainConfig(layer=0)
    assert (args.tokens, args.k, args.expansion, args.buffer) == (
        library.total_tokens, library.k, library.expansion, library.buffer_tokens,
    )  # fmt: skip
    assert (cfg.lr, cfg.batch_size) == (library.lr, library.batch_size) == (1e-4, 4096)  # the paper's Table 4
    _, small = config("--recipe", "small")
    assert (small.lr, small.batch_size) == (SAE_RECIPES["small"]["lr"], SAE_RECIPES["small"]["batch_size"])
    _, mixed = config("--recipe", "small", "--lr", "2e-3")
    assert (mixed.lr, mixed.batch_size) == (2e-3, 1024)


def test_unknown_recipe_is_named():
    from tl_bilinear.sae import SAETrainConfig

    with pytest.raises(ValueError, match=r"unknown SAE recipe 'fast'.*\['paper', 'small'\]"):
        SAETrainConfig.from_recipe("fast", 0)
