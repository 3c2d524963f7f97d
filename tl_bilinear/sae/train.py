"""Training a TopK SAE on a model's activations (the paper's optimiser and settings).

Adam at ``lr`` with cosine decay to ``final_lr``, batches of activations from a shuffling
buffer, decoder rows kept unit norm (gradient projected, then renormalised), ``b_dec``
started at the mean of the first batch. The defaults are the paper's Table 4 (recipe
``"paper"``: lr 1e-4, batches of 4,096). For budgets of a few million tokens, recipe
``"small"`` (lr 4e-3, batches of 1,024) is measured to be far better: there the number of
optimizer steps, not the data, is what limits an SAE (README, "SAE features"). A checkpoint directory holds the SAE
(``save_sae`` layout), the optimizer state and the data-stream position; ``resume=True``
continues from it (the buffer is refilled from the saved stream position, so the exact
order of activations after a resume differs from an uninterrupted run).
"""

from __future__ import annotations

import json
import logging
import math
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from tl_bilinear.compat import HookedTransformer
from tl_bilinear.data import TokenBlockStream
from tl_bilinear.model import atomic_directory
from tl_bilinear.rundir import refuse_replacing_run, writing_into
from tl_bilinear.sae.activations import ActivationBuffer, hook_layer, resolve_hook
from tl_bilinear.sae.evaluate import SAEMetrics, evaluate_sae
from tl_bilinear.sae.io import WEIGHTS_FILE, check_tensors, read_sae_meta, sae_from_tensors, write_sae_files
from tl_bilinear.sae.model import SAEConfig, TopKSAE
from tl_bilinear.train.sdpa import sdpa_forwards
from tl_bilinear.train.state import optimizer_from_files, read_state, truncate_metrics, write_state

logger = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"
DEAD_FILE = "dead_features.safetensors"
SAE_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"lr": 1e-4, "batch_size": 4096},  # the paper's Table 4
    "small": {"lr": 4e-3, "batch_size": 1024},  # measured for a few million tokens on CPU (README)
}


@dataclass
class SAETrainConfig:
    """Settings of one SAE training run.

    Attributes:
        layer: the layer whose site is read.
        site: ``"mlp_in"``, ``"mlp_out"`` or any hook name of the model.
        expansion: d_sae / d_in.
        k: features kept per token.
        lr: Adam learning rate (cosine decay to ``final_lr``); the paper's 1e-4 by default.
        final_lr: the learning rate at the last step.
        batch_size: activations per step; the paper's 4,096 by default.
        total_tokens: activations to train on.
        buffer_tokens: activations held by the shuffling buffer.
        model_batch_size: token blocks per model forward.
        data: the text source (see ``tl_bilinear.data.iter_documents``).
        seed: initialisation, shuffling and data seed.
        eval_every: steps between evaluations (0: only at the end).
        eval_batches: validation blocks batches per evaluation.
        dead_tokens: a feature that has not fired in this many training activations is dead.
        save_every: steps between checkpoints (0: only at the end).
    """

    layer: int
    site: str = "mlp_in"
    expansion: int = 4
    k: int = 30
    lr: float = SAE_RECIPES["paper"]["lr"]
    final_lr: float = 2e-5
    batch_size: int = SAE_RECIPES["paper"]["batch_size"]
    total_tokens: int = 4_000_000
    buffer_tokens: int = 65_536
    model_batch_size: int = 16
    data: str = "builtin"
    seed: int = 0
    eval_every: int = 200
    eval_batches: int = 4
    dead_tokens: int = 1_000_000
    save_every: int = 0

    def __post_init__(self):
        for name in ("expansion", "k", "batch_size", "total_tokens", "buffer_tokens", "model_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        if not (math.isfinite(self.lr) and self.lr > 0 and math.isfinite(self.final_lr) and self.final_lr >= 0):
            raise ValueError(f"lr={self.lr} must be positive and final_lr={self.final_lr} non-negative (finite)")

    @classmethod
    def from_recipe(cls, recipe: str, layer: int, **fields: Any) -> SAETrainConfig:
        """The settings of a named recipe (``SAE_RECIPES``), ``fields`` overriding them (None values are ignored).

        Raises:
            ValueError: if ``recipe`` is not a known recipe (they are listed).
        """
        if recipe not in SAE_RECIPES:
            raise ValueError(f"unknown SAE recipe {recipe!r}: use one of {sorted(SAE_RECIPES)}")
        given = {name: value for name, value in fields.items() if value is not None}
        return cls(layer=layer, **{**SAE_RECIPES[recipe], **given})

    @property
    def steps(self) -> int:
        """Optimizer steps: ``total_tokens // batch_size`` (at least one)."""
        return max(1, self.total_tokens // self.batch_size)


@dataclass
class SAETrainResult:
    """What ``train_sae`` returns.

    Attributes:
        sae: the trained SAE.
        hook_name: the hook it reads.
        metrics: the last evaluation.
        dead_fraction: share of features dead at the end.
        history: every evaluation, with its step.
    """

    sae: TopKSAE
    hook_name: str
    metrics: SAEMetrics
    dead_fraction: float
    history: list[dict[str, Any]] = field(default_factory=list)


def cosine_lr(cfg: SAETrainConfig, step: int) -> float:
    """The learning rate at ``step``: cosine decay from ``cfg.lr`` to ``cfg.final_lr``."""
    return cfg.final_lr + (cfg.lr - cfg.final_lr) * (1 + math.cos(math.pi * step / cfg.steps)) / 2


def _stream(model: HookedTransformer, cfg: SAETrainConfig, split: str) -> TokenBlockStream:
    if model.tokenizer is None:
        raise ValueError("the model has no tokenizer: load it with tl_bilinear.load from a checkpoint that has one")
    return TokenBlockStream(cfg.data, model.tokenizer, model.cfg.n_ctx, split=split, seed=cfg.seed, repeat=True)


def _validation(model: HookedTransformer, cfg: SAETrainConfig) -> list[torch.Tensor]:
    batches = _stream(model, cfg, "validation").batches(cfg.model_batch_size)
    return [next(batches) for _ in range(cfg.eval_batches)]


@dataclass
class _Run:
    """The state of a run that a checkpoint holds: the SAE, its optimizer, the data position, the step."""

    hook_name: str
    sae: TopKSAE
    optimizer: torch.optim.Optimizer
    stream: TokenBlockStream
    since_fired: torch.Tensor
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def dead_fraction(self, cfg: SAETrainConfig) -> float:
        """Share of features that have not fired in the last ``cfg.dead_tokens`` activations."""
        return (self.since_fired >= cfg.dead_tokens).float().mean().item()


def _start(model: HookedTransformer, cfg: SAETrainConfig, out_dir, resume: bool) -> _Run:
    """A fresh run, or the run saved in ``out_dir`` when resuming."""
    hook_name = resolve_hook(model, cfg.layer, cfg.site)
    if hook_layer(hook_name) not in (None, cfg.layer):
        raise ValueError(f"hook {hook_name!r} is not in layer {cfg.layer}")
    d_in = model.cfg.d_model
    sae = TopKSAE(SAEConfig(d_in, cfg.expansion * d_in, cfg.k, hook_name, cfg.layer), seed=cfg.seed)
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long)
    run = _Run(hook_name, sae, torch.optim.Adam(sae.parameters(), lr=cfg.lr), _stream(model, cfg, "train"), since_fired)
    if resume:
        run.step = _restore(out_dir, cfg, run)
        run.history = [json.loads(line) for line in (Path(out_dir) / METRICS_FILE).read_text().splitlines() if line]
    return run


def sae_step(
    sae: TopKSAE, optimizer: torch.optim.Optimizer, x: Float[Tensor, "batch d_in"], lr: float
) -> tuple[Tensor, Int[Tensor, "batch k"]]:
    """One step of the paper's optimiser on a batch of activations.

    The loss is the squared reconstruction error summed over ``d_in`` and averaged over the
    batch; the decoder rows' gradients are projected off the rows, and the rows renormalised
    after the step.

    Args:
        sae: the SAE (changed in place).
        optimizer: its optimizer.
        x: [batch, d_in] activations.
        lr: the learning rate of this step.

    Returns:
        ``(loss, indices)``: the loss before the step (detached) and the features that fired.
    """
    values, indices = sae.encode_topk(x)
    x_hat = torch.zeros(len(x), sae.d_sae).scatter_(-1, indices, values) @ sae.W_dec + sae.b_dec
    loss = (x - x_hat).square().sum(-1).mean()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    sae.project_decoder_grad_()
    optimizer.step()
    sae.normalize_decoder_()
    return loss.detach(), indices


def _train_step(run: _Run, cfg: SAETrainConfig, x: Tensor) -> Tensor:
    """One optimizer step of the run on the batch ``x`` (``b_dec`` starts at its mean); returns the loss."""
    if run.step == 0:
        with torch.no_grad():
            run.sae.b_dec.copy_(x.mean(0))
    loss, indices = sae_step(run.sae, run.optimizer, x, cosine_lr(cfg, run.step))
    fired = torch.zeros(run.sae.d_sae, dtype=torch.bool)
    fired[indices.flatten()] = True
    run.since_fired = torch.where(fired, 0, run.since_fired + len(x))
    run.step += 1
    return loss


def _evaluate(model: HookedTransformer, run: _Run, cfg: SAETrainConfig, validation, out_dir) -> SAEMetrics:
    """Evaluate on the validation blocks; record the result in the history (written to ``out_dir``'s metrics file)."""
    metrics = evaluate_sae(model, run.sae, run.hook_name, validation)
    record = {"step": run.step, **metrics.to_dict(), "dead_fraction": run.dead_fraction(cfg)}
    run.history.append(record)
    logger.info("sae step %d: %s", run.step, record)
    if out_dir is not None:  # the whole history: a fresh run into an old directory does not append to its lines
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / METRICS_FILE).write_text("".join(json.dumps(line) + "\n" for line in run.history))
    return metrics


def _save(out_dir, run: _Run, cfg: SAETrainConfig) -> None:
    with atomic_directory(out_dir) as tmp:
        meta = {"train_config": asdict(cfg), "step": run.step, "metrics": run.history[-1] if run.history else None}
        write_sae_files(tmp, run.sae, meta)
        state = {"step": run.step, "stream": run.stream.state_dict(), "hook_name": run.hook_name}
        write_state(tmp, run.optimizer, state)
        save_file({"since_fired": run.since_fired.contiguous()}, str(Path(tmp) / DEAD_FILE))
        history = Path(out_dir) / METRICS_FILE
        if history.exists():
            (Path(tmp) / METRICS_FILE).write_text(history.read_text())


def _due(every: int, step: int) -> bool:
    return bool(every) and step % every == 0


def train_sae(
    model: HookedTransformer,
    cfg: SAETrainConfig,
    out_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> SAETrainResult:
    """Train a TopK SAE on the activations at ``cfg.site`` of ``cfg.layer``.

    Args:
        model: the model (its weights are not changed; it runs with the SDPA forwards of
            ``tl_bilinear.train.sdpa.sdpa_forwards`` during training, evaluations included, and is restored after).
        cfg: the settings.
        out_dir: checkpoint directory (None: nothing is saved).
        resume: continue from the checkpoint in ``out_dir``.
        progress: show a progress bar.

    Returns:
        The SAETrainResult.

    Raises:
        ValueError: for a bad hook name (close names listed), settings that do not match
            a checkpoint being resumed, or a model without a tokenizer.
        FileNotFoundError: if ``resume`` and there is no checkpoint.
        FileExistsError: if ``out_dir`` holds a model's training run (checked before any work).
        RunLocked: if another process is writing the run ``out_dir`` belongs to.
    """
    with nullcontext() if out_dir is None else writing_into(out_dir, "tl-bilinear sae train"):
        if out_dir is not None:
            refuse_replacing_run(out_dir)  # before any work, not at the first save
        run = _start(model, cfg, out_dir, resume)
        torch.manual_seed(cfg.seed + run.step)
        validation = _validation(model, cfg)
        with sdpa_forwards(model):
            metrics = _loop(model, cfg, run, validation, out_dir, progress)
    return SAETrainResult(run.sae.eval(), run.hook_name, metrics, run.dead_fraction(cfg), run.history)


def _loop(model: HookedTransformer, cfg: SAETrainConfig, run: _Run, validation, out_dir, progress: bool) -> SAEMetrics:
    """Train from ``run.step`` to ``cfg.steps`` on shuffled activations; return the last evaluation."""
    capacity = max(cfg.buffer_tokens, 2 * cfg.batch_size)
    batches = run.stream.batches(cfg.model_batch_size)
    buffer = ActivationBuffer(
        model, run.hook_name, batches, batch_size=cfg.batch_size, capacity=capacity, seed=cfg.seed + run.step
    )
    metrics = None
    bar = tqdm(total=cfg.steps, initial=run.step, desc="sae", disable=not progress, unit="step")
    for x in buffer:
        if run.step >= cfg.steps:
            break
        loss = _train_step(run, cfg, x)
        bar.update(1)
        bar.set_postfix(mse=f"{loss.item():.4g}", dead=f"{run.dead_fraction(cfg):.2%}")
        last = run.step == cfg.steps
        if last or _due(cfg.eval_every, run.step):
            metrics = _evaluate(model, run, cfg, validation, out_dir)
        if out_dir is not None and (last or _due(cfg.save_every, run.step)):
            _save(out_dir, run, cfg)
    bar.close()
    return metrics if metrics is not None else evaluate_sae(model, run.sae, run.hook_name, validation)


def _restore(out_dir, cfg: SAETrainConfig, run: _Run) -> int:
    """Load a checkpoint into the fresh run; return its step."""
    if out_dir is None:
        raise ValueError("resume=True needs out_dir")
    meta = read_sae_meta(out_dir)
    saved = meta.get("train_config", {})
    for key in ("layer", "site", "expansion", "k", "batch_size", "data", "seed"):
        if saved.get(key) != getattr(cfg, key):
            raise ValueError(
                f"cannot resume: the checkpoint was trained with {key}={saved.get(key)!r}, this run has "
                f"{key}={getattr(cfg, key)!r}; resume with the same settings"
            )
    sae = run.sae
    tensors = load_file(str(Path(out_dir) / WEIGHTS_FILE))
    check_tensors(
        tensors, {"W_enc": (sae.d_in, sae.d_sae), "W_dec": (sae.d_sae, sae.d_in), "b_dec": (sae.d_in,)}, str(out_dir)
    )
    loaded = sae_from_tensors(sae.cfg, tensors)
    sae.load_state_dict(loaded.state_dict())
    state_tensors, state = read_state(out_dir)
    optimizer_from_files(run.optimizer, state_tensors, state["optimizer"])
    run.stream.load_state_dict(state["stream"])
    step = int(state["step"])
    run.since_fired.copy_(load_file(str(Path(out_dir) / DEAD_FILE))["since_fired"])
    truncate_metrics(Path(out_dir) / METRICS_FILE, step)
    return step
