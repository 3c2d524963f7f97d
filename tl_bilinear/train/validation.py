"""A run's validation: fixed held-out blocks, their mean loss, and what the final one may use."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from tl_bilinear.compat import HookedTransformer
from tl_bilinear.train import distributed
from tl_bilinear.train.budget import Clock, TimeBudget, final_validation_batches
from tl_bilinear.train.loss import lm_loss
from tl_bilinear.train.precision import autocast

logger = logging.getLogger(__name__)


class Validation:
    """The first ``batches`` micro-batches of a run's validation split, read once and kept.

    Args:
        stream: ``() -> stream`` of this rank's validation split (``.batches(n)``); read on
            first use.
        batches: the validation batches configured (``cfg.eval_batches``).
        micro_batch: blocks per batch.
        info: this process's place in the run (the device; losses are averaged over ranks).
        clock: seconds from an arbitrary origin, for the measured time per batch.
        source: the data's name, for the error message.
    """

    def __init__(
        self,
        stream: Callable[[], Any],
        batches: int,
        micro_batch: int,
        info: distributed.DistInfo,
        clock: Clock,
        source: str,
    ) -> None:
        self._stream, self.batches, self.micro_batch = stream, batches, micro_batch
        self.info, self.clock, self.source = info, clock, source
        self._blocks: list[Tensor] | None = None
        self.batch_s: float | None = None  # measured seconds per validation batch

    def _read(self) -> list[Tensor]:
        if self._blocks is None:
            self._blocks = list(itertools.islice(self._stream().batches(self.micro_batch), self.batches))
            if not self._blocks:
                raise ValueError(f"the validation split of {self.source!r} yields no blocks")
        return self._blocks

    def loss(
        self,
        model: HookedTransformer,
        precision: str,
        max_batches: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> float | None:
        """The mean loss of ``model`` on the validation blocks (averaged over ranks).

        Args:
            model: the model (put in eval mode for the validation, then back).
            precision: ``"fp32"`` or ``"bf16"`` (autocast).
            max_batches: use only the first this many blocks.
            should_stop: checked before every batch; when it says stop, the validation is
                abandoned (under DDP it must give every rank the same answer).

        Returns:
            The loss in nats per token, or None if ``should_stop`` stopped it.

        Raises:
            ValueError: if the validation split yields no blocks.
        """
        blocks = self._read()[: max_batches or None]
        was_training = model.training
        model.eval()
        total = torch.zeros((), device=self.info.device)
        start = self.clock()
        try:
            with torch.no_grad(), autocast(self.info.device, precision):
                for done, block in enumerate(blocks):
                    if should_stop is not None and should_stop():
                        logger.warning("stopped before finishing the validation (%d of %d batches)", done, len(blocks))
                        return None
                    block = block.to(self.info.device)
                    total += lm_loss(model(block, return_type="logits"), block)
        finally:
            model.train(was_training)
        self.batch_s = (self.clock() - start) / len(blocks)
        return float(distributed.mean_across(total / len(blocks), self.info).item())

    def final_batches(self, budget: TimeBudget | None, micro_batches_per_step: int) -> int:
        """How many batches the run's final validation uses: all, or what the time budget leaves.

        Every rank gets the same count (the validation's collectives need it).

        Args:
            budget: the run's time budget (None: all batches).
            micro_batches_per_step: micro-batches in one training step (gradient accumulation).

        Returns:
            A count in ``[1, batches]``.
        """
        fit = final_validation_batches(budget, self.batches, self.batch_s, micro_batches_per_step)
        fit = min(distributed.gather_json(fit, self.info))
        if fit < self.batches:
            logger.info("the final validation uses %d of %d batches (the time budget)", fit, self.batches)
        return fit
