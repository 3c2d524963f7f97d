"""Direct-path reading: the vocabulary tokens that excite each eigenvector most and least.

The direct path feeds a token's embedding straight into layer L's MLP:
``x = ln2(W_E[t])``. For the paper's RMSPre norm that is ``W_E[t] / rms(W_E[t])``
(with eps); any gain or bias of ``ln2`` is applied too, by running the layer's own
``ln2`` module. Approximations: attention (every layer) and the MLPs of earlier layers
are ignored, and so is the positional embedding (none with rotary positions). For
layer 0 of a model whose attention mostly copies the current token this is close to the
real input; for later layers it is only the first-order story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.analysis.eigen import Eigendecomposition
from tl_bilinear.analysis.layer import check_layer
from tl_bilinear.checks import check_int
from tl_bilinear.compat import HookedTransformer


@torch.no_grad()
def direct_path_inputs(model: HookedTransformer, layer: int) -> Float[Tensor, "d_vocab d_model"]:
    """Every vocabulary token's embedding as layer ``layer``'s MLP would see it alone.

    Args:
        model: the HookedTransformer.
        layer: the layer index.

    Returns:
        ``ln2(W_E)``: [d_vocab, d_model], attention and earlier MLPs ignored.

    Raises:
        IndexError: if the layer is out of range.
    """
    layer = check_layer(model, layer)
    embed = model.W_E.detach()
    if model.cfg.normalization_type is None:
        return embed.clone()
    return model.blocks[layer].ln2(embed[None])[0]


@dataclass(frozen=True)
class DirectPathTokens:
    """The top and bottom vocabulary tokens of each eigenvector.

    Attributes:
        top_ids, bottom_ids: [n, k, m] token ids, strongest first.
        top_values, bottom_values: [n, k, m] their scores.
        by: ``"projection"`` (``v·x``: top = most positive, bottom = most negative) or
            ``"contribution"`` (``λ(v·x)²``: top = largest |contribution|, bottom =
            smallest).
    """

    top_ids: Int[Tensor, "n k m"]
    top_values: Float[Tensor, "n k m"]
    bottom_ids: Int[Tensor, "n k m"]
    bottom_values: Float[Tensor, "n k m"]
    by: str

    def strings(self, vocab: list[str]) -> tuple[list, list]:
        """``(top, bottom)`` as nested [n][k][m] lists of token strings.

        Args:
            vocab: the string of every token id (e.g. ``vocab_strings(model)``).

        Returns:
            The top and the bottom token strings, each nested [n][k][m].
        """

        def lookup(ids: Tensor) -> list:
            return [[[vocab[i] for i in row] for row in per_dir] for per_dir in ids.tolist()]

        return lookup(self.top_ids), lookup(self.bottom_ids)


def direct_path_tokens(
    model: HookedTransformer,
    eig: Eigendecomposition,
    n_tokens: int = 10,
    by: Literal["projection", "contribution"] = "projection",
    layer: int | None = None,
) -> DirectPathTokens:
    """The vocabulary tokens whose direct-path input activates each eigenvector most/least.

    Args:
        model: the HookedTransformer the decomposition came from.
        eig: the Eigendecomposition (truncate it first to read only the top eigenvectors).
        n_tokens: tokens to return at each end.
        by: rank by the projection ``v·x`` (signed; the sign of v is arbitrary, so the
            two ends are the two faces of the eigenvector) or by the contribution
            ``λ(v·x)²`` (how much the token alone moves the direction).
        layer: the layer, if ``eig.layer`` is unknown.

    Returns:
        DirectPathTokens with [n, k, n_tokens] ids and values.

    Raises:
        ValueError: for an unknown ``by``, a bad ``n_tokens``, or no known layer.
        IndexError: if the layer is out of range.
    """
    layer = eig.layer if layer is None else layer
    if layer is None:
        raise ValueError("the decomposition does not know its layer; pass layer=")
    if by not in ("projection", "contribution"):
        raise ValueError(f"by={by!r} must be 'projection' or 'contribution'")
    check_int("n_tokens", n_tokens, low=1, high=model.cfg.d_vocab)
    x = direct_path_inputs(model, layer)
    projections = eig.projections(x.to(eig.eigenvectors.device))  # [d_vocab, n, k]
    scores = projections if by == "projection" else eig.eigenvalues * projections.square()
    scores = scores.permute(1, 2, 0)  # [n, k, d_vocab]
    ranking = scores if by == "projection" else scores.abs()
    top = ranking.topk(n_tokens, dim=-1)
    bottom = ranking.topk(n_tokens, dim=-1, largest=False)
    return DirectPathTokens(
        top_ids=top.indices,
        top_values=scores.gather(-1, top.indices),
        bottom_ids=bottom.indices,
        bottom_values=scores.gather(-1, bottom.indices),
        by=by,
    )
