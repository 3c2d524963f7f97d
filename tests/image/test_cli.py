"""``tl-bilinear image train / eval / report`` in process on the bundled 8x8 digits, and its one-line errors."""

import json

import pytest

from tests.helpers.cli import one_clear_line, run_main
from tl_bilinear import cli
from tl_bilinear.image import accuracy, load_classifier


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("image") / "run"
    assert cli.main(["image", "train", "--out", str(out), "--hidden", "32", "--epochs", "8", "--noise", "0.2"]) == 0
    return out


def test_train_saves_a_loadable_run(run_dir):
    model = load_classifier(run_dir)
    assert model.cfg.d_model == 32 and model.cfg.image_shape == (8, 8)
    meta = json.loads((run_dir / "classifier.json").read_text())
    assert meta["data"] == "digits" and len(meta["history"]["test_accuracy"]) == 8


def test_eval_json_has_accuracy_and_truncation(run_dir, capsys):
    assert cli.main(["image", "eval", str(run_dir), "--json", "--k-max", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.8 < result["accuracy"] <= 1
    assert list(result["truncation"]) == ["0", "1", "2", "3", "4"]
    assert all(0 <= v <= 1 for v in result["truncation"].values())


def test_eval_reads_both_decompositions_and_they_end_at_the_accuracy(run_dir, capsys):
    k = load_classifier(run_dir).cfg.d_model  # every eigenvector of the embedding space; the pixel space's rank
    assert cli.main(["image", "eval", str(run_dir), "--json", "--k-max", str(k)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["truncation"][str(k)] == result["accuracy"] == pytest.approx(result["truncation_pixel"][str(k)])
    assert result["truncation"] != result["truncation_pixel"]  # different spectra: W_E is not orthogonal


def test_eval_of_a_two_layer_model_truncates_the_last_layer(tmp_path, capsys, digits):
    out = tmp_path / "two"
    assert cli.main(["image", "train", "--out", str(out), "--hidden", "16", "--layers", "2", "--epochs", "2"]) == 0
    capsys.readouterr()
    assert cli.main(["image", "eval", str(out), "--json", "--k-max", "16"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "truncation_pixel" not in result  # the last layer's input is not linear in the pixels
    assert result["truncation"]["16"] == pytest.approx(result["accuracy"])
    assert result["accuracy"] == pytest.approx(accuracy(load_classifier(out), digits.test_images, digits.test_labels))


def test_report_writes_self_contained_html(run_dir, tmp_path):
    out = tmp_path / "report.html"
    assert cli.main(["image", "report", str(run_dir), "--out", str(out), "--target", "3"]) == 0
    page = out.read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert "Adversarial mask towards 3" in page and "<script src" not in page


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "--data", "mnsit"], ["data 'mnsit' is none of the known forms", "digits", "fashion=DIR"]),
        (["train", "--noise", "nan"], ["--noise", "'nan' is not a finite number"]),
        (["eval", "RUN", "--k-max", "33"], ["--k-max 33 must be in [0, 32]"]),
        (["report", "RUN", "--target", "10"], ["class index 10 is out of range"]),
        (["eval", "nowhere"], ["is not a saved image classifier"]),
    ],
)
def test_bad_input_is_one_clear_line(args, needles, run_dir, tmp_path, capsys):
    args = [str(run_dir) if a == "RUN" else a for a in args]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "new"), "--epochs", "1"]
    one_clear_line(*run_main("image", *args, capsys=capsys), *needles)


def test_train_refuses_to_overwrite(run_dir, capsys):
    one_clear_line(*run_main("image", "train", "--out", run_dir, capsys=capsys), "exists; pass --force")
