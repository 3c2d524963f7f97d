"""Training recipes: the per-data-set defaults of ``tl-bilinear image train`` and the benchmark."""

import json

import pytest

from tests.helpers.cli import one_clear_line, run_main
from tests.image.helpers import write_idx_folder
from tl_bilinear import cli
from tl_bilinear.image import RECIPES, load_data, recipe


def test_auto_picks_fashion_for_fashion_mnist_and_paper_otherwise(tmp_path, digits):
    write_idx_folder(tmp_path)
    fashion, mnist = load_data(f"fashion={tmp_path}"), load_data(str(tmp_path))
    assert recipe("auto", fashion) == recipe("fashion", fashion) != recipe("paper", fashion)
    assert recipe("auto", mnist) == recipe("paper", mnist)
    assert recipe("auto", digits) == recipe("paper", digits)
    assert RECIPES["fashion"] != RECIPES["paper"]


def test_overrides_replace_fields_and_none_keeps_the_recipes():
    config = recipe("fashion", epochs=3, noise=None, seed=7)
    assert (config.epochs, config.noise, config.seed) == (3, RECIPES["fashion"].noise, 7)


def test_small_data_caps_the_recipes_batch_unless_one_is_given(digits):
    n_train = len(digits.train_images)
    assert recipe("paper").batch_size == RECIPES["paper"].batch_size == 2048
    assert recipe("paper", digits).batch_size == max(16, n_train // 20) < 2048
    assert recipe("paper", digits, batch_size=300).batch_size == 300
    assert recipe("compact", digits).batch_size == min(RECIPES["compact"].batch_size, n_train // 20)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("fast", None, "recipe 'fast' is unknown; use auto or one of: paper, fashion, compact"),
        ("auto", None, "pass the data"),
    ],
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
