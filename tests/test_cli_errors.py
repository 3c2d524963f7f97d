"""Bad input a user plausibly types gives one clear line naming the value and the fix (in-process, fast).

Every case here fails before any training starts, so the file runs in seconds.
"""

import pytest

import tl_bilinear
from tests.helpers.cli import one_clear_line, run_main
from tl_bilinear.demo import DEMO_PRESET, demo_config


def checkpoint_prompt_tokens(path, prompt):
    return tl_bilinear.load(path).to_tokens(prompt, truncate=False).shape[-1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, text_model):
    """A saved n_ctx-24 model with its tokenizer."""
    return tl_bilinear.save(text_model, tmp_path_factory.mktemp("ckpt") / "run", tokenizer=text_model.tokenizer)


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--set", "n_layer=2"], ["n_layer", "did you mean n_layers"]),
        (["--baseline", "swiglu", "--set", "d_modle=64"], ["d_modle", "d_model"]),
        (["--act-fn", "relux"], ["--act-fn 'relux'", "relu"]),
        (["--set", "act_fn=gelux"], ["'gelux'", "gelu"]),
    ],
)
def test_train_bad_model_fields(flags, needles, tmp_path, capsys):
    status, err = run_main("train", "--out", tmp_path / "run", "--preset", "ts-micro", *flags, capsys=capsys)
    one_clear_line(status, err, *needles)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("content", "needle"), [("[1, 2]", "a JSON object"), ("{lr: 0.1", "not valid JSON")])
def test_train_bad_config_file(content, needle, tmp_path, capsys):
    path = tmp_path / "train.json"
    path.write_text(content)
    status, err = run_main("train", "--out", tmp_path / "run", "--config", path, capsys=capsys)
    one_clear_line(status, err, str(path), needle)


def test_generate_past_the_context_names_the_limit(checkpoint, capsys):
    status, err = run_main("generate", checkpoint, "--prompt", "the dog", "--max-new-tokens", 500, capsys=capsys)
    one_clear_line(status, err, "--max-new-tokens 500", "n_ctx 24", "or less")
    most = 24 - checkpoint_prompt_tokens(checkpoint, "the dog") + 1  # the last sampled token is never fed back
    status, err = run_main(
        "generate", checkpoint, "--prompt", "the dog", "-n", 1, "--max-new-tokens", most, capsys=capsys
    )
    assert status == 0, err
    status, err = run_main("generate", checkpoint, "--prompt", "the dog", "--max-new-tokens", most + 1, capsys=capsys)
    one_clear_line(status, err, f"use --max-new-tokens {most} or less")
    long_prompt = " ".join(["happy dog"] * 40)
    status, err = run_main("generate", checkpoint, "--prompt", long_prompt, "--max-new-tokens", 1, capsys=capsys)
    one_clear_line(status, err, "--prompt", "n_ctx 24")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["-n", "0"], "--num-samples 0"),
        (["--max-new-tokens", "0"], "--max-new-tokens 0"),
        (["--temperature", "-1"], "--temperature -1.0"),
    ],
)
def test_generate_bad_sampling_setting_is_named(flags, needle, checkpoint, capsys):
    status, err = run_main("generate", checkpoint, *flags, capsys=capsys)
    one_clear_line(status, err, needle)


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--minutes", "0"], ["--minutes 0.0", "positive"]),
        (["--minutes", "-5", "--small"], ["--minutes -5.0"]),
        (["--preset", "ts-nope", "--small"], ["unknown preset 'ts-nope'", "ts-tiny"]),
    ],
)
def test_demo_bad_arguments(flags, needles, tmp_path, capsys):
    status, err = run_main("demo", "--out", tmp_path / "demo", "--no-progress", *flags, capsys=capsys)
    one_clear_line(status, err, *needles)
    assert not (tmp_path / "demo").exists()


def test_demo_into_an_existing_run_suggests_another_out_not_resume(tmp_path, capsys):
    tl_bilinear.save(tl_bilinear.make_model("ts-micro"), tmp_path / "demo")
    status, err = run_main("demo", "--out", tmp_path / "demo", "--small", "--no-progress", capsys=capsys)
    one_clear_line(status, err, str(tmp_path / "demo"), "--out")
    assert "--resume" not in err  # demo has no --resume


def test_small_demo_config_uses_one_thread_and_an_explicit_preset(tmp_path):
    small = demo_config(tmp_path, small=True)
    assert small.preset == "ts-micro" and small.num_threads == 1  # 2 threads ran ~30x slower on a busy 2-core box
    assert demo_config(tmp_path, small=True, preset="ts-tiny").preset == "ts-tiny"
    full = demo_config(tmp_path)
    assert full.preset == DEMO_PRESET and full.num_threads is None


def test_tokenizer_out_naming_a_file_fails_before_training(tmp_path, capsys):
    target = tmp_path / "taken.txt"
    target.write_text("not a directory")
    status, err = run_main(
        "tokenizer", "--data", "builtin", "--docs", "50", "--vocab-size", "300", "--out", target, capsys=capsys
    )
    one_clear_line(status, err, "taken.txt", "is a file", "directory")


def test_analyze_rejects_k_zero_and_counts_one_layer(checkpoint, tmp_path, capsys):
    status, err = run_main(
        "analyze", checkpoint, "--layer", 0, "--token", "dog", "--k", 0, "--out", tmp_path / "r.html", capsys=capsys
    )
    assert status == 2 and "--k" in err and "0" in err and "Traceback" not in err
    one_layer = tl_bilinear.save(tl_bilinear.make_model("ts-micro"), tmp_path / "one")
    status, err = run_main(
        "analyze", one_layer, "--layer", 5, "--token", "a", "--out", tmp_path / "r.html", capsys=capsys
    )
    one_clear_line(status, err, "--layer 5", "has 1 layer (0..0)")


def test_rotary_odd_d_head_names_the_fix(tmp_path, capsys):
    status, err = run_main(
        "train", "--out", tmp_path / "run", "--preset", "ts-micro", "--set", "d_model=100", capsys=capsys
    )
    one_clear_line(status, err, "d_head=25", "d_model=100", "n_heads=4")


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--lr", "inf"], ["--lr", "'inf' is not a finite number"]),
        (["--lr", "nan"], ["--lr", "'nan'"]),
        (["--lr", "1e6"], ["--lr", "'1e6' must be a finite number in (0, 1]"]),
        (["--lr", "0"], ["--lr", "'0' must be a finite number in (0, 1]"]),
        (["--final-lr-frac", "2"], ["--final-lr-frac", "in [0, 1]"]),
        (["--weight-decay", "-1"], ["--weight-decay", "'-1' must be a finite number >= 0"]),
        (["--final-lr-frac", "nan"], ["--final-lr-frac", "'nan'"]),
        (["--weight-decay", "inf"], ["--weight-decay", "'inf'"]),
        (["--grad-clip=-inf"], ["--grad-clip", "'-inf'"]),
    ],
)
def test_train_refuses_non_finite_and_absurd_floats_before_anything_is_written(flags, needles, tmp_path, capsys):
    one_clear_line(
        *run_main("train", "--out", tmp_path / "run", "--preset", "ts-micro", *flags, capsys=capsys), *needles
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("command", "flag", "value", "needle"),
    [
        (["anneal", "RUN", "--tokens", "1k"], "--lr", "inf", "'inf' is not a finite number"),
        (["anneal", "RUN", "--tokens", "1k"], "--lr", "2", "in (0, 1]"),
        (["anneal", "RUN", "--tokens", "1k"], "--anneal-frac", "nan", "'nan' is not a finite number"),
        (["anneal", "RUN", "--tokens", "1k"], "--anneal-frac", "0", "in (0, 1]"),
        (["anneal", "RUN", "--tokens", "1k"], "--start-beta", "inf", "'inf' is not a finite number"),
        (["anneal", "RUN", "--tokens", "1k"], "--start-beta", "0", "> 0"),
        (["image", "train"], "--noise", "nan", "'nan' is not a finite number"),
        (["image", "train"], "--lr", "inf", "'inf' is not a finite number"),
        (["image", "train"], "--lr", "1e6", "in (0, 1]"),
        (["image", "train"], "--weight-decay", "-inf", "'-inf' is not a finite number"),
        (["sae", "train", "RUN", "--layer", "0"], "--lr", "nan", "'nan' is not a finite number"),
        (["sae", "train", "RUN", "--layer", "0"], "--lr", "1e6", "in (0, 1]"),
    ],
)
def test_every_float_flag_is_finite_and_in_its_range(command, flag, value, needle, tmp_path, capsys):
    status, err = run_main(*command, "--out", tmp_path / "out", f"{flag}={value}", capsys=capsys)
    one_clear_line(status, err, flag, needle)
    assert not (tmp_path / "out").exists()


def test_a_config_file_with_an_absurd_lr_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"lr": 1e6}')
    one_clear_line(
        *run_main("train", "--out", tmp_path / "run", "--config", tmp_path / "c.json", capsys=capsys), "lr must"
    )


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_generate_temperature_must_be_finite(value, checkpoint, capsys):
    one_clear_line(
        *run_main("generate", checkpoint, "--temperature", value, capsys=capsys), "--temperature", repr(value)
    )


def test_demo_minutes_must_be_finite(tmp_path, capsys):
    one_clear_line(
        *run_main("demo", "--out", tmp_path / "d", "--minutes", "inf", "--small", capsys=capsys), "--minutes"
    )
    assert not (tmp_path / "d").exists()


def test_analyze_vs_equal_to_token_and_a_binary_text(checkpoint, tmp_path, capsys):
    out = tmp_path / "r.html"
    status, err = run_main(
        "analyze", checkpoint, "--layer", 0, "--token", " happy", "--vs", " happy", "--out", out, capsys=capsys
    )
    one_clear_line(status, err, "--vs ' happy' is the same token as --token", "drop it")
    binary = tmp_path / "ls"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    status, err = run_main(
        "analyze", checkpoint, "--layer", 0, "--token", " happy", "--text", binary, "--out", out, capsys=capsys
    )
    one_clear_line(status, err, f"--text {binary}", "not UTF-8", "offset 8")
    assert not out.exists()
