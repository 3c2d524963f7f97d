"""Training bilinear (and baseline) HookedTransformers: the loop, checkpoints, resume, DDP.

The public entry point is ``train(TrainConfig(...))``; ``tl-bilinear train`` wraps it.

A run directory ``out_dir`` holds::

    checkpoint/                  the latest complete checkpoint (swapped in atomically)
        config.json              TL config (JSON), preset, tokenizer dir, train_config, step
        model.safetensors        the weights (``tl_bilinear.load(out_dir)``)
        tokenizer/               Hugging Face tokenizer files
        trainer_state.safetensors  AdamW moments and steps, torch RNG states
        trainer_state.json       step, tokens, data-stream positions of every rank, lr
                                 schedule position, Python RNG, last losses
    tokenizer/                   the tokenizer trained for this run (if one was)
    metrics.jsonl                one JSON object per logged step (loss, lr, grad_norm,
                                 tokens/s, val_loss)

Optimisation: AdamW (β 0.9/0.95) with decoupled weight decay on the weight matrices
(W_Q, W_K, W_V, W_O, W_in, W_gate, W_out, W_U) only: not on the embedding W_E (a
lookup table), and the biases are frozen at zero by ``make_model`` so they are not
optimised at all; the RMS norms have no parameters. Learning rate: linear warm-up, then
linear decay (the paper's schedule), cosine, or constant.
"""

from tl_bilinear.compat import require_tl3

require_tl3("training (tl_bilinear.train, tl-bilinear train)")

from tl_bilinear.train.baselines import BASELINES, PAPER_TABLE_6, baseline_config, baseline_overrides  # noqa: E402
from tl_bilinear.train.config import TrainConfig  # noqa: E402
from tl_bilinear.train.fast import use_fast_attention  # noqa: E402
from tl_bilinear.train.loop import ResumeMismatch, Trainer, TrainingDiverged, TrainResult, lm_loss, train  # noqa: E402
from tl_bilinear.train.optim import lr_at, make_optimizer, param_groups  # noqa: E402

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
