"""SDPA training forwards for a HookedTransformer that stays a HookedTransformer.

Stock HookedTransformer attention materialises the [batch, head, pos, pos] score and
pattern tensors (so ``hook_attn_scores``/``hook_pattern`` can see them) and its linear
layers copy transposed weights every forward. ``swap_in_sdpa_forwards(model)`` swaps the
classes of the attention, gated-MLP and unembed modules for subclasses whose forward

- runs attention through ``torch.nn.functional.scaled_dot_product_attention`` (causal,
  fused softmax, no score tensor), and
- multiplies by the weights in place (``x @ W``) instead of ``W.T.contiguous()`` copies.

Parameters, names, state dicts and every other hook point are unchanged: ``hook_q``,
``hook_k``, ``hook_v``, ``hook_rot_q``, ``hook_rot_k``, ``hook_z``, ``hook_pre``,
``hook_pre_linear``, ``hook_post`` and the residual hooks fire as before. Whenever a hook
is attached to ``hook_attn_scores`` or ``hook_pattern`` (``run_with_cache`` attaches
them), or a KV cache / attention mask is passed, the stock forward runs instead, so
results and caches are those of TransformerLens. ``restore_stock_forwards(model)``
swaps the stock classes back; ``with sdpa_forwards(model):`` swaps them in for a block
and puts every module's class back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.components import Attention, GatedMLP, Unembed


def _supported(cfg) -> bool:
    return (
        cfg.positional_embedding_type in ("rotary", "standard")
        and cfg.attention_dir == "causal"
        and not cfg.use_split_qkv_input
        and not cfg.use_attn_in
        and not cfg.use_attn_result
        and not getattr(cfg, "use_qk_norm", False)
        and getattr(cfg, "attn_scores_soft_cap", -1.0) in (-1.0, None, 0)
        and not getattr(cfg, "use_attention_sinks", False)
        and not getattr(cfg, "use_logn_attn", False)
        and getattr(cfg, "clip_qkv", None) is None
        and not cfg.load_in_4bit
        and cfg.original_architecture not in ("OlmoeForCausalLM", "Olmo2ForCausalLM", "Olmo3ForCausalLM")
        and not getattr(cfg, "scale_attn_by_inverse_layer_idx", False)
    )


def _rotate(x: Tensor, adjacent_pairs: bool) -> Tensor:
    """TransformerLens's ``rotate_every_two`` without the clone and strided writes."""
    if adjacent_pairs:
        pairs = x.unflatten(-1, (-1, 2))
        return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class FastAttention(Attention):
    """``Attention`` whose forward uses SDPA when no score/pattern hook needs the scores."""

    def _needs_stock(self, query_input: Tensor, kwargs: dict) -> bool:
        return (
            any(v is not None for v in kwargs.values())
            or query_input.ndim != 3
            or self.hook_attn_scores.has_hooks()
            or self.hook_pattern.has_hooks()
        )

    def _rotary(self, x: Float[Tensor, "batch pos head d_head"]) -> Float[Tensor, "batch pos head d_head"]:
        pos, rot_dim = x.shape[1], self.cfg.rotary_dim
        if pos > self.rotary_cos.shape[0]:
            return self.apply_rotary(x)
        cos = self.rotary_cos[None, :pos, None, :].to(x.dtype)
        sin = self.rotary_sin[None, :pos, None, :].to(x.dtype)
        x_rot = x[..., :rot_dim]
        rotated = x_rot * cos + _rotate(x_rot, self.cfg.rotary_adjacent_pairs) * sin
        if rot_dim == x.shape[-1]:
            return rotated
        return torch.cat((rotated, x[..., rot_dim:]), dim=-1)

    def forward(self, query_input, key_input, value_input, **kwargs):  # noqa: D102 (as Attention)
        if self._needs_stock(query_input, kwargs):
            return super().forward(query_input, key_input, value_input, **kwargs)
        n_heads, d_head = self.cfg.n_heads, self.cfg.d_head

        def project(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
            # [head, d_model, d_head] -> [d_model, head*d_head]; the permute copy is d_model^2
            weight = w.permute(1, 0, 2).reshape(w.shape[1], n_heads * d_head)
            return torch.addmm(b.reshape(-1), x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:2], n_heads, d_head)

        q = self.hook_q(project(query_input, self.W_Q, self.b_Q))  # [batch, pos, head, d_head]
        k = self.hook_k(project(key_input, self.W_K, self.b_K))
        v = self.hook_v(project(value_input, self.W_V, self.b_V))
        if self.cfg.positional_embedding_type == "rotary":
            q = self.hook_rot_q(self._rotary(q))
            k = self.hook_rot_k(self._rotary(k))
        z = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, scale=1.0 / float(self.attn_scale)
        )  # [batch, head, pos, d_head]
        z = self.hook_z(z.transpose(1, 2))  # [batch, pos, head, d_head]
        flat = z.reshape(-1, n_heads * d_head)
        out = torch.addmm(self.b_O, flat, self.W_O.reshape(n_heads * d_head, -1))  # W_O view, no copy
        return out.view(*z.shape[:2], -1)


class FastGatedMLP(GatedMLP):
    """``GatedMLP`` without per-forward transposed weight copies."""

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:  # noqa: D102
        if self.cfg.is_layer_norm_activation():
            return super().forward(x)
        pre_act = self.hook_pre(x @ self.W_gate)  # [batch, pos, d_mlp]
        pre_linear = self.hook_pre_linear(x @ self.W_in)  # [batch, pos, d_mlp]
        post_act = self.hook_post(self.act_fn(pre_act) * pre_linear + self.b_in)
        return post_act @ self.W_out + self.b_out


class FastUnembed(Unembed):
    """``Unembed`` without the per-forward copy of W_U."""

    def forward(self, residual: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab_out"]:  # noqa: D102
        residual = self.hook_in(residual)
        flat = torch.addmm(self.b_U, residual.reshape(-1, residual.shape[-1]), self.W_U)
        return self.hook_out(flat.view(*residual.shape[:-1], -1))


_SWAPS = ((Attention, FastAttention), (GatedMLP, FastGatedMLP), (Unembed, FastUnembed))


def swap_in_sdpa_forwards(model: HookedTransformer) -> HookedTransformer:
    """Swap ``model``'s attention, gated-MLP and unembed modules to the SDPA forwards, in place.

    Only modules of exactly the stock classes are swapped, and attention only when the
    config is one the SDPA path reproduces (causal, rotary or learned positions, no
    attention-result splitting, soft-capping or QK norm); anything else is left as is.

    Args:
        model: a HookedTransformer.

    Returns:
        The same model, changed.
    """
    attn_ok = _supported(model.cfg)
    for module in model.modules():
        for stock, fast in _SWAPS:
            if type(module) is stock and (stock is not Attention or attn_ok):
                module.__class__ = fast
    return model


def restore_stock_forwards(model: HookedTransformer) -> HookedTransformer:
    """Swap the stock TransformerLens classes back into ``model`` (undoes ``swap_in_sdpa_forwards``).

    Args:
        model: a HookedTransformer.

    Returns:
        The same model, changed.
    """
    for module in model.modules():
        for stock, fast in _SWAPS:
            if type(module) is fast:
                module.__class__ = stock
    return model


@contextmanager
def sdpa_forwards(model: HookedTransformer) -> Iterator[HookedTransformer]:
    """Run ``model`` with the SDPA forwards inside the block; its classes are restored after.

    For reading activations (the slow part of SAE training on CPU: the stock attention
    materialises every score tensor); the SDPA forwards give the same activations up to
    float32 rounding (~1e-5) in about half the time. Modules that were already swapped
    stay so (``restore_stock_forwards`` would swap them back too).

    Args:
        model: the model (its parameters are not touched).

    Yields:
        The same model.
    """
    stock = {module: type(module) for module in model.modules()}
    swap_in_sdpa_forwards(model)
    try:
        yield model
    finally:
        for module, cls in stock.items():
            module.__class__ = cls
