"""The training loop: AdamW, warm-up + decay, accumulation, bf16 autocast, DDP, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer, HookedTransformerConfig

from tl_bilinear.checkpoint import load_weights
from tl_bilinear.model import (
    RUN_CHECKPOINT,
    atomic_directory,
    make_model,
    read_checkpoint_config,
    resolve_checkpoint,
    write_model_files,
)
from tl_bilinear.rundir import run_lock
from tl_bilinear.train import distributed
from tl_bilinear.train.budget import TimeBudget
from tl_bilinear.train.config import TrainConfig
from tl_bilinear.train.optim import lr_at, make_optimizer
from tl_bilinear.train.setup import (  # noqa: F401 (re-exported)
    VAL_FRACTION,
    ResumeMismatch,
    StreamFactory,
    check_resume,
    default_streams,
    prepare_tokenizer,
    wandb_init,
)
from tl_bilinear.train.state import optimizer_from_files, rng_from_files, truncate_metrics, write_state

logger = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished (or interrupted) run reports."""

    out_dir: str
    step: int
    max_steps: int
    tokens: int
    train_loss: float
    val_loss: float | None
    interrupted: bool
    elapsed_s: float


def lm_loss(logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, ""]:
    """Mean next-token cross-entropy in nats (computed in float32).

    Args:
        logits: the model's logits.
        tokens: the input tokens.

    Returns:
        The scalar loss.
    """
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())


class Trainer:
    """One training run of a HookedTransformer (bilinear or a baseline).

    Args:
        cfg: the run's settings.
        resume: continue the run in ``cfg.out_dir`` exactly where its last checkpoint
            stopped (optimizer, schedule, RNG and data position restored).
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
        model_factory: Callable[[HookedTransformerConfig, torch.device], HookedTransformer] | None = None,
    ) -> None:
        self.cfg = cfg = dataclasses.replace(cfg)  # a copy: a time budget may lower total_tokens
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
        if model_factory is None:
            self.model: HookedTransformer = make_model(model_cfg, seed=cfg.seed, device=self.info.device)
        else:
            self.model = model_factory(model_cfg, self.info.device)
        self.model.tokenizer = self.tokenizer
        if cfg.fast_attention:
            from tl_bilinear.train.fast import use_fast_attention

            use_fast_attention(self.model)
        self.optimizer = make_optimizer(self.model, cfg)
        self.max_steps = self._budget_steps = cfg.max_steps
        self.step, self.tokens, self.val_loss, self.elapsed = 0, 0, None, 0.0
        self.train_loss, self.resumed = float("nan"), saved is not None
        if self.info.world_size * cfg.grad_accum > cfg.batch_size or cfg.batch_size % (
            self.info.world_size * cfg.grad_accum
        ):
            raise ValueError(
                f"batch_size={cfg.batch_size} must be a multiple of world_size*grad_accum="
                f"{self.info.world_size * cfg.grad_accum}"
            )
        self.micro_batch = cfg.batch_size // (self.info.world_size * cfg.grad_accum)
        factory = stream_factory or default_streams(cfg, self.tokenizer)
        self.train_stream = factory("train", self.info.rank, self.info.world_size)
        self._val_factory = lambda: factory("validation", self.info.rank, self.info.world_size)
        self._val_blocks: list[Tensor] | None = None
        if saved is not None:
            self._restore(*saved)
        self._forward = self.model
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            self._forward = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self._forward = torch.compile(self._forward)
        self._stop_signal: int | None = None

    # ---------------------------------------------------------------- set-up helpers
    def _restore(self, tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
        load_weights(self.model, resolve_checkpoint(self.out_dir), device=self.info.device)
        optimizer_from_files(self.optimizer, tensors, state["optimizer"])
        rng_from_files(tensors, state["rng"])
        self.step, self.tokens = state["step"], state["tokens"]
        self.val_loss, self.elapsed = state.get("val_loss"), state.get("elapsed_s", 0.0)
        self.train_loss = state.get("train_loss") or float("nan")
        self.train_stream.load_state_dict(state["data_states"][self.info.rank])
        if self.info.is_main:  # drop metrics logged after the checkpoint: they will be redone
            truncate_metrics(self.out_dir / METRICS_FILE, self.step)
        logger.info("resumed %s at step %d", self.out_dir, self.step)

    # ---------------------------------------------------------------- the loop
    def _autocast(self) -> contextlib.AbstractContextManager:
        precision = self.cfg.precision
        if precision == "auto":
            cuda_bf16 = self.info.device.type == "cuda" and torch.cuda.is_bf16_supported()
            precision = "bf16" if cuda_bf16 else "fp32"
        return torch.autocast(self.info.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def _batches(self) -> Iterator[Tensor]:
        while True:
            produced = False
            for block in self.train_stream.batches(self.micro_batch):
                produced = True
                yield block
            if not produced:
                raise ValueError(f"the training data {self.cfg.data!r} yields no {self.micro_batch}-block batches")

    def validation_loss(self) -> float:
        """The mean loss on the fixed validation blocks (averaged over ranks).

        Returns:
            The loss in nats per token.

        Raises:
            ValueError: if the validation split yields no blocks.
        """
        if self._val_blocks is None:
            batches = self._val_factory().batches(self.micro_batch)
            self._val_blocks = list(itertools.islice(batches, self.cfg.eval_batches))
            if not self._val_blocks:
                raise ValueError(f"the validation split of {self.cfg.data!r} yields no blocks")
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros((), device=self.info.device)
        with torch.no_grad(), self._autocast():
            for block in self._val_blocks:
                block = block.to(self.info.device)
                total += lm_loss(self.model(block, return_type="logits"), block)
        self.model.train(was_training)
        return float(distributed.mean_across(total / len(self._val_blocks), self.info).item())

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
                f"the weights. {self._diverged_advice()}"
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

    def _diverged_advice(self) -> str:
        """What is on disk after a divergence, and a fix that can be followed (--resume would repeat it)."""
        fix = (
            f"train again with a lower --lr (now {self.cfg.lr}) or more --warmup (now {self.cfg.warmup_steps}) "
            f"in a new --out, or here with --overwrite"
        )
        try:
            step = read_checkpoint_config(self.ckpt_dir).get("step")
        except (FileNotFoundError, ValueError):
            return f"No checkpoint was written yet; {fix}."
        return (
            f"The last good checkpoint (step {step}) is kept in {str(self.ckpt_dir)!r} and loads as it is; "
            f"--resume would repeat the same steps, so {fix} (which replaces it)."
        )

    def save_checkpoint(self, train_loss: float | None = None) -> None:
        """Write the model, tokenizer and training state to ``out_dir/checkpoint`` atomically.

        Every rank must call it (the data positions are gathered); rank 0 writes.

        Args:
            train_loss: the last step's loss, recorded in ``trainer_state.json``.
        """
        data_states = distributed.gather_json(self.train_stream.state_dict(), self.info)
        if self.info.is_main:
            with atomic_directory(self.ckpt_dir) as tmp:
                extra = {"train_config": self.cfg.to_json(), "step": self.step, "tokens": self.tokens}
                write_model_files(tmp, self.model, tokenizer=self.tokenizer, preset=self.cfg.preset, extra=extra)
                meta = {
                    "step": self.step,
                    "tokens": self.tokens,
                    "max_steps": self.max_steps,
                    "world_size": self.info.world_size,
                    "data_states": data_states,
                    "train_loss": train_loss,
                    "val_loss": self.val_loss,
                    "elapsed_s": self.elapsed,
                }
                write_state(tmp, self.optimizer, meta)
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

    def _signal_handler(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum
        signal.signal(signum, self._old_handlers.get(signum, signal.SIG_DFL))  # a second one kills

    def run(self) -> TrainResult:
        """Train until ``max_steps`` (or a Ctrl-C/SIGTERM, which saves and returns).

        Returns:
            The run's ``TrainResult``.

        Raises:
            TrainingDiverged: on a non-finite loss (the last good checkpoint is kept).
        """
        cfg, main = self.cfg, self.info.is_main
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._old_handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, self._signal_handler)
        # a fresh run starts a fresh metrics file; a resumed one appends (see _restore)
        metrics = open(self.out_dir / METRICS_FILE, "a" if self.resumed else "w") if main else None
        wandb_run = wandb_init(cfg) if main and cfg.wandb_project else None
        bar = tqdm(
            total=self.max_steps,
            initial=self.step,
            disable=not (main and cfg.progress),
            unit="step",
            dynamic_ncols=True,
        )
        batches, loss, interrupted = self._batches(), self.train_loss, False
        window_tokens, window_time = 0, 0.0
        budget = TimeBudget(cfg.time_budget_s, cfg.warmup_steps) if cfg.time_budget_s else None
        try:
            while self.step < self.max_steps:
                start = time.perf_counter()
                out = self.train_step(batches)
                dt = time.perf_counter() - start
                self.elapsed += dt
                fits = budget.fits(self.step) if budget is not None else None
                if fits is not None:
                    self._replan(fits)
                    cfg, bar.total = self.cfg, self.max_steps
                window_tokens, window_time, loss = window_tokens + cfg.tokens_per_step, window_time + dt, out["loss"]
                record = {"step": self.step, "tokens": self.tokens, **out}
                if cfg.eval_every and self.step % cfg.eval_every == 0 or self.step == self.max_steps:
                    self.val_loss = record["val_loss"] = self.validation_loss()
                if main:
                    tok_s = window_tokens / max(window_time, 1e-9)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{out['lr']:.2e}", tok_s=f"{tok_s:,.0f}", refresh=False)
                    if self.step % max(cfg.log_every, 1) == 0 or "val_loss" in record or self.step == self.max_steps:
                        record.update(tokens_per_s=tok_s, elapsed_s=self.elapsed)
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                        if wandb_run is not None:
                            wandb_run.log(record, step=self.step)
                        window_tokens, window_time = 0, 0.0
                over = budget is not None and budget.over()
                if over and self._stop_signal is None:
                    logger.warning(
                        "over 1.25x the time budget (%.0f s): stopping at step %d", cfg.time_budget_s, self.step
                    )
                stop = distributed.any_across(self._stop_signal is not None or over, self.info)
                if stop and "val_loss" not in record:
                    self.val_loss = self.validation_loss()  # the result reports the final model
                if stop or self.step == self.max_steps or (cfg.save_every and self.step % cfg.save_every == 0):
                    self.save_checkpoint(train_loss=loss)
                if stop:
                    interrupted = True
                    logger.warning("interrupted at step %d; checkpoint saved in %s", self.step, self.ckpt_dir)
                    break
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
            if wandb_run is not None:
                wandb_run.finish()
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
        return TrainResult(
            out_dir=str(self.out_dir),
            step=self.step,
            max_steps=self.max_steps,
            tokens=self.tokens,
            train_loss=loss,
            val_loss=self.val_loss,
            interrupted=interrupted,
            elapsed_s=self.elapsed,
        )


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, **kwargs: Any) -> TrainResult:
    """Train a model as ``cfg`` says and save it in ``cfg.out_dir/checkpoint``.

    Rank 0 holds the run directory's writer lock (``tl_bilinear.rundir.run_lock``) throughout.

    Args:
        cfg: the run's settings.
        resume: continue the run in ``cfg.out_dir`` exactly.
        overwrite: replace a previous run in ``cfg.out_dir`` (deleting its files) instead of refusing.
        **kwargs: passed to ``Trainer`` (``stream_factory``, ``tokenizer``).

    Returns:
        The ``TrainResult``; ``tl_bilinear.load(cfg.out_dir)`` gives the model.

    Raises:
        TrainingDiverged: on a non-finite loss.
        ResumeMismatch: if resuming a run with a different config.
        FileExistsError: if ``cfg.out_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        RunLocked: if another process is writing into ``cfg.out_dir``.
    """
    main = int(os.environ.get("RANK", "0")) == 0  # before the process group exists
    with run_lock(cfg.out_dir, "tl-bilinear train") if main else contextlib.nullcontext():
        return Trainer(cfg, resume=resume, overwrite=overwrite, **kwargs).run()
