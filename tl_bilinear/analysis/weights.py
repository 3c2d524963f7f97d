"""The weights of one bilinear MLP layer, validated and in TransformerLens orientation."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.activation import is_bilinear_act
from tl_bilinear.analysis.layer import check_layer
from tl_bilinear.compat import HookedTransformer


@dataclass(frozen=True)
class BilinearWeights:
    """A bilinear layer ``out = ((x W_gate + b_pre) * (x W_in + b_pre_linear) + b_in) W_out + b_out``.

    Names follow TransformerLens: ``b_in`` is added *after* the product (as in TL's gated
    MLP) and ``b_pre`` / ``b_pre_linear`` sit inside the two branches (the paper's
    App. L, used by its image models; TL's hooks ``hook_pre`` and ``hook_pre_linear`` see
    the branch outputs). Any bias may be None (zero).

    Attributes:
        W_gate: [d_in, d_mlp], the branch TransformerLens applies ``act_fn`` to.
        W_in: [d_in, d_mlp], the linear branch.
        W_out: [d_mlp, d_out].
        b_in, b_out, b_pre, b_pre_linear: optional biases.
        layer: the layer index in the model it came from, if any.
        augmented_input: whether this is the augmented form (input ``[x, 1]``, see ``augmented()``).
    """

    W_gate: Float[Tensor, "d_in d_mlp"]
    W_in: Float[Tensor, "d_in d_mlp"]
    W_out: Float[Tensor, "d_mlp d_out"]
    b_in: Float[Tensor, d_mlp] | None = None
    b_out: Float[Tensor, d_out] | None = None
    b_pre: Float[Tensor, d_mlp] | None = None
    b_pre_linear: Float[Tensor, d_mlp] | None = None
    layer: int | None = None
    augmented_input: bool = False

    def __post_init__(self):
        d_in, d_mlp = self.W_gate.shape
        d_out = self.W_out.shape[-1]
        expected = {
            "W_in": (d_in, d_mlp),
            "W_out": (d_mlp, d_out),
            "b_in": (d_mlp,),
            "b_out": (d_out,),
            "b_pre": (d_mlp,),
            "b_pre_linear": (d_mlp,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(
                    f"{name} has shape {tuple(value.shape)}, expected {shape} for W_gate of shape {(d_in, d_mlp)}"
                )

    @property
    def d_in(self) -> int:
        """Width of the layer's input x."""
        return self.W_gate.shape[0]

    @property
    def d_mlp(self) -> int:
        """Number of hidden units."""
        return self.W_gate.shape[1]

    @property
    def d_out(self) -> int:
        """Width of the layer's output (the space output directions live in)."""
        return self.W_out.shape[1]

    @property
    def has_branch_biases(self) -> bool:
        """Whether biases sit inside the branches (then Q lives on the augmented input [x, 1])."""
        return self.b_pre is not None or self.b_pre_linear is not None

    def augmented(self) -> BilinearWeights:
        """The same layer on the augmented input ``[x, 1]`` with the branch biases as a weight row.

        ``(x W + b) = [x, 1] [[W], [b]]``, so the quadratic form stays exact (paper App. L).
        Returns self when there are no branch biases.
        """
        if not self.has_branch_biases:
            return self
        zeros = self.W_gate.new_zeros(1, self.d_mlp)

        def row(bias):
            return zeros if bias is None else bias[None]

        return replace(
            self,
            W_gate=torch.cat([self.W_gate, row(self.b_pre)]),
            W_in=torch.cat([self.W_in, row(self.b_pre_linear)]),
            b_pre=None,
            b_pre_linear=None,
            augmented_input=True,
        )

    def to(self, dtype: torch.dtype) -> BilinearWeights:
        """A copy with every tensor cast to ``dtype``."""
        cast = {
            name: getattr(self, name).to(dtype)
            for name in ("W_gate", "W_in", "W_out", "b_in", "b_out", "b_pre", "b_pre_linear")
            if getattr(self, name) is not None
        }
        return replace(self, **cast)


def bilinear_weights(model: HookedTransformer, layer: int) -> BilinearWeights:
    """Read layer ``layer``'s MLP weights from a bilinear HookedTransformer.

    Args:
        model: a HookedTransformer whose MLPs are bilinear (``act_fn="bilinear"``, gated).
        layer: the layer index.

    Returns:
        The weights (views of the model's parameters, detached). Zero biases are None.

    Raises:
        IndexError: if the layer is out of range.
        ValueError: if that layer's MLP is not bilinear (names the layer and its act_fn).
    """
    layer = check_layer(model, layer)
    cfg = model.cfg
    if cfg.attn_only:
        raise ValueError(f"layer {layer} has no MLP: the model is attention-only")
    if cfg.num_experts:
        raise ValueError(f"layer {layer} is a mixture of experts; only dense bilinear MLPs are supported")
    if not (cfg.gated_mlp and is_bilinear_act(cfg.act_fn)):
        raise ValueError(
            f"layer {layer}'s MLP is not bilinear (act_fn={cfg.act_fn!r}, gated_mlp={cfg.gated_mlp}); "
            "weight-based decomposition needs act_fn='bilinear' with gated_mlp=True"
        )
    mlp = model.blocks[layer].mlp

    def bias(name):
        value = getattr(mlp, name, None)
        return None if value is None or not value.detach().any() else value.detach()

    return BilinearWeights(
        W_gate=mlp.W_gate.detach(),
        W_in=mlp.W_in.detach(),
        W_out=mlp.W_out.detach(),
        b_in=bias("b_in"),
        b_out=bias("b_out"),
        layer=layer,
    )


def resolve_weights(model: HookedTransformer | BilinearWeights, layer: int | None) -> BilinearWeights:
    """Accept either a model and a layer index, or ready BilinearWeights (then layer must be None)."""
    if isinstance(model, BilinearWeights):
        if layer is not None and layer != model.layer:
            raise ValueError(f"layer={layer!r} given together with BilinearWeights of layer {model.layer!r}")
        return model
    if layer is None:
        raise ValueError("layer is required when analysing a HookedTransformer")
    return bilinear_weights(model, layer)


def compute_dtype(weights: BilinearWeights, dtype: torch.dtype | None) -> torch.dtype:
    """The dtype to compute in: the one asked for, else float64 for float64 weights, else float32."""
    if dtype is not None:
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        return dtype
    return torch.float64 if weights.W_gate.dtype == torch.float64 else torch.float32
