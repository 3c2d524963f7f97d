"""Training recipes: the per-data-set defaults of ``tl-bilinear image train`` and the benchmark."""

import json

import pytest

from tests.helpers.cli import one_clear_line, run_main
from tests.image.helpers import write_idx_folder
from tl_bilinear import cli
from tl_bilinear.image import RECIPES, load_data, recipe


def test_auto_picks_fashion_for_fashion_mnist_and_paper_otherwise(tmp_path, digits):
    write_idx_folder(tmp_path)
    assert recipe("auto", load_data(f"fashion={tmp_path}")) == RECIPES["fashion"]
    assert recipe("auto", load_data(str(tmp_path))) == RECIPES["paper"]
    assert recipe("auto", digits) == RECIPES["paper"]
    assert RECIPES["fashion"] != RECIPES["paper"]


def test_overrides_replace_fields_and_none_keeps_the_recipes():
    config = recipe("fashion", epochs=3, noise=None, seed=7)
    assert (config.epochs, config.noise, config.seed) == (3, RECIPES["fashion"].noise, 7)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [("fast", None, "recipe 'fast' is unknown; use auto or one of: paper, fashion"), ("auto", None, "pass the data")],
)
def test_bad_recipe_names(name, data, message):
    with pytest.raises(ValueError, match=message):
        recipe(name, data)


def test_cli_train_uses_the_data_sets_recipe_under_the_flags(tmp_path):
    write_idx_folder(tmp_path / "data", n_train=40)
    out = tmp_path / "run"
    args = ["image", "train", "--data", f"fashion={tmp_path / 'data'}", "--out", str(out), "--hidden", "4"]
    assert cli.main([*args, "--epochs", "2"]) == 0
    saved = json.loads((out / "classifier.json").read_text())["train_config"]
    fashion = RECIPES["fashion"]
    assert (saved["epochs"], saved["weight_decay"], saved["noise"]) == (2, fashion.weight_decay, fashion.noise)


def test_cli_unknown_recipe_is_one_clear_line(tmp_path, capsys):
    one_clear_line(
        *run_main("image", "train", "--recipe", "fast", "--out", tmp_path / "run", capsys=capsys),
        "recipe 'fast' is unknown",
    )
