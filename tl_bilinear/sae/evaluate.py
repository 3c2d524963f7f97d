"""How good an SAE is: reconstruction error, variance explained, and loss recovered in the model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from tl_bilinear.compat import HookedTransformer
from tl_bilinear.sae.activations import read_activations, splice_hook
from tl_bilinear.sae.model import TopKSAE


@dataclass(frozen=True)
class SAEMetrics:
    """Evaluation of an SAE on held-out tokens.

    Attributes:
        nmse: ``Σ‖x − x̂‖² / Σ‖x‖²``.
        variance_explained: ``1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²``.
        loss_clean: the model's next-token loss.
        loss_spliced: the loss with the hook's activations replaced by the reconstruction.
        loss_zero: the loss with the hook's activations zeroed.
        loss_recovered: ``(loss_zero − loss_spliced) / (loss_zero − loss_clean)`` (1 = perfect).
        tokens: activations evaluated.
    """

    nmse: float
    variance_explained: float
    loss_clean: float
    loss_spliced: float
    loss_zero: float
    loss_recovered: float
    tokens: int

    def to_dict(self) -> dict[str, float]:
        """The metrics as a JSON-serialisable dict."""
        return asdict(self)


@torch.no_grad()
def evaluate_sae(model: HookedTransformer, sae: TopKSAE, hook_name: str, token_batches: Iterable[Tensor]) -> SAEMetrics:
    """Evaluate an SAE at a hook on batches of tokens (every position, the first included).

    Args:
        model: the model the SAE reads.
        sae: the SAE.
        hook_name: its hook (see ``resolve_hook``).
        token_batches: [batch, pos] token blocks (e.g. a validation stream).

    Returns:
        The SAEMetrics.

    Raises:
        ValueError: if there are no tokens, or the SAE's width does not match the hook.
    """
    sums = dict(err=0.0, sq=0.0, n=0, clean=0.0, spliced=0.0, zero=0.0, batches=0)
    total = None
    for tokens in token_batches:
        tokens = tokens.to(model.cfg.device)
        loss, cache = model.run_with_cache(tokens, return_type="loss", names_filter=lambda name: name == hook_name)
        x = read_activations(model, hook_name, cache).to(sae.W_enc.dtype)
        if x.shape[-1] != sae.d_in:
            raise ValueError(f"the SAE reads width {sae.d_in}, but {hook_name!r} has width {x.shape[-1]}")
        x = x.reshape(-1, x.shape[-1])
        x_hat = sae(x)
        sums["err"] += (x - x_hat).square().sum().item()
        sums["sq"] += x.square().sum().item()
        total = x.sum(0) if total is None else total + x.sum(0)
        sums["n"] += len(x)
        sums["clean"] += loss.item()
        spliced = splice_hook(model, hook_name, lambda a: sae(a.to(sae.W_enc.dtype)))
        zero = splice_hook(model, hook_name, torch.zeros_like)
        sums["spliced"] += model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, spliced)]).item()
        sums["zero"] += model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, zero)]).item()
        sums["batches"] += 1
    if not sums["n"]:
        raise ValueError("no tokens to evaluate on: the validation stream is empty")
    spread = sums["sq"] - total.square().sum().item() / sums["n"]
    batches = sums["batches"]
    clean, spliced, zero = sums["clean"] / batches, sums["spliced"] / batches, sums["zero"] / batches
    gap = zero - clean
    return SAEMetrics(
        nmse=sums["err"] / max(sums["sq"], torch.finfo(torch.float32).tiny),
        variance_explained=1 - sums["err"] / spread if spread > 0 else float("nan"),
        loss_clean=clean,
        loss_spliced=spliced,
        loss_zero=zero,
        loss_recovered=(zero - spliced) / gap if gap != 0 else float("nan"),
        tokens=sums["n"],
    )
