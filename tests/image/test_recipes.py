"""Training recipes: the per-data-set defaults of ``tl-bilinear image train`` and the benchmark."""

import json

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from tests.helpers.cli import one_clear_line, run_main
from tests.image.helpers import write_idx_folder
from tl_bilinear import cli
from tl_bilinear.image import (
    RECIPES,
    BilinearClassifier,
    ClassifierConfig,
    TrainConfig,
    accuracy,
    load_data,
    recipe,
    train_classifier,
)


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


def test_the_recipes_moving_average_spans_the_same_share_of_a_run_of_any_length(digits):
    steps = 20 * -(-len(digits.train_images) // (len(digits.train_images) // 20))
    assert recipe("compact").ema == RECIPES["compact"].ema == 0.999
    assert recipe("compact", digits).ema == pytest.approx(0.999 ** (2360 / steps))
    assert recipe("compact", digits).ema ** steps == pytest.approx(0.999**2360)  # the initial weights' share
    assert recipe("compact", digits, ema=0.99).ema == 0.99 and recipe("compact", digits, ema=0.0).ema == 0.0
    assert recipe("paper", digits).ema == 0.0


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


def test_ema_returns_the_moving_average_of_every_steps_weights_and_trains_the_same_path(digits):
    """Reference: the average recomputed here from the weights after every optimizer step (a global step hook)."""
    decay, reference, steps = 0.9, {}, []

    def after_step(optimizer, args, kwargs):
        named = dict(zip(names, optimizer.param_groups[0]["params"]))
        for name, weight in named.items():
            value = weight.detach().clone()
            reference[name] = value if not steps else decay * reference[name] + (1 - decay) * value
        steps.append(1)

    config = ClassifierConfig(image_shape=(8, 8), d_model=12, seed=3)
    plain_model = BilinearClassifier(config)
    names = [name for name, _ in plain_model.named_parameters()]
    train = TrainConfig(epochs=2, batch_size=200, noise=0.1, progress=False)
    plain, _ = train_classifier(digits, plain_model, train)
    handle = register_optimizer_step_post_hook(after_step)
    try:
        last = BilinearClassifier(config)
        averaged, history = train_classifier(digits, last, TrainConfig(**{**vars(train), "ema": decay}))
    finally:
        handle.remove()
    assert len(steps) == 2 * -(-len(digits.train_images) // 200)
    assert averaged is not last
    for name, weight in last.named_parameters():  # the EMA does not change the path: the last weights are the same
        torch.testing.assert_close(weight, dict(plain.named_parameters())[name], rtol=0, atol=0)
    for name, weight in averaged.named_parameters():
        torch.testing.assert_close(weight, reference[name], rtol=1e-6, atol=1e-7)
        assert not torch.allclose(weight, dict(last.named_parameters())[name])
    assert history["test_accuracy"][-1] == accuracy(averaged, digits.test_images, digits.test_labels)
    assert not averaged.training and RECIPES["compact"].ema == 0.999


@pytest.mark.parametrize("ema", [1.0, -0.1, float("nan")])
def test_bad_ema_names_the_value(ema):
    with pytest.raises(ValueError, match=rf"ema={ema!r} must be a decay in \[0, 1\)"):
        TrainConfig(ema=ema)


def test_cli_bad_ema_is_one_clear_line(tmp_path, capsys):
    one_clear_line(
        *run_main("image", "train", "--ema", "1", "--out", tmp_path / "run", capsys=capsys), "ema=1.0 must be a decay"
    )
