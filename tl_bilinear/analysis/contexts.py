"""Top-activating dataset contexts of eigenvectors and output directions.

:func:`top_activating_contexts` streams a dataset (any iterable of token batches), runs
the model window by window, and keeps for every feature the n sequences where it fires
hardest, with a token window around the position of the maximum. Memory is bounded by
``features * n * window`` plus one batch: each batch's candidates (one per sequence,
its maximum position) are merged into the running top-n with ``torch.topk``.

Features: each of the top-k eigenvectors of every direction, scored by
``|λ_i| (v_i · x)²`` (how strongly it fires, whatever the sign of λ; the stored values
are the signed contributions ``λ_i (v_i · x)²``), and every direction itself, scored by
``u · mlp_out`` (the contexts where the layer pushes the direction up most).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from tl_bilinear.analysis.activations import DirectionsLike, eigen_activations, resolve_decomposition
from tl_bilinear.analysis.eigen import Eigendecomposition
from tl_bilinear.analysis.layer import check_layer
from tl_bilinear.compat import HookedTransformer


@dataclass(frozen=True)
class TopContexts:
    """The top-n contexts of F features, best first.

    Attributes:
        scores: [F, n] the ranking score of each context (-inf where fewer were seen).
        tokens: [F, n, window] token ids around the maximum (-1 = padding).
        values: [F, n, window] the feature's value at each window token (NaN = padding).
        max_index: [F, n] where the maximum sits inside the window.
        sequence: [F, n] index of the sequence in the stream (-1 = none).
        position: [F, n] position of the maximum in that sequence.
    """

    scores: Float[Tensor, "F n"]
    tokens: Int[Tensor, "F n window"]
    values: Float[Tensor, "F n window"]
    max_index: Int[Tensor, "F n"]
    sequence: Int[Tensor, "F n"]
    position: Int[Tensor, "F n"]

    def contexts(self, feature: int, vocab: list[str] | None = None) -> list[tuple[list, list[float]]]:
        """The (tokens, values) of one feature's contexts, padding removed.

        Args:
            feature: the feature index.
            vocab: token strings by id; without it, token ids are returned.

        Returns:
            One ``(tokens, values)`` pair per context found, best first.
        """
        out = []
        for s in range(self.scores.shape[1]):
            if self.sequence[feature, s] < 0:
                continue
            keep = self.tokens[feature, s] >= 0
            ids = self.tokens[feature, s][keep].tolist()
            out.append(([vocab[i] for i in ids] if vocab is not None else ids, self.values[feature, s][keep].tolist()))
        return out


class TopNMerger:
    """Running top-n per feature over batches of per-token scores (bounded memory).

    Args:
        n_features: number of features F.
        n: contexts kept per feature.
        before, after: window tokens kept before and after the maximum.
    """

    def __init__(self, n_features: int, n: int, before: int = 12, after: int = 4):
        if n < 1 or before < 0 or after < 0:
            raise ValueError(f"need n >= 1 and before, after >= 0, got n={n}, before={before}, after={after}")
        self.n, self.before, self.after = n, before, after
        self.width = before + 1 + after
        self.seen = 0
        F, W = n_features, self.width
        self.scores = torch.full((F, 0), float("-inf"), dtype=torch.float64)
        self.tokens = torch.zeros((F, 0, W), dtype=torch.long)
        self.values = torch.zeros((F, 0, W), dtype=torch.float64)
        self.sequence = torch.zeros((F, 0), dtype=torch.long)
        self.position = torch.zeros((F, 0), dtype=torch.long)

    def update(
        self,
        tokens: Int[Tensor, "batch pos"],
        scores: Float[Tensor, "batch pos F"],
        values: Float[Tensor, "batch pos F"],
    ) -> None:
        """Merge one batch: its sequences get stream indices ``seen .. seen + batch - 1``.

        Args:
            tokens: [batch, pos] the batch's token ids.
            scores: [batch, pos, F] the ranking score of every token for every feature;
                each sequence competes with its maximum.
            values: [batch, pos, F] the values stored in the context windows.
        """
        B, P, F = scores.shape
        tokens, scores, values = tokens.cpu(), scores.detach().cpu().double(), values.detach().cpu().double()
        scores = scores.masked_fill(scores.isnan(), float("-inf"))  # NaN would outrank every number
        best, pos = scores.max(dim=1)  # [B, F]
        # windows around each sequence's maximum, for every feature: [B, W, F]
        padded_tokens = torch.nn.functional.pad(tokens, (self.before, self.after), value=-1)
        padded_values = torch.nn.functional.pad(values, (0, 0, self.before, self.after), value=float("nan"))
        offsets = pos[:, None, :] + torch.arange(self.width)[None, :, None]  # [B, W, F]
        b_idx = torch.arange(B)[:, None, None].expand_as(offsets)
        f_idx = torch.arange(F)[None, None, :].expand_as(offsets)
        new_tokens = padded_tokens[b_idx, offsets].permute(2, 0, 1)  # [F, B, W]
        new_values = padded_values[b_idx, offsets, f_idx].permute(2, 0, 1)
        new_sequence = torch.where(best.T.isneginf(), -1, self.seen + torch.arange(B)[None, :])  # [F, B]; -1: no score
        scores_all = torch.cat([self.scores, best.T], dim=1)  # [F, kept + B]
        top = scores_all.topk(min(self.n, scores_all.shape[1]), dim=1)
        idx = top.indices
        self.scores = top.values
        self.tokens = torch.cat([self.tokens, new_tokens], 1).gather(1, idx[..., None].expand(-1, -1, self.width))
        self.values = torch.cat([self.values, new_values], 1).gather(1, idx[..., None].expand(-1, -1, self.width))
        self.sequence = torch.cat([self.sequence, new_sequence], 1).gather(1, idx)
        self.position = torch.cat([self.position, pos.T], 1).gather(1, idx)
        self.seen += B

    def result(self) -> TopContexts:
        """The top-n so far, padded to n with empty entries (score -inf, sequence -1)."""
        F, kept = self.scores.shape
        missing = self.n - kept
        pad = lambda t, v: torch.cat([t, torch.full((F, missing, *t.shape[2:]), v, dtype=t.dtype)], 1)  # noqa: E731
        return TopContexts(
            scores=pad(self.scores, float("-inf")),
            tokens=pad(self.tokens, -1),
            values=pad(self.values, float("nan")),
            max_index=torch.full((F, self.n), self.before, dtype=torch.long),
            sequence=pad(self.sequence, -1),
            position=pad(self.position, -1),
        )


@dataclass(frozen=True)
class DatasetTopContexts:
    """Top contexts of every kept eigenvector and of every direction.

    Attributes:
        eigenvectors: features ``direction * k + i`` (eigenvector i of that direction).
        directions: feature j is direction j's total ``u · mlp_out``.
        eigendecomposition: the decomposition that was scanned.
        n_sequences: sequences scanned.
    """

    eigenvectors: TopContexts
    directions: TopContexts
    eigendecomposition: Eigendecomposition
    n_sequences: int


def top_activating_contexts(
    model: HookedTransformer,
    layer: int,
    directions: DirectionsLike,
    batches: Iterable[Int[Tensor, "batch pos"]],
    k: int | None = 8,
    n: int = 10,
    before: int = 12,
    after: int = 4,
    max_batches: int | None = None,
    overlap: int = 0,
    progress: bool = False,
) -> DatasetTopContexts:
    """Stream a dataset and keep the top-n contexts per eigenvector and per direction.

    Args:
        model: the bilinear HookedTransformer.
        layer: the layer index.
        directions: an Eigendecomposition, direction vectors, or direction tokens.
        batches: an iterable of [batch, pos] token-id tensors (pos may exceed n_ctx:
            sequences are windowed as in :func:`eigen_activations`).
        k: eigenvectors per direction (largest |λ| first).
        n: contexts kept per feature.
        before, after: tokens kept before and after each context's maximum.
        max_batches: stop after this many batches (None: the whole iterable).
        overlap: context overlap for sequences longer than n_ctx.
        progress: show a progress bar.

    Returns:
        DatasetTopContexts; sequence indices count sequences in stream order.

    Raises:
        IndexError: if the layer is out of range.
        ValueError: for bad tokens or sizes, or if the iterable yields nothing.
    """
    layer = check_layer(model, layer)
    eig = resolve_decomposition(model, layer, directions, k)
    n_dir, n_eig = eig.eigenvalues.shape
    eig_merger = TopNMerger(n_dir * n_eig, n, before, after)
    dir_merger = TopNMerger(n_dir, n, before, after)
    sign = eig.eigenvalues.sign().flatten()
    for batch in tqdm(islice(batches, max_batches), desc="top contexts", disable=not progress):
        acts = eigen_activations(model, layer, eig, batch, k=None, overlap=overlap)
        contributions = acts.contributions.flatten(2)  # [batch, pos, n*k]
        eig_merger.update(acts.tokens, contributions * sign, contributions)
        dir_merger.update(acts.tokens, acts.total, acts.total)
    if eig_merger.seen == 0:
        raise ValueError("the dataset yielded no batches")
    return DatasetTopContexts(eig_merger.result(), dir_merger.result(), eig, eig_merger.seen)
