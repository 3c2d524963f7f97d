"""``TrainConfig``: every setting of a training run, JSON-serialisable."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from transformer_lens import HookedTransformerConfig

from tl_bilinear.checks import MAX_LR
from tl_bilinear.config import get_config, get_preset, validate_model_fields

SCHEDULES = ("linear", "cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16")

#: Fields that may differ when resuming a run (they do not change the trajectory).
RESUMABLE_FIELDS = frozenset(
    {
        "out_dir",
        "eval_every",
        "save_every",
        "log_every",
        "progress",
        "wandb_project",
        "device",
        "compile",
        "num_threads",
        "time_budget_s",
    }
)


@dataclass
class TrainConfig:
    """Settings of one training run (see ``tl_bilinear.train.train``).

    Attributes:
        out_dir: the run directory (checkpoint/, metrics.jsonl, tokenizer/).
        preset: the model preset (``tl_bilinear.list_presets()``).
        model_overrides: HookedTransformerConfig fields applied to the preset, e.g.
            ``{"act_fn": "silu"}`` for a SwiGLU baseline.
        data: the text source: ``"builtin"`` (the procedural story corpus), a Hugging
            Face dataset name, or a local file/directory.
        tokenizer: a tokenizer directory; ``None`` trains a BPE tokenizer with
            ``d_vocab`` entries on ``tokenizer_docs`` training documents.
        tokenizer_docs: how many documents train the tokenizer.
        total_tokens: the token budget; steps = total_tokens // tokens_per_step.
        batch_size: sequences per optimizer step, summed over ranks and accumulation.
        grad_accum: micro-batches per optimizer step (per rank).
        lr: the peak learning rate.
        final_lr_frac: the learning rate at the last step, as a fraction of ``lr``.
        warmup_steps: linear warm-up steps from 0 to ``lr``.
        schedule: ``"linear"`` decay (the paper's), ``"cosine"`` or ``"constant"``.
        weight_decay: AdamW decoupled weight decay, on weight matrices only (not on the
            embedding W_E; biases are frozen at zero and norms have no parameters).
        beta1: AdamW beta1.
        beta2: AdamW beta2.
        eps: AdamW epsilon.
        grad_clip: maximum global gradient norm (0 disables clipping).
        precision: ``"fp32"``, ``"bf16"`` (autocast, parameters stay fp32) or ``"auto"``
            (measured before training: bf16 where it is clearly faster on this device;
            see ``tl_bilinear.train.precision``).
        compile: wrap the forward in ``torch.compile``.
        fast_attention: use the SDPA attention forward while training (hooks other than
            ``hook_attn_scores``/``hook_pattern`` still fire; see ``tl_bilinear.train.sdpa``).
        eval_every: steps between validation losses (0: only at the end).
        eval_batches: validation micro-batches (a fixed held-out set).
        save_every: steps between checkpoints (0: only at the end and on Ctrl-C).
        log_every: steps between metrics lines.
        seed: model initialisation, data order and tokenizer seed.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        num_threads: CPU threads for torch (``None``: torch's default).
        progress: show a tqdm progress bar.
        wandb_project: also log to this Weights & Biases project (needs ``wandb``).
        time_budget_s: fit the run into this many wall-clock seconds: at step
            ``max(5, min(warmup_steps, 20))`` the measured time per step sets the number
            of steps (at most ``total_tokens``' worth) so training ends in time; steps
            before then are warm-up steps, whose learning rates do not depend on it.
            Every 25 steps the plan is re-checked against the recent speed (a change
            changes the slope of the rest of the decay); a run still going at 1.25x the
            budget stops like a Ctrl-C (checkpoint saved). Such runs resume, but not
            exactly.
    """

    out_dir: str = "runs/bilinear"
    preset: str = "ts-tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: str = "builtin"
    tokenizer: str | None = None
    tokenizer_docs: int = 20_000
    total_tokens: int = 2_000_000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    final_lr_frac: float = 0.0
    warmup_steps: int = 50
    schedule: str = "linear"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    precision: str = "auto"
    compile: bool = False
    fast_attention: bool = True
    eval_every: int = 200
    eval_batches: int = 8
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    progress: bool = True
    wandb_project: str | None = None
    time_budget_s: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field.

        Raises:
            ValueError: naming the bad field, its value, and what is allowed (a bad
                ``model_overrides`` entry too: ``tl_bilinear.config.validate_model_fields``).
            KeyError: for an unknown preset (the message lists the presets).
        """
        positive = ("total_tokens", "batch_size", "grad_accum", "eval_batches", "tokenizer_docs")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "eval_every", "save_every", "log_every", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            raise ValueError(
                f"lr must be a finite number in (0, {MAX_LR:g}] (AdamW; typical 1e-4 to 1e-2), got {self.lr!r}"
            )
        if not 0 <= self.final_lr_frac <= 1:
            raise ValueError(f"final_lr_frac must be in [0, 1], got {self.final_lr_frac!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {self.num_threads!r}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be positive (or None), got {self.time_budget_s!r}")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} is not divisible by grad_accum={self.grad_accum}")
        if not isinstance(self.model_overrides, dict):
            raise ValueError(
                f"model_overrides must be a dict of HookedTransformerConfig fields, got {self.model_overrides!r}"
            )
        get_preset(self.preset)  # KeyError listing the presets
        validate_model_fields(self.model_overrides, where="model_overrides")
        self._model_cfg = get_config(self.preset, **self.model_overrides)  # built once: see model_config()

    def model_config(self) -> HookedTransformerConfig:
        """The HookedTransformerConfig of the preset with ``model_overrides`` applied.

        Built and validated once, by ``validate()`` (``dataclasses.replace`` builds a new
        one); shared, so copy it before changing it.

        Returns:
            The model config.
        """
        return self._model_cfg

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step: ``batch_size * n_ctx``."""
        return self.batch_size * self._model_cfg.n_ctx

    @property
    def max_steps(self) -> int:
        """Optimizer steps in the run: ``total_tokens // tokens_per_step`` (at least 1)."""
        return max(1, self.total_tokens // self.tokens_per_step)

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict.

        Returns:
            ``{field: value}`` for every field.
        """
        data = dataclasses.asdict(self)
        json.dumps(data)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from ``to_json`` output.

        Args:
            data: ``{field: value}``; missing fields take their defaults.

        Returns:
            The validated config.

        Raises:
            ValueError: for unknown fields or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Fields (except ``RESUMABLE_FIELDS``) whose values differ.

        Args:
            other: the config to compare with.

        Returns:
            ``{name: (value here, value in other)}``; empty when a resume may continue.
        """
        mine, theirs = self.to_json(), other.to_json()
        return {k: (mine[k], theirs[k]) for k in mine if k not in RESUMABLE_FIELDS and mine[k] != theirs[k]}
