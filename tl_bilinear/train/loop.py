"""The training loop: AdamW, warm-up + decay, accumulation, bf16 autocast, DDP, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tl_bilinear.model import RUN_CHECKPOINT
from tl_bilinear.train import distributed
from tl_bilinear.train.budget import Clock, TimeBudget
from tl_bilinear.train.config import TrainConfig
from tl_bilinear.train.log import METRICS_FILE, RunLog
from tl_bilinear.train.loss import TrainingDiverged, diverged_advice, lm_loss
from tl_bilinear.train.optim import lr_at, make_optimizer
from tl_bilinear.train.precision import PrecisionRates, autocast, resolve_for_model
from tl_bilinear.train.setup import (
    ModelFactory,
    StreamFactory,
    build_training_model,
    check_resume,
    default_streams,
    micro_batch_size,
    prepare_tokenizer,
)
from tl_bilinear.train.state import restore_checkpoint, truncate_metrics, write_checkpoint
from tl_bilinear.train.stop import StopCheck, StopRequest
from tl_bilinear.train.validation import Validation

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished (or interrupted) run reports.

    ``stop_reason`` is None for a run that reached ``max_steps``, ``"signal"`` after a
    Ctrl-C/SIGTERM and ``"time budget"`` after an overrun; ``precision`` is what it trained
    in (``"auto"`` resolved).
    """

    out_dir: str
    step: int
    max_steps: int
    tokens: int
    train_loss: float
    val_loss: float | None
    interrupted: bool
    elapsed_s: float
    precision: str = "fp32"
    stop_reason: str | None = None


class Trainer:
    """One training run of a HookedTransformer (bilinear or a baseline).

    Args:
        cfg: the run's settings.
        resume: continue the run in ``cfg.out_dir`` exactly where its last checkpoint
            stopped (optimizer, schedule, RNG, data position and chosen precision restored).
        stream_factory: ``(split, rank, world_size) -> stream`` with ``.batches(n)``,
            ``.state_dict()`` and ``.load_state_dict()``; default: ``tl_bilinear.data.TokenBlockStream``
            on ``cfg.data``.
        tokenizer: a Hugging Face tokenizer to use instead of ``cfg.tokenizer``. With a
            ``stream_factory`` and no tokenizer anywhere, the data is taken as
            pre-tokenized and the checkpoint has no tokenizer.
        overwrite: a new run deletes a previous run's files in ``cfg.out_dir`` instead of refusing.
        model_factory: ``(model_cfg, device) -> HookedTransformer`` building the model to
            train (e.g. from pretrained weights); default: ``make_model`` with ``cfg.seed``.
            On resume the checkpoint's weights are loaded into what it builds.
        clock: seconds from an arbitrary origin, for the time budget and tokens/s
            (default ``time.perf_counter``; tests inject one).

    Raises:
        FileExistsError: if ``cfg.out_dir`` already holds anything of a run (a checkpoint, even
            a damaged one, metrics, a tokenizer), ``resume`` is false and ``overwrite`` too.
        ResumeMismatch: if ``resume`` and the saved run used a different config.
        ValueError: if the tokenizer's vocabulary size is not the model's ``d_vocab``.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        resume: bool = False,
        stream_factory: StreamFactory | None = None,
        tokenizer: Any = None,
        overwrite: bool = False,
        model_factory: ModelFactory | None = None,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.cfg = cfg = dataclasses.replace(cfg)  # a copy: a time budget may lower total_tokens
        self.clock = clock
        self.info = distributed.setup(cfg.device)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_dir = self.out_dir / RUN_CHECKPOINT
        saved = check_resume(cfg, self.info.world_size, resume, is_main=self.info.is_main, overwrite=overwrite)
        if saved is not None and cfg.time_budget_s is not None:  # continue the saved run's plan
            self.cfg = cfg = dataclasses.replace(cfg, total_tokens=saved[1]["max_steps"] * cfg.tokens_per_step)
        pretokenized = stream_factory is not None and tokenizer is None and cfg.tokenizer is None
        self.tokenizer = (
            tokenizer if tokenizer is not None or pretokenized else prepare_tokenizer(cfg, self.info, saved is not None)
        )
        model_cfg = cfg.model_config()
        if self.tokenizer is not None:
            from tl_bilinear.data import check_vocab

            check_vocab(self.tokenizer, model_cfg)
        self.model = build_training_model(model_cfg, cfg, self.info.device, self.tokenizer, model_factory)
        self.optimizer = make_optimizer(self.model, cfg)
        self.max_steps = self._budget_steps = cfg.max_steps
        self.step, self.tokens, self.val_loss, self.elapsed = 0, 0, None, 0.0
        self.train_loss, self.resumed = float("nan"), saved is not None
        self.micro_batch = micro_batch_size(cfg, self.info.world_size)
        factory = stream_factory or default_streams(cfg, self.tokenizer)
        self.train_stream = factory("train", self.info.rank, self.info.world_size)
        self.validation = Validation(
            lambda: factory("validation", self.info.rank, self.info.world_size),
            cfg.eval_batches,
            self.micro_batch,
            self.info,
            clock,
            cfg.data,
        )
        self.precision_rates: list[PrecisionRates] = []
        if saved is not None:
            self._restore(*saved)
        else:
            self.precision = self._choose_precision()
        self._forward = self.model
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            self._forward = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self._forward = torch.compile(self._forward)

    # ---------------------------------------------------------------- set-up helpers
    def _restore(self, tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
        restore_checkpoint(self.out_dir, self.model, self.optimizer, tensors, state)
        self.step, self.tokens = state["step"], state["tokens"]
        self.val_loss, self.elapsed = state.get("val_loss"), state.get("elapsed_s", 0.0)
        self.train_loss = state.get("train_loss") or float("nan")
        self.train_stream.load_state_dict(state["data_states"][self.info.rank])
        # an "auto" run continues in the precision it chose (so the resume is exact)
        self.precision = state.get("precision") or self._choose_precision()
        if self.info.is_main:  # drop metrics logged after the checkpoint: they will be redone
            truncate_metrics(self.out_dir / METRICS_FILE, self.step)
        logger.info("resumed %s at step %d (%s)", self.out_dir, self.step, self.precision)

    def _choose_precision(self) -> str:
        """``cfg.precision``, with ``"auto"`` measured on this device (rank 0's choice for all ranks)."""
        choice, self.precision_rates = resolve_for_model(self.cfg.precision, self.model, min(self.micro_batch, 2))
        return distributed.gather_json(choice, self.info)[0]

    # ---------------------------------------------------------------- the loop
    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.info.device, self.precision)

    def _batches(self) -> Iterator[Tensor]:
        while True:
            produced = False
            for block in self.train_stream.batches(self.micro_batch):
                produced = True
                yield block
            if not produced:
                raise ValueError(f"the training data {self.cfg.data!r} yields no {self.micro_batch}-block batches")

    def validation_loss(
        self, max_batches: int | None = None, should_stop: Callable[[], bool] | None = None
    ) -> float | None:
        """The model's mean validation loss in the run's precision (``Validation.loss``).

        Args:
            max_batches: at most this many batches (default: all ``cfg.eval_batches``).
            should_stop: abandons the validation when it returns True (the same on every rank).

        Returns:
            Nats per token, or None when ``should_stop`` stopped it.

        Raises:
            ValueError: if the validation split yields no blocks.
        """
        return self.validation.loss(self.model, self.precision, max_batches, should_stop)

    def train_step(self, batches: Iterator[Tensor]) -> dict[str, float]:
        """One optimizer step over ``grad_accum`` micro-batches.

        Args:
            batches: the micro-batch iterator (``Trainer._batches()``), each ``[micro_batch, n_ctx]``.

        Returns:
            ``{"loss", "lr", "grad_norm"}`` of the step.

        Raises:
            TrainingDiverged: if the loss is not finite (nothing is updated then).
        """
        lr = lr_at(self.step, self.cfg, self.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        loss_sum = torch.zeros((), device=self.info.device)
        for micro in range(self.cfg.grad_accum):
            block = next(batches).to(self.info.device, non_blocking=True)
            last = micro == self.cfg.grad_accum - 1
            sync = contextlib.nullcontext() if last or not self.info.distributed else self._ddp().no_sync()
            with sync:
                with self._autocast():
                    loss = lm_loss(self._forward(block, return_type="logits"), block)
                (loss / self.cfg.grad_accum).backward()
            loss_sum += loss.detach()
        loss_value = float(distributed.mean_across(loss_sum / self.cfg.grad_accum, self.info).item())
        if not math.isfinite(loss_value):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingDiverged(
                f"the loss became {loss_value} at step {self.step + 1}; training stopped before updating "
                f"the weights. {diverged_advice(self.ckpt_dir, self.cfg.lr, self.cfg.warmup_steps)}"
            )
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += self.cfg.tokens_per_step
        return {"loss": loss_value, "lr": lr, "grad_norm": grad_norm}

    def _ddp(self) -> Any:
        module = self._forward
        return getattr(module, "_orig_mod", module)

    def save_checkpoint(self, train_loss: float | None = None) -> None:
        """Write the model, tokenizer and training state to ``out_dir/checkpoint`` atomically.

        Every rank must call it (the data positions are gathered); rank 0 writes.

        Args:
            train_loss: the last step's loss, recorded in ``trainer_state.json``.
        """
        data_states = distributed.gather_json(self.train_stream.state_dict(), self.info)
        if self.info.is_main:
            meta = {
                "step": self.step,
                "tokens": self.tokens,
                "max_steps": self.max_steps,
                "world_size": self.info.world_size,
                "data_states": data_states,
                "train_loss": train_loss,
                "val_loss": self.val_loss,
                "elapsed_s": self.elapsed,
                "precision": self.precision,
            }
            config = dict(tokenizer=self.tokenizer, preset=self.cfg.preset, train_config=self.cfg.to_json())
            write_checkpoint(self.ckpt_dir, self.model, self.optimizer, meta, **config)
        distributed.barrier(self.info)

    def _replan(self, fits: int) -> None:
        """Set ``max_steps`` to what fits in the time budget (at most the token budget).

        All ranks agree on the smallest plan. The plan moves only by more than 2% (so
        noise does not wiggle the schedule); raising it recovers from a slow-down seen
        at an earlier plan. ``cfg.total_tokens`` is updated to match, so the checkpoint
        records the plan. A plan changed after warm-up changes the slope of the rest of
        the decay.
        """
        planned = max(self.step + 1, min([self._budget_steps, *distributed.gather_json(fits, self.info)]))
        if abs(planned - self.max_steps) > 0.02 * self.max_steps:
            logger.info(
                "time budget %.0f s: training %d steps (was %d)", self.cfg.time_budget_s, planned, self.max_steps
            )
            self.cfg = dataclasses.replace(self.cfg, total_tokens=planned * self.cfg.tokens_per_step)
            self.max_steps = self.cfg.max_steps

    def _after_step(self, stop: StopCheck, budget: TimeBudget | None) -> tuple[str | None, float | None]:
        """The stop decision and the validation loss (if one is due) after a step."""
        reason = stop()
        final = self.step == self.max_steps or reason == "time budget"
        periodic = bool(self.cfg.eval_every) and self.step % self.cfg.eval_every == 0
        if reason == "signal":
            logger.warning("stopping at step %d before the validation (%s)", self.step, stop.request.describe())
            return reason, None
        if not (final or periodic):
            return reason, None
        batches = self.validation.final_batches(budget, self.cfg.grad_accum) if final else None
        val = self.validation_loss(batches, should_stop=stop.signalled)
        return ("signal" if val is None else reason), val

    def _step(self, batches: Iterator[Tensor], budget: TimeBudget | None, stop: StopCheck, log: RunLog) -> str | None:
        """One step of ``run``: train, re-plan, decide whether to stop, validate, log, save."""
        start = self.clock()
        out = self.train_step(batches)
        dt = self.clock() - start
        self.elapsed, self.train_loss = self.elapsed + dt, out["loss"]
        fits = budget.fits(self.step) if budget is not None else None
        if fits is not None:
            self._replan(fits)
            log.set_total(self.max_steps)
        reason, val = self._after_step(stop, budget)
        record = {"step": self.step, "tokens": self.tokens, **out, "elapsed_s": self.elapsed}
        if val is not None:
            self.val_loss = record["val_loss"] = val
        last = self.step == self.max_steps
        log.step(record, self.cfg.tokens_per_step, dt, last=last)
        if reason or last or (self.cfg.save_every and self.step % self.cfg.save_every == 0):
            self.save_checkpoint(train_loss=self.train_loss)
        return reason

    def run(self, time_budget_s: float | None = None) -> TrainResult:
        """Train until ``max_steps``, a Ctrl-C/SIGTERM, or an overrun of the time budget.

        A Ctrl-C or SIGTERM stops after the current step (or between validation batches),
        saves the checkpoint and returns; a second one acts at once (the previous handler).

        Args:
            time_budget_s: replaces ``cfg.time_budget_s`` (a job that knows only now how
                much of its time training may take; None keeps the config's).

        Returns:
            The run's ``TrainResult``.

        Raises:
            TrainingDiverged: on a non-finite loss (the last good checkpoint is kept).
        """
        if time_budget_s is not None:
            self.cfg = dataclasses.replace(self.cfg, time_budget_s=time_budget_s)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        budget = (
            TimeBudget(self.cfg.time_budget_s, self.cfg.warmup_steps, self.clock) if self.cfg.time_budget_s else None
        )
        log = RunLog(
            self.cfg,
            self.out_dir,
            main=self.info.is_main,
            resumed=self.resumed,
            total=self.max_steps,
            initial=self.step,
        )
        batches, reason = self._batches(), None
        try:
            with StopRequest() as request:
                stop = StopCheck(request, budget, self.info)
                while self.step < self.max_steps and reason is None:
                    reason = self._step(batches, budget, stop, log)
                if reason is not None:
                    logger.warning("stopped (%s) at step %d; checkpoint saved in %s", reason, self.step, self.ckpt_dir)
        finally:
            log.close()
        return TrainResult(
            out_dir=str(self.out_dir),
            step=self.step,
            max_steps=self.max_steps,
            tokens=self.tokens,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            interrupted=reason is not None,
            elapsed_s=self.elapsed,
            precision=self.precision,
            stop_reason=reason,
        )


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, **kwargs: Any) -> TrainResult:
    """Train a model as ``cfg`` says and save it in ``cfg.out_dir/checkpoint``.

    Rank 0 holds the run directory's writer lock (``distributed.run_writer_lock``) throughout.

    Args:
        cfg: the run's settings.
        resume: continue the run in ``cfg.out_dir`` exactly.
        **kwargs: passed to ``Trainer`` (``stream_factory``, ``tokenizer``, ``clock``).

    Returns:
        The ``TrainResult``; ``tl_bilinear.load(cfg.out_dir)`` gives the model.

    Raises:
        TrainingDiverged: on a non-finite loss.
        ResumeMismatch: if resuming a run with a different config.
        FileExistsError: if ``cfg.out_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        RunLocked: if another process is writing into ``cfg.out_dir``.
    """
    with distributed.run_writer_lock(cfg.out_dir, "tl-bilinear train"):
        return Trainer(cfg, resume=resume, overwrite=overwrite, **kwargs).run()
