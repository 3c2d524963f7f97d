"""Training bilinear (and baseline) HookedTransformers: the loop, checkpoints, resume, DDP.

The public entry point is ``train(TrainConfig(...))``; ``tl-bilinear train`` wraps it.
"""

from tl_bilinear.train.baselines import BASELINES, PAPER_TABLE_6, baseline_config, baseline_overrides
from tl_bilinear.train.config import TrainConfig
from tl_bilinear.train.fast import use_fast_attention
from tl_bilinear.train.loop import ResumeMismatch, Trainer, TrainingDiverged, TrainResult, lm_loss, train
from tl_bilinear.train.optim import lr_at, make_optimizer, param_groups

__all__ = [
    "BASELINES",
    "PAPER_TABLE_6",
    "ResumeMismatch",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "baseline_config",
    "baseline_overrides",
    "lm_loss",
    "lr_at",
    "make_optimizer",
    "param_groups",
    "train",
    "use_fast_attention",
]
