"""Swish_β gates, their annealing schedule, and folding β = 0 into a bilinear MLP.

``Swish_β(x) = x · sigmoid(β x)``: β = 1 is SiLU (SwiGLU's gate), β ≈ 1.702 approximates
GELU, and β = 0 is ``x / 2``, so a gated MLP with a Swish_0 gate is a bilinear MLP with
the ½ folded into ``W_in`` (the paper's Appendix J).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tl_bilinear.activation import ACT_FN_NAME
from tl_bilinear.compat import HookedTransformer, HookedTransformerConfig

#: act_fn names that are Swish_β gates (exactly for SiLU, approximately for GELU) and their β.
START_BETA = {"silu": 1.0, "gelu": 1.702, "gelu_new": 1.702, "gelu_fast": 1.702, "gelu_pytorch_tanh": 1.702}
SCHEDULES = ("linear", "cosine")


class SwishBeta(nn.Module):
    """The gate ``x · sigmoid(β x)``; set ``beta`` between steps (it is not trained).

    β lives in a non-persistent buffer: it moves with the model, stays out of the
    state dict, and changing it does not make ``torch.compile`` recompile.
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.register_buffer("_beta", torch.tensor(float(beta)), persistent=False)

    @property
    def beta(self) -> float:
        """The current β."""
        return float(self._beta)

    @beta.setter
    def beta(self, value: float) -> None:
        self._beta.fill_(float(value))

    def forward(self, x: Float[Tensor, "... d_mlp"]) -> Float[Tensor, "... d_mlp"]:
        """Apply the gate.

        Args:
            x: the gate branch's pre-activation (``hook_pre``).

        Returns:
            ``x · sigmoid(β x)``.
        """
        return x * torch.sigmoid(self._beta * x)

    def extra_repr(self) -> str:
        return f"beta={self.beta:g}"


def check_annealable(cfg: HookedTransformerConfig) -> float:
    """The starting β of a model's gate, after checking the model can be annealed.

    Args:
        cfg: the model's config.

    Returns:
        β of the Swish gate that equals (SiLU) or approximates (GELU) its activation.

    Raises:
        ValueError: for a model without a gated MLP, an already bilinear model, or an
            activation that is not a Swish-like gate.
    """
    if not cfg.gated_mlp:
        raise ValueError(
            f"annealing needs a gated MLP (act_fn(x W_gate) * (x W_in)); this model's MLP is ungated "
            f"(gated_mlp=False, act_fn={cfg.act_fn!r}), so there is no gate to anneal to a bilinear one"
        )
    if cfg.act_fn == ACT_FN_NAME:
        raise ValueError("the model is already bilinear (act_fn='bilinear'); there is nothing to anneal")
    if cfg.act_fn not in START_BETA:
        raise ValueError(
            f"cannot anneal act_fn={cfg.act_fn!r}: only Swish-like gates ({sorted(START_BETA)}) become "
            "x/2 as their β goes to 0"
        )
    return START_BETA[cfg.act_fn]


def install_swish_gates(model: HookedTransformer, beta: float) -> list[SwishBeta]:
    """Replace every block's MLP activation by a ``SwishBeta`` gate (in place).

    Args:
        model: a gated-MLP model (see ``check_annealable``).
        beta: the gates' starting β.

    Returns:
        The gates, one per block.
    """
    check_annealable(model.cfg)
    gates = []
    for block in model.blocks:
        block.mlp.act_fn = SwishBeta(beta)
        gates.append(block.mlp.act_fn)
    return gates


def beta_at(step: int, max_steps: int, start: float, anneal_frac: float, schedule: str = "linear") -> float:
    """β for optimizer step ``step`` (0-based) of a run of ``max_steps``.

    β falls from ``start`` to exactly 0 at the last of the first ``anneal_frac`` of the
    steps (so a run with ``anneal_frac=1`` trains its last step at β = 0), then stays 0.

    Args:
        step: the step about to be taken.
        max_steps: the steps of the run.
        start: β at step 0's start value (1 for SiLU).
        anneal_frac: the fraction of the run over which β falls, in (0, 1].
        schedule: ``"linear"`` (the paper's default) or ``"cosine"``.

    Returns:
        β.
    """
    n_anneal = max(1, round(anneal_frac * max_steps))
    left = max(0.0, 1.0 - (step + 1) / n_anneal)  # 1 -> 0 over the annealing steps
    if schedule == "cosine":
        left = (1.0 - math.cos(math.pi * left)) / 2.0
    return start * left


def swish0_to_bilinear(model: HookedTransformer) -> HookedTransformer:
    """The bilinear model equal to ``model`` with Swish_0 gates: ``W_in`` halved.

    ``(x/2 · x W_in) = x · (x W_in/2)`` per hidden unit, so ``hook_pre``, ``hook_pre_linear``
    times ½ and ``hook_post`` are what the Swish_0 model computes.

    Args:
        model: a gated-MLP model whose gates are (to be read as) Swish_0.

    Returns:
        A new HookedTransformer with ``act_fn="bilinear"`` and the same tokenizer; the
        input model is unchanged.
    """
    fields = {**model.cfg.to_dict(), "act_fn": ACT_FN_NAME}
    fields.pop("n_params", None)  # derived
    cfg = HookedTransformerConfig.from_dict(fields)
    bilinear = HookedTransformer(cfg, tokenizer=model.tokenizer, move_to_device=True)
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    for i in range(cfg.n_layers):
        state[f"blocks.{i}.mlp.W_in"] *= 0.5
    bilinear.load_state_dict(state)
    for name, param in bilinear.named_parameters():
        param.requires_grad_(dict(model.named_parameters())[name].requires_grad)
    return bilinear.eval()
