"""SwiGLU -> bilinear by annealing the gate's Swish β to 0 while training (paper App. J).

``anneal_to_bilinear`` continues training a gated-MLP model with the trainer
(``tl_bilinear.train``: data, schedule, checkpoints, exact resume) with every gate replaced
by ``Swish_β``; β falls from its starting value (1 for SiLU) to 0 over the first
``anneal_frac`` of the run, and the rest trains at β = 0. The finished run's checkpoint is
the bilinear model (``Swish_0(x) = x/2``, the ½ folded into ``W_in``), so
``tl_bilinear.load(out_dir)`` gives it. An unfinished run's checkpoint is for resuming
(its config still names the source activation). Metrics lines carry ``beta``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tl_bilinear.activation import ACT_FN_NAME
from tl_bilinear.compat import HookedTransformer
from tl_bilinear.convert.finetune import FinetuneTrainer, train_config_for, trainer_kwargs
from tl_bilinear.convert.swish import SCHEDULES, beta_at, check_annealable, install_swish_gates, swish0_to_bilinear
from tl_bilinear.model import load, read_checkpoint_config
from tl_bilinear.train import ResumeMismatch, TrainConfig, TrainResult
from tl_bilinear.train.distributed import run_writer_lock

logger = logging.getLogger(__name__)
#: In the run directory: the annealing settings (checked on resume).
ANNEAL_FILE = "anneal.json"


@dataclass(frozen=True)
class AnnealSchedule:
    """How β falls: from ``start_beta`` to 0 over the first ``anneal_frac`` of the steps."""

    start_beta: float
    anneal_frac: float = 0.3
    schedule: str = "linear"

    def __post_init__(self) -> None:
        if not 0 < self.anneal_frac <= 1:
            raise ValueError(f"anneal_frac must be in (0, 1], got {self.anneal_frac!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.start_beta > 0:
            raise ValueError(f"start_beta must be positive, got {self.start_beta!r}")

    def beta(self, step: int, max_steps: int) -> float:
        """β for a step (see ``beta_at``).

        Args:
            step: the 0-based optimizer step about to be taken.
            max_steps: the steps of the run.

        Returns:
            β.
        """
        return beta_at(step, max_steps, self.start_beta, self.anneal_frac, self.schedule)


class AnnealTrainer(FinetuneTrainer):
    """A ``Trainer`` that starts from ``source``'s weights and sets the gates' β every step.

    Args:
        cfg: the run's settings (``train_config_for(source.cfg, ...)``).
        source: the gated-MLP model to anneal (not modified).
        schedule: the β schedule.
        resume: continue the run in ``cfg.out_dir`` (its ``anneal.json`` must match ``schedule``).
        **kwargs: other ``Trainer`` arguments (``tokenizer``, ``stream_factory``).

    Raises:
        ResumeMismatch: when resuming a run annealed with another schedule (or config).
    """

    def __init__(
        self, cfg: TrainConfig, source: HookedTransformer, schedule: AnnealSchedule, resume: bool = False, **kwargs: Any
    ) -> None:
        self.schedule = schedule
        super().__init__(cfg, source, resume=resume, **kwargs)
        _check_settings(self.out_dir, dataclasses.asdict(schedule), resume)

    def prepare(self, model: HookedTransformer) -> None:
        """Replace the copy's gates by Swish_β gates at the starting β."""
        self.gates = install_swish_gates(model, self.schedule.start_beta)

    def train_step(self, batches: Any) -> dict[str, float]:
        """One optimizer step at this step's β.

        Args:
            batches: the micro-batch iterator (see ``Trainer.train_step``).

        Returns:
            The trainer's step record plus ``"beta"`` (written to ``metrics.jsonl``).
        """
        beta = self.schedule.beta(self.step, self.max_steps)
        for gate in self.gates:
            gate.beta = beta
        return {**super().train_step(batches), "beta": beta}

    def finish(self, result: TrainResult) -> HookedTransformer:
        """Fold the β = 0 gates into a bilinear model and make it the run's checkpoint.

        Args:
            result: what ``run`` returned (finished, not interrupted).

        Returns:
            The bilinear model.
        """
        self.model = swish0_to_bilinear(self.model)
        self.save_checkpoint(train_loss=result.train_loss)
        return self.model


@dataclass
class AnnealResult:
    """What ``anneal_to_bilinear`` returns."""

    model: HookedTransformer | None  #: the bilinear model (None if the run was interrupted)
    train: TrainResult | None  #: the run's result (None when a finished run was reloaded)


def _check_settings(out_dir: Path, settings: dict[str, Any], resume: bool) -> None:
    path = out_dir / ANNEAL_FILE
    if resume and path.is_file():
        saved = json.loads(path.read_text())
        if saved != settings:
            raise ResumeMismatch(
                f"cannot resume {str(out_dir)!r}: it was annealed with {saved}, now {settings}; "
                "resume with the saved settings or start a new run in another directory"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True))


def anneal_to_bilinear(
    model: HookedTransformer,
    out_dir: str | os.PathLike,
    *,
    total_tokens: int,
    anneal_frac: float = 0.3,
    beta_schedule: str = "linear",
    start_beta: float | None = None,
    resume: bool = False,
    tokenizer: Any = None,
    stream_factory: Any = None,
    **train_fields: Any,
) -> AnnealResult:
    """Finetune a SwiGLU (or GeGLU) model into a bilinear one by annealing its gates.

    Args:
        model: a HookedTransformer with a gated MLP and a SiLU/GELU gate (not modified).
        out_dir: the run directory (checkpoint/, metrics.jsonl with ``beta``, anneal.json).
        total_tokens: the run's token budget.
        anneal_frac: the fraction of the run over which β falls to 0, in (0, 1]; the paper
            used 0.3 of 400M tokens.
        beta_schedule: how β falls: ``"linear"`` (default) or ``"cosine"``.
        start_beta: β at the start (default: 1 for SiLU, 1.702 for GELU-like gates).
        resume: continue an interrupted run in ``out_dir`` exactly.
        tokenizer: a tokenizer or tokenizer directory (default: ``model.tokenizer``); with
            neither and no ``stream_factory`` the trainer's data cannot be tokenized.
        stream_factory: the trainer's token-block streams (default: ``data`` tokenized).
        **train_fields: other ``TrainConfig`` fields (``data``, ``lr``, ``warmup_steps``,
            ``batch_size``, ``schedule`` (of the learning rate), ...).

    Returns:
        ``AnnealResult``: the bilinear model (``act_fn="bilinear"``, equal to the trained
        model at β = 0) and the run's ``TrainResult``.

    Raises:
        ValueError: for a model without a gated MLP or with a non-Swish gate, a bad
            ``anneal_frac`` / ``beta_schedule`` / ``start_beta``, or bad training settings.
        ResumeMismatch: when resuming with other settings than the saved run's.
        RunLocked: if another process is writing into ``out_dir`` (the message names it and
            the holder's pid); the lock is held until the run ends.
    """
    default_beta = check_annealable(model.cfg)
    plan = AnnealSchedule(default_beta if start_beta is None else start_beta, anneal_frac, beta_schedule)
    kwargs = trainer_kwargs(model, tokenizer, train_fields)
    cfg = train_config_for(model.cfg, out_dir=str(out_dir), total_tokens=total_tokens, **train_fields)
    out = Path(out_dir)
    with run_writer_lock(out, "tl_bilinear.anneal_to_bilinear"):
        if resume:
            try:
                meta = read_checkpoint_config(out)
            except FileNotFoundError:
                meta = {}
            if meta.get("model_config", {}).get("act_fn") == ACT_FN_NAME:
                logger.info("%s is a finished annealing run; loading its bilinear model", out)
                return AnnealResult(model=load(out), train=None)
        trainer = AnnealTrainer(cfg, model, plan, resume=resume, stream_factory=stream_factory, **kwargs)
        result = trainer.run()
        if result.interrupted:
            return AnnealResult(model=None, train=result)
        return AnnealResult(model=trainer.finish(result), train=result)
