"""AdamW parameter groups and the learning-rate schedule."""

from __future__ import annotations

import math

import torch
from transformer_lens import HookedTransformer

from tl_bilinear.train.config import TrainConfig

#: Parameters never decayed even though they are matrices: the embedding lookup tables
#: (tokens, and learned positions where a config uses them instead of rotary).
NO_DECAY_NAMES = ("embed.W_E", "pos_embed.W_pos")


def param_groups(model: HookedTransformer, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay on weight matrices, none on anything else.

    Trainable parameters with two or more dimensions (W_Q, W_K, W_V, W_O, W_in, W_gate,
    W_out, W_U) are decayed; the embeddings ``W_E`` and ``W_pos`` and any vector (norm gains, biases if
    unfrozen) are not. Frozen parameters (the zero biases) are left out entirely, so
    they stay exactly zero.

    Args:
        model: the model.
        weight_decay: the decay of the first group.

    Returns:
        ``[{"params": decayed, "weight_decay": wd, "names": [...]}, {"params": rest,
        "weight_decay": 0.0, "names": [...]}]``.
    """
    decay, no_decay, decay_names, no_decay_names = [], [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim >= 2 and not name.endswith(NO_DECAY_NAMES):
            decay.append(param)
            decay_names.append(name)
        else:
            no_decay.append(param)
            no_decay_names.append(name)
    return [
        {"params": decay, "weight_decay": weight_decay, "names": decay_names},
        {"params": no_decay, "weight_decay": 0.0, "names": no_decay_names},
    ]


def make_optimizer(model: HookedTransformer, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``param_groups(model)`` with the config's betas, eps and decay.

    Args:
        model: the model.
        cfg: the training config.

    Returns:
        The optimizer (learning rates are set each step by ``lr_at``); the fused CUDA
        kernel when the parameters are on a GPU.
    """
    groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, cfg.weight_decay)]
    on_cuda = any(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, **({"fused": True} if on_cuda else {})
    )


def lr_at(step: int, cfg: TrainConfig, max_steps: int | None = None) -> float:
    """The learning rate of optimizer step ``step`` (0-based).

    Linear warm-up from ``lr / warmup_steps`` to ``lr`` over ``warmup_steps`` steps, then
    ``"linear"`` decay (the paper's schedule) or ``"cosine"`` decay to
    ``final_lr_frac * lr`` at the last step, or ``"constant"``.

    Args:
        step: the step index, ``0 <= step < max_steps``.
        cfg: the config (lr, warmup_steps, schedule, final_lr_frac).
        max_steps: total steps (default: ``cfg.max_steps``).

    Returns:
        The learning rate.
    """
    max_steps = cfg.max_steps if max_steps is None else max_steps
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    decay_steps = max(1, max_steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    final = cfg.final_lr_frac * cfg.lr
    if cfg.schedule == "linear":
        return cfg.lr + (final - cfg.lr) * progress
    return final + 0.5 * (cfg.lr - final) * (1 + math.cos(math.pi * progress))
