"""Setting a run up: resume checks, the tokenizer, the model, micro-batches, data streams, wandb."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tl_bilinear.checkpoint import (
    TOKENIZER_DIR,
    load_checkpoint_tokenizer,
    read_checkpoint_config,
    resolve_checkpoint,
)
from tl_bilinear.rundir import refuse_existing_run
from tl_bilinear.train import distributed
from tl_bilinear.train.config import TrainConfig
from tl_bilinear.train.state import read_state

logger = logging.getLogger(__name__)

#: ``stream_factory(split, rank, world_size)`` -> a token-block stream (see ``Trainer``).
StreamFactory = Callable[[str, int, int], Any]
#: ``model_factory(model_cfg, device)`` -> the HookedTransformer to train (see ``Trainer``).
ModelFactory = Callable[[Any, torch.device], Any]


class ResumeMismatch(ValueError):
    """``resume`` was asked for a run directory written with a different config."""


def check_resume(
    cfg: TrainConfig, world_size: int, resume: bool, *, is_main: bool = True, overwrite: bool = False
) -> tuple[dict, dict] | None:
    """The saved training state to resume from, after checking it matches ``cfg``.

    Args:
        cfg: the new run's config (``cfg.out_dir`` is the run directory).
        world_size: the number of processes of the new run.
        resume: whether the caller asked to resume.
        is_main: whether this is rank 0 (which alone checks, or clears, a new run's directory).
        overwrite: a new run deletes a previous run's files in ``cfg.out_dir`` instead of refusing.

    Returns:
        ``(tensors, state)`` of ``read_state``, or ``None`` for a fresh run.

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint.
        FileExistsError: ``resume`` is false and the directory holds anything of a run (a
            checkpoint, even a damaged one, metrics, a tokenizer), unless ``overwrite``.
        ResumeMismatch: the saved run used another config or number of processes, or the
            checkpoint is not a training run's.
    """
    out_dir = Path(cfg.out_dir)
    if not resume:
        if is_main:
            refuse_existing_run(out_dir, overwrite=overwrite)
        return None
    try:
        directory = resolve_checkpoint(out_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"resume: {str(out_dir)!r} holds no checkpoint to resume; drop --resume to start a new run"
        ) from None
    meta = read_checkpoint_config(directory)
    if "train_config" not in meta:
        raise ResumeMismatch(
            f"cannot resume {str(out_dir)!r}: its checkpoint has no training config (a model saved with "
            "tl_bilinear.save, not a training run); start a new run in another directory"
        )
    saved_cfg = TrainConfig.from_json({**meta["train_config"], "out_dir": cfg.out_dir})
    diff = saved_cfg.differences(cfg)
    if saved_cfg.time_budget_s is not None and cfg.time_budget_s is not None:
        diff.pop("total_tokens", None)  # the saved one is the time budget's plan; the Trainer continues it
    if diff:
        listed = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, a, b in ((k, *v) for k, v in diff.items()))
        raise ResumeMismatch(
            f"cannot resume {str(out_dir)!r}: it was trained with a different config ({listed}). "
            "Resume with the saved settings, or start a new run in another directory."
        )
    tensors, state = read_state(directory)
    if state["world_size"] != world_size:
        raise ResumeMismatch(
            f"cannot resume {str(out_dir)!r} exactly: it ran on {state['world_size']} process(es), "
            f"this run has {world_size}; use the same number of processes"
        )
    return tensors, state


def prepare_tokenizer(cfg: TrainConfig, info: distributed.DistInfo, resumed: bool) -> Any:
    """The run's tokenizer: the checkpoint's (resume), ``cfg.tokenizer``, or a new BPE one.

    A new tokenizer (``d_vocab`` entries) is trained by rank 0 on the first
    ``cfg.tokenizer_docs`` training documents (never validation ones) and saved in
    ``out_dir/tokenizer``; the other ranks wait and load it.

    Args:
        cfg: the run's config (``tokenizer``, ``data``, ``seed``, ``tokenizer_docs``, ``d_vocab``).
        info: this process's place in the run (rank 0 trains a new tokenizer).
        resumed: whether the run resumes (then the checkpoint's tokenizer is used).

    Returns:
        The Hugging Face tokenizer, loaded from a directory.
    """
    from tl_bilinear.data import load_tokenizer, train_tokenizer

    out_dir = Path(cfg.out_dir)
    if resumed:
        directory = resolve_checkpoint(out_dir)
        return load_checkpoint_tokenizer(directory, read_checkpoint_config(directory), cfg.model_config().d_vocab)
    if cfg.tokenizer is not None:
        return load_tokenizer(cfg.tokenizer)
    tok_dir = out_dir / TOKENIZER_DIR
    if info.is_main:
        from tl_bilinear.data import is_validation, iter_documents

        docs = iter_documents(cfg.data, seed=cfg.seed)
        train_docs = (doc for i, doc in enumerate(docs) if not is_validation(i))
        vocab = cfg.model_config().d_vocab
        logger.info("training a %d-token BPE tokenizer on %s", vocab, cfg.data)
        train_tokenizer(
            train_docs,
            vocab_size=vocab,
            out_dir=tok_dir,
            max_documents=cfg.tokenizer_docs,
            show_progress=cfg.progress,
        )
    distributed.barrier(info)
    return load_tokenizer(tok_dir)


def default_streams(cfg: TrainConfig, tokenizer: Any) -> StreamFactory:
    """The trainer's default stream factory over ``cfg.data``.

    Args:
        cfg: the run's config (``data``, ``seed``, the model's ``n_ctx``).
        tokenizer: the Hugging Face tokenizer.

    Returns:
        ``(split, rank, world_size) -> TokenBlockStream``; the train split repeats, the
        validation split (``tl_bilinear.data.VAL_FRACTION`` of the documents) does not.
    """
    from tl_bilinear.data import TokenBlockStream

    n_ctx = cfg.model_config().n_ctx

    def factory(split: str, rank: int, world_size: int) -> Any:
        return TokenBlockStream(
            cfg.data,
            tokenizer,
            n_ctx,
            split=split,
            rank=rank,
            world_size=world_size,
            seed=cfg.seed,
            repeat=split == "train",
        )

    return factory


def wandb_init(cfg: TrainConfig) -> Any:
    """Start a wandb run (wandb is imported only here).

    Args:
        cfg: the run's config (``wandb_project``, ``out_dir``; logged as the run config).

    Returns:
        The wandb run.

    Raises:
        ImportError: if wandb is not installed (the message says how to install it).
    """
    try:
        import wandb
    except ImportError as err:
        raise ImportError("wandb_project is set but wandb is not installed: pip install wandb") from err
    return wandb.init(project=cfg.wandb_project, config=cfg.to_json(), dir=str(cfg.out_dir))


def build_training_model(
    model_cfg: Any, cfg: TrainConfig, device: torch.device, tokenizer: Any, model_factory: ModelFactory | None = None
) -> Any:
    """The model to train: ``make_model`` with ``cfg.seed`` (or ``model_factory``), with the tokenizer and SDPA forwards.

    Args:
        model_cfg: its HookedTransformerConfig (``cfg.model_config()``).
        cfg: the run's config (seed, ``fast_attention``).
        device: where to build it.
        tokenizer: ``model.tokenizer`` (``None`` for pre-tokenized data).
        model_factory: builds the model instead of ``make_model`` (e.g. from pretrained weights).

    Returns:
        The HookedTransformer.
    """
    from tl_bilinear.model import make_model

    model = (
        make_model(model_cfg, seed=cfg.seed, device=device)
        if model_factory is None
        else model_factory(model_cfg, device)
    )
    model.tokenizer = tokenizer
    if cfg.fast_attention:
        from tl_bilinear.train.sdpa import swap_in_sdpa_forwards

        swap_in_sdpa_forwards(model)
    return model


def micro_batch_size(cfg: TrainConfig, world_size: int) -> int:
    """Sequences per forward pass: ``batch_size`` split over the processes and the accumulation steps.

    Raises:
        ValueError: if ``batch_size`` is not a multiple of ``world_size * grad_accum``.
    """
    parts = world_size * cfg.grad_accum
    if parts > cfg.batch_size or cfg.batch_size % parts:
        raise ValueError(f"batch_size={cfg.batch_size} must be a multiple of world_size*grad_accum={parts}")
    return cfg.batch_size // parts
