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

Precision ``"auto"`` (the default) measures fp32 against bf16 autocast on the device
before training and takes bf16 only where it is clearly faster (``train.precision``). A
Ctrl-C or SIGTERM stops a run at its next safe point with the checkpoint saved
(``train.stop``); a time budget plans the steps and shortens the final validation
(``train.budget``).

Optimisation: AdamW (β 0.9/0.95) with decoupled weight decay on the weight matrices
(W_Q, W_K, W_V, W_O, W_in, W_gate, W_out, W_U) only: not on the embedding W_E (a
lookup table), and the biases are frozen at zero by ``make_model`` so they are not
optimised at all; the RMS norms have no parameters. Learning rate: linear warm-up, then
linear decay (the paper's schedule), cosine, or constant.
"""

from tl_bilinear.compat import require_tl3

require_tl3("training (tl_bilinear.train, tl-bilinear train)")

from tl_bilinear.train.budget import Deadline, TimeBudget  # noqa: E402
from tl_bilinear.train.config import TrainConfig  # noqa: E402
from tl_bilinear.train.loop import Trainer, TrainResult, train  # noqa: E402
from tl_bilinear.train.loss import TrainingDiverged, lm_loss  # noqa: E402
from tl_bilinear.train.optim import lr_at, make_optimizer, param_groups  # noqa: E402
from tl_bilinear.train.precision import PrecisionRates, choose_precision  # noqa: E402
from tl_bilinear.train.sdpa import restore_stock_forwards, sdpa_forwards, swap_in_sdpa_forwards  # noqa: E402
from tl_bilinear.train.setup import ResumeMismatch  # noqa: E402
from tl_bilinear.train.stop import JobStopped  # noqa: E402

__all__ = [
    "Deadline",
    "JobStopped",
    "PrecisionRates",
    "ResumeMismatch",
    "TrainConfig",
    "TrainResult",
    "TimeBudget",
    "Trainer",
    "TrainingDiverged",
    "choose_precision",
    "lm_loss",
    "lr_at",
    "make_optimizer",
    "param_groups",
    "restore_stock_forwards",
    "sdpa_forwards",
    "swap_in_sdpa_forwards",
    "train",
]
