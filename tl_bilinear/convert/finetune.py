"""Continuing to train an existing model with the trainer (data, schedule, checkpoints, resume).

``finetune`` is what annealing is compared against (continued SwiGLU training at the same
token budget); ``FinetuneTrainer`` is the ``Trainer`` that starts from a model's weights
instead of a fresh initialisation, and ``train_config_for`` the TrainConfig whose preset and
overrides rebuild that model's config.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from tl_bilinear.compat import HookedTransformer, HookedTransformerConfig
from tl_bilinear.config import get_config, list_presets
from tl_bilinear.train import TrainConfig, Trainer, TrainResult
from tl_bilinear.train.distributed import run_writer_lock

_NOT_OVERRIDES = frozenset({"n_params", "device", "dtype"})


def train_config_for(model_cfg: HookedTransformerConfig, **fields: Any) -> TrainConfig:
    """A TrainConfig whose ``preset`` + ``model_overrides`` rebuild ``model_cfg``.

    Args:
        model_cfg: the config of the model to continue training.
        **fields: other TrainConfig fields (``out_dir``, ``total_tokens``, ``lr``, ...).

    Returns:
        The config.

    Raises:
        ValueError: if no preset + overrides reproduce ``model_cfg``, or a field is invalid.
    """
    preset = model_cfg.model_name if model_cfg.model_name in list_presets() else "ts-micro"
    base, mine = get_config(preset).to_dict(), model_cfg.to_dict()
    overrides = {k: v for k, v in mine.items() if k not in _NOT_OVERRIDES and base.get(k) != v}
    try:
        json.dumps(overrides)
    except TypeError as err:
        raise ValueError(f"the model's config has fields a training config cannot hold: {err}") from err
    rebuilt = get_config(preset, **overrides).to_dict()
    differ = sorted(k for k in mine if k not in _NOT_OVERRIDES and rebuilt.get(k) != mine[k])
    if differ:
        raise ValueError(f"cannot express the model's config as preset {preset!r} + overrides: {differ} differ")
    return TrainConfig(preset=preset, model_overrides=overrides, **fields)


class FinetuneTrainer(Trainer):
    """A ``Trainer`` whose model starts from ``source``'s weights (``source`` is not modified).

    Biases keep their values and stay frozen, like the trainer's. Subclasses adapt the
    fresh copy in ``prepare``.

    Args:
        cfg: the run's settings (``train_config_for(source.cfg, ...)``).
        source: the model to continue training.
        **kwargs: ``Trainer`` arguments (``resume``, ``tokenizer``, ``stream_factory``).
    """

    def __init__(self, cfg: TrainConfig, source: HookedTransformer, **kwargs: Any) -> None:
        weights = {name: tensor.detach() for name, tensor in source.state_dict().items()}

        def from_source(model_cfg: HookedTransformerConfig, device: torch.device) -> HookedTransformer:
            model = HookedTransformer(model_cfg, move_to_device=False)
            model.load_state_dict(weights)
            for name, param in model.named_parameters():
                param.requires_grad_(not name.rsplit(".", 1)[-1].startswith("b_"))
            self.prepare(model)
            return model.to(device)

        super().__init__(cfg, model_factory=from_source, **kwargs)

    def prepare(self, model: HookedTransformer) -> None:
        """Adapt the copy of the source model before training (default: nothing).

        Args:
            model: the copy, changed in place.
        """


def trainer_kwargs(model: HookedTransformer, tokenizer: Any, train_fields: dict[str, Any]) -> dict[str, Any]:
    """The ``Trainer`` tokenizer argument: a directory goes into ``train_fields["tokenizer"]``.

    Args:
        model: the source model (its ``tokenizer`` is the default).
        tokenizer: a tokenizer object, a tokenizer directory, or None.
        train_fields: the TrainConfig fields, updated in place for a directory.

    Returns:
        ``{"tokenizer": object or None}``.
    """
    tokenizer = tokenizer if tokenizer is not None else model.tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        train_fields["tokenizer"], tokenizer = str(tokenizer), None
    return {"tokenizer": tokenizer}


def finetune(
    model: HookedTransformer,
    out_dir: str | os.PathLike,
    *,
    total_tokens: int,
    resume: bool = False,
    tokenizer: Any = None,
    stream_factory: Any = None,
    **train_fields: Any,
) -> TrainResult:
    """Continue training ``model`` (a copy) with the trainer into the run directory ``out_dir``.

    Args:
        model: the model to start from (not modified).
        out_dir: the run directory; ``tl_bilinear.load(out_dir)`` gives the result.
        total_tokens: the run's token budget.
        resume: continue an interrupted run exactly.
        tokenizer: a tokenizer or tokenizer directory (default: ``model.tokenizer``).
        stream_factory: the trainer's token-block streams (default: ``data`` tokenized).
        **train_fields: other ``TrainConfig`` fields (``data``, ``lr``, ``warmup_steps``, ...).

    Returns:
        The run's ``TrainResult``.

    Raises:
        ValueError: for settings the trainer refuses.
        RunLocked: if another process is writing into ``out_dir`` (the message names it and
            the holder's pid); the lock is held until the run ends.
    """
    kwargs = trainer_kwargs(model, tokenizer, train_fields)
    cfg = train_config_for(model.cfg, out_dir=str(out_dir), total_tokens=total_tokens, **train_fields)
    with run_writer_lock(out_dir, "tl_bilinear.finetune"):
        return FinetuneTrainer(cfg, model, resume=resume, stream_factory=stream_factory, **kwargs).run()
