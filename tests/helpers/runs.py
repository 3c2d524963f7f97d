"""A tiny real training run (made once per module) and byte-level snapshots of directories."""

import shutil
from pathlib import Path

from transformers import AutoTokenizer

from tl_bilinear.train import TrainConfig, train


def tiny_train_flags(tokenizer_dir) -> list[str]:
    """``tl-bilinear train`` flags of a 1-layer d_model-32 model, 4 x 32-token steps, on one CPU thread."""
    d_vocab = len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    sets = [f"d_vocab={d_vocab}", "n_ctx=32", "d_model=32", "n_heads=2", "n_layers=1"]
    return [
        *("--preset", "ts-micro", "--tokenizer", str(tokenizer_dir), "--batch-size", "4", "--device", "cpu"),
        *("--threads", "1", "--no-progress", "--warmup", "2", "--lr", "3e-3", "--precision", "fp32"),
        *[arg for kv in sets for arg in ("--set", kv)],
    ]


def make_run(out: Path, tokenizer_dir, steps: int = 3) -> Path:
    """Train ``steps`` steps into ``out`` (checkpoint with training state, metrics.jsonl)."""
    d_vocab = len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    cfg = TrainConfig(
        out_dir=str(out),
        preset="ts-micro",
        tokenizer=str(tokenizer_dir),
        model_overrides=dict(d_vocab=d_vocab, n_ctx=32, d_model=32, n_heads=2, n_layers=1),
        total_tokens=steps * 4 * 32,
        batch_size=4,
        warmup_steps=1,
        eval_every=0,
        eval_batches=1,
        save_every=0,
        progress=False,
        device="cpu",
        precision="fp32",
    )
    train(cfg)
    return out


def copy_run(run: Path, to: Path) -> Path:
    """A private copy of a run to damage."""
    shutil.copytree(run, to)
    return to


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(Path(root).rglob("*"))}
