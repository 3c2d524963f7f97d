"""The paper's TopK sparse autoencoder, in TransformerLens / SAELens orientation.

``encode(x) = TopK((x - b_dec) W_enc)``: the k largest pre-activations keep their values,
the rest are zero (no encoder bias, no ReLU); ``decode(f) = f W_dec + b_dec`` with
unit-norm decoder rows, kept so during training by projecting each row's gradient off
the row and renormalising after the step (Pearce et al., 2025, App. and code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn


@dataclass(frozen=True)
class SAEConfig:
    """Shape and placement of a TopK SAE.

    Attributes:
        d_in: width of the activations it reads.
        d_sae: number of features.
        k: features kept per token.
        hook_name: the TransformerLens hook it was trained on, if known.
        layer: that hook's layer, if known.
    """

    d_in: int
    d_sae: int
    k: int = 30
    hook_name: str | None = None
    layer: int | None = None

    def __post_init__(self):
        for name in ("d_in", "d_sae", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        if self.k > self.d_sae:
            raise ValueError(f"k={self.k} must be at most d_sae={self.d_sae} (the number of features)")

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SAEConfig:
        """The config from ``to_dict`` output (unknown keys are ignored).

        Raises:
            ValueError: if a required key is missing.
        """
        names = {f.name for f in fields(cls)}
        missing = {"d_in", "d_sae"} - set(values)
        if missing:
            raise ValueError(f"SAE config lacks {sorted(missing)}")
        return cls(**{key: value for key, value in values.items() if key in names})


class TopKSAE(nn.Module):
    """A TopK SAE: ``W_enc`` [d_in, d_sae] (no bias), ``W_dec`` [d_sae, d_in] (unit rows), ``b_dec`` [d_in].

    Args:
        cfg: the SAEConfig.
        seed: initialisation seed (decoder rows uniform on the sphere, ``W_enc = W_decᵀ``).
        dtype: parameter dtype.
    """

    def __init__(self, cfg: SAEConfig, *, seed: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        generator = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=generator, dtype=dtype)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone())
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in, dtype=dtype))

    @property
    def d_in(self) -> int:
        """Width of the activations."""
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        """Number of features."""
        return self.cfg.d_sae

    @property
    def k(self) -> int:
        """Features kept per token."""
        return self.cfg.k

    def _check(self, x: Tensor) -> None:
        if x.shape[-1] != self.d_in:
            raise ValueError(f"activations have width {x.shape[-1]}, this SAE reads d_in={self.d_in}")

    def pre_activations(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """``(x - b_dec) W_enc``, before the top-k selection.

        Raises:
            ValueError: if x's last axis is not d_in.
        """
        self._check(x)
        return (x.to(self.W_enc.dtype) - self.b_dec) @ self.W_enc

    def encode_topk(self, x: Float[Tensor, "... d_in"]) -> tuple[Float[Tensor, "... k"], Tensor]:
        """The k largest pre-activations of each token and their feature indices."""
        return self.pre_activations(x).topk(self.k, dim=-1, sorted=False)

    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """Feature activations: the top-k pre-activations with their values, zero elsewhere."""
        values, indices = self.encode_topk(x)
        return torch.zeros(*values.shape[:-1], self.d_sae, dtype=values.dtype, device=values.device).scatter_(
            -1, indices, values
        )

    def decode(self, f: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_in"]:
        """``f W_dec + b_dec``."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_in"]:
        """The reconstruction ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale every decoder row to unit norm (in place)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(torch.finfo(self.W_dec.dtype).tiny))

    @torch.no_grad()
    def project_decoder_grad_(self) -> None:
        """Remove from each decoder row's gradient its component along the row (in place)."""
        if self.W_dec.grad is not None:
            along = (self.W_dec.grad * self.W_dec).sum(dim=1, keepdim=True)
            self.W_dec.grad.sub_(along * self.W_dec)
