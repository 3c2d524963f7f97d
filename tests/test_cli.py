"""``tl-bilinear`` end to end, as a user runs it (subprocesses, tiny settings)."""

import json
import os
import subprocess
import sys

import pytest

import tl_bilinear
from tests.helpers.cli import run_main
from tl_bilinear import cli
from tl_bilinear.cli import args as cli_args
from tl_bilinear.cli import train as train_cli

TINY = [
    "--preset",
    "ts-micro",
    "--set",
    "d_vocab=320",
    "--set",
    "n_ctx=32",
    "--set",
    "d_model=32",
    "--set",
    "n_heads=2",
    "--batch-size",
    "4",
    "--tokens",
    "768",
    "--eval-every",
    "3",
    "--eval-batches",
    "2",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--no-progress",
    "--warmup",
    "2",
    "--lr",
    "3e-3",
    "--log-every",
    "1",
]


def tl(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tl_bilinear.cli", *map(str, args)], capture_output=True, text=True, env=env
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tokenizer and a 6-step training run, both made with the CLI."""
    root = tmp_path_factory.mktemp("cli")
    out = tl("tokenizer", "--out", root / "tok", "--vocab-size", 320, "--docs", 300)
    assert "320-token tokenizer" in out.stdout
    out = tl("train", "--out", root / "run", "--tokenizer", root / "tok", *TINY)
    assert "done: step 6/6" in out.stdout and "val loss" in out.stdout
    return root / "run"


def test_train_writes_checkpoint_metrics_and_resume_refuses_other_config(run_dir):
    assert (run_dir / "checkpoint" / "model.safetensors").is_file()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 6
    bad = tl("train", "--out", run_dir, "--resume", "--lr", "1e-2", check=False)
    assert bad.returncode == 2 and "lr: saved 0.003, now 0.01" in bad.stderr
    again = tl("train", "--out", run_dir, "--tokenizer", run_dir.parent / "tok", *TINY, check=False)
    assert again.returncode == 2 and "--resume" in again.stderr
    done = tl("train", "--out", run_dir, "--resume")  # the saved config; already finished
    assert "step 6/6" in done.stdout


def test_info_and_generate(run_dir):
    info = json.loads(tl("info", run_dir, "--json").stdout)
    assert info["preset"] == "ts-micro" and info["step"] == 6 and info["model"]["act_fn"] == "bilinear"
    params = info["parameters"]
    assert params["unembed"] == params["embed"] == 32 * 320 and params["mlp"] == 3 * 32 * 128
    text = tl("info", run_dir).stdout
    assert "total (weights)" in text and "val loss" in text
    out = tl("generate", run_dir, "--prompt", "once upon a time", "-n", 2, "--max-new-tokens", 5).stdout
    samples = [s for s in out.split("\n\n") if s.strip()]
    assert len(samples) == 2 and all(s.startswith("once upon a time") for s in samples)


def test_bad_input_is_one_clear_line(capsys, tmp_path):
    status, err = run_main("generate", "/nonexistent/run", capsys=capsys)
    assert status == 2 and "does not exist" in err and "Traceback" not in err
    status, err = run_main("train", "--out", tmp_path / "a", "--preset", "ts-huge", capsys=capsys)
    assert status == 2 and "unknown preset 'ts-huge'" in err
    status, err = run_main("train", "--out", tmp_path / "b", "--data", "/nonexistent/corpus.txt", capsys=capsys)
    assert status == 2 and "/nonexistent/corpus.txt" in err
    status, err = run_main("train", "--out", tmp_path / "c", "--resume", capsys=capsys)
    assert status == 2 and "no checkpoint to resume" in err
    tl_bilinear.save(tl_bilinear.make_model("ts-micro"), tmp_path / "saved")
    status, err = run_main("train", "--out", tmp_path / "saved", "--resume", capsys=capsys)
    assert status == 2 and "no training config" in err
    status, err = run_main("train", "--out", tmp_path / "d", "--batch-size", "0", capsys=capsys)
    assert status == 2 and "batch_size must be a positive integer, got 0" in err


def test_parse_count_and_registry():
    assert (
        cli_args.parse_count("2M") == 2_000_000
        and cli_args.parse_count("500k") == 500_000
        and cli_args.parse_count("1e6") == 10**6
    )
    with pytest.raises(Exception, match="not a count"):
        cli_args.parse_count("lots")
    names = [a.dest for a in cli.build_parser()._subparsers._group_actions[0]._choices_actions]
    assert {"train", "tokenizer", "generate", "info", "demo", "analyze"} <= set(names)


def test_demo_small_end_to_end(tmp_path):
    out = tl("demo", "--out", tmp_path / "demo", "--small", "--no-progress")
    assert "validation loss" in out.stdout and "unigram entropy" in out.stdout and "identity" in out.stdout
    samples = out.stdout.split("=== sample stories")[1].split("\n\n")[0].splitlines()[1:]
    assert samples and all(line.startswith(("- ", "  ")) for line in samples), samples  # each story in its bullet
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["val_loss"] < summary["unigram_entropy"]
    assert summary["identity_max_abs_error"] < 1e-3 * max(1.0, summary["identity_max_abs_value"])
    assert (tmp_path / "demo" / "spectra.png").read_bytes()[:4] == b"\x89PNG"
    assert len(summary["words"]) >= 2
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "circuitsvis" in report.lower() and "Top-activating dataset contexts" in report


def test_train_flags_build_the_config(tmp_path):
    parser = cli.build_parser()
    args = parser.parse_args(
        [
            "train",
            "--out",
            str(tmp_path),
            "--preset",
            "ts-tiny",
            "--baseline",
            "mlp-gelu",
            "--tokens",
            "1M",
            "--set",
            "n_layers=3",
            "--precision",
            "bf16",
        ]
    )
    cfg = train_cli.train_config_from_args(args)
    assert cfg.total_tokens == 10**6 and cfg.precision == "bf16" and cfg.out_dir == str(tmp_path)
    assert cfg.model_overrides == {"n_layers": 3, "act_fn": "gelu", "gated_mlp": False, "d_mlp": 768}
    assert cfg.model_config().n_layers == 3


def test_demo_analysis_without_sentiment_tokens_is_a_clear_error(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tl_bilinear.demo import analyse

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        ["the cat sat on the mat"] * 20,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    model = tl_bilinear.make_model("ts-micro", d_vocab=len(tok), n_ctx=16)
    model.tokenizer = tok
    with pytest.raises(ValueError, match="larger vocabulary"):  # " happy", " sad", ... are several tokens each
        analyse(model, 0, ["the cat sat"], tmp_path)
