"""The training loss, the error a non-finite one raises, and the advice it gives."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def lm_loss(logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, ""]:
    """Mean next-token cross-entropy in nats (computed in float32).

    Args:
        logits: the model's logits.
        tokens: the input tokens.

    Returns:
        The scalar loss.
    """
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())


def diverged_advice(ckpt_dir: Path, lr: float, warmup_steps: int) -> str:
    """What is on disk after a divergence, and a fix that can be followed (``--resume`` would repeat it).

    Args:
        ckpt_dir: the run's checkpoint directory.
        lr: the peak learning rate that diverged.
        warmup_steps: its warm-up.

    Returns:
        One or two sentences for the ``TrainingDiverged`` message.
    """
    from tl_bilinear.model import read_checkpoint_config

    fix = f"train again with a lower --lr (now {lr}) or more --warmup (now {warmup_steps}) in a new --out, or here with --overwrite"
    try:
        step = read_checkpoint_config(ckpt_dir).get("step")
    except (FileNotFoundError, ValueError):
        return f"No checkpoint was written yet; {fix}."
    return (
        f"The last good checkpoint (step {step}) is kept in {str(ckpt_dir)!r} and loads as it is; "
        f"--resume would repeat the same steps, so {fix} (which replaces it)."
    )
