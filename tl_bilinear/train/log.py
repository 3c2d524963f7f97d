"""A run's progress: the progress bar, ``metrics.jsonl``, wandb, and the tokens/s window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tl_bilinear.train.config import TrainConfig
from tl_bilinear.train.setup import wandb_init

METRICS_FILE = "metrics.jsonl"


class RunLog:
    """Where a run reports each step (on the main rank; elsewhere it only counts).

    A metrics line is written every ``cfg.log_every`` steps, at every validation and at
    the last step, with the tokens/s since the previous line.

    Args:
        cfg: the run's config (``log_every``, ``progress``, ``wandb_project``).
        out_dir: the run directory (``metrics.jsonl`` goes there).
        main: whether this is the rank that writes.
        resumed: a resumed run appends to the metrics file; a fresh one starts it anew.
        total: the planned number of steps.
        initial: the step the run starts from.
    """

    def __init__(self, cfg: TrainConfig, out_dir: Path, *, main: bool, resumed: bool, total: int, initial: int):
        self.cfg, self.main = cfg, main
        self.metrics = open(out_dir / METRICS_FILE, "a" if resumed else "w") if main else None
        self.wandb = wandb_init(cfg) if main and cfg.wandb_project else None
        self.bar = tqdm(
            total=total, initial=initial, disable=not (main and cfg.progress), unit="step", dynamic_ncols=True
        )
        self._tokens, self._seconds = 0, 0.0

    def set_total(self, total: int) -> None:
        """A new plan: ``total`` steps."""
        self.bar.total = total

    def step(self, record: dict[str, Any], tokens: int, seconds: float, *, last: bool) -> None:
        """Report one step.

        Args:
            record: ``{"step", "tokens", "loss", "lr", "grad_norm"}`` and ``"val_loss"`` when validated.
            tokens: the tokens the step trained on.
            seconds: the step's time.
            last: whether it is the run's last step (always logged).
        """
        self._tokens, self._seconds = self._tokens + tokens, self._seconds + seconds
        if not self.main:
            return
        tok_s = self._tokens / max(self._seconds, 1e-9)
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}", tok_s=f"{tok_s:,.0f}", refresh=False
        )
        if record["step"] % max(self.cfg.log_every, 1) == 0 or "val_loss" in record or last:
            line = {**record, "tokens_per_s": tok_s}
            self.metrics.write(json.dumps(line) + "\n")
            self.metrics.flush()
            if self.wandb is not None:
                self.wandb.log(line, step=record["step"])
            self._tokens, self._seconds = 0, 0.0

    def close(self) -> None:
        """Close the bar, the metrics file and the wandb run."""
        self.bar.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.wandb is not None:
            self.wandb.finish()
