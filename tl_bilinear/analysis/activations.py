"""Eigenvector activations over text: which tokens drive each eigenvector of a direction.

For an output direction u of layer L, ``u · mlp_out(x_t) = Σ_i λ_i (v_i · x_t)² + c``
at every position t. :func:`eigen_activations` runs the model on tokens and returns,
per token, the projections ``v_i · x_t`` and contributions ``λ_i (v_i · x_t)²`` of the
kept eigenvectors, the exact total ``u · hook_mlp_out`` read from the model's hook (not
recomputed), and the top-k reconstruction, so a view can show how much the kept
eigenvectors explain.

Long text. A sequence longer than ``n_ctx`` is never truncated: it is cut into windows
of at most ``n_ctx`` tokens. Window w starts where window w-1 ends minus ``overlap``
tokens; those first ``overlap`` tokens only give context and their outputs are dropped,
so every token is reported exactly once, computed with at least ``overlap`` tokens of
left context (the first window has none to spare). With ``overlap=0`` the windows are
disjoint and each restarts without context. If every sequence starts with the
tokenizer's BOS token, each later window is prefixed with it too (its output dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.analysis.directions import unembed_directions
from tl_bilinear.analysis.eigen import Eigendecomposition, eigendecompose
from tl_bilinear.analysis.inputs import mlp_input, mlp_input_hook_names
from tl_bilinear.analysis.layer import check_layer
from tl_bilinear.checks import check_int
from tl_bilinear.compat import HookedTransformer

DirectionsLike = Eigendecomposition | Tensor | str | int | Sequence[str] | Sequence[int]


@dataclass(frozen=True)
class EigenActivations:
    """Per-token eigenvector activations of n directions on a batch of sequences.

    Attributes:
        tokens: [batch, pos] the token ids.
        projections: [batch, pos, n, k] ``v_i · x_t``.
        contributions: [batch, pos, n, k] ``λ_i (v_i · x_t)²``.
        total: [batch, pos, n] ``u · hook_mlp_out``, from the model's hook.
        eigendecomposition: the (truncated) decomposition that was used.
    """

    tokens: Int[Tensor, "batch pos"]
    projections: Float[Tensor, "batch pos n k"]
    contributions: Float[Tensor, "batch pos n k"]
    total: Float[Tensor, "batch pos n"]
    eigendecomposition: Eigendecomposition

    @property
    def reconstruction(self) -> Float[Tensor, "batch pos n"]:
        """``Σ_{kept i} λ_i (v_i · x_t)² + constant``: exact when all eigenpairs are kept."""
        return self.contributions.sum(-1) + self.eigendecomposition.constant

    @property
    def residual(self) -> Float[Tensor, "batch pos n"]:
        """``total - reconstruction``: what the dropped eigenvectors contribute."""
        return self.total - self.reconstruction

    def explained(self) -> Float[Tensor, n]:
        """Share of the total's variation the kept eigenvectors explain, per direction.

        Returns:
            ``1 - Σ_t residual² / Σ_t (total - mean total)²`` over all tokens (1 = exact);
            NaN where the total does not vary over the tokens (to float precision), for
            which the share is undefined.
        """
        total = self.total.flatten(0, 1)
        residual = self.residual.flatten(0, 1)
        spread = (total - total.mean(0)).square().sum(0)
        varies = spread > torch.finfo(spread.dtype).eps * total.square().sum(0)
        return torch.where(
            varies, 1 - residual.square().sum(0) / spread.clamp_min(torch.finfo(spread.dtype).tiny), torch.nan
        )


def window_spans(seq_len: int, n_ctx: int, overlap: int = 0) -> list[tuple[int, int, int]]:
    """How a sequence of ``seq_len`` tokens is cut into model windows.

    Args:
        seq_len: tokens in the sequence.
        n_ctx: the largest window the model accepts.
        overlap: context tokens repeated from the previous window, in ``[0, n_ctx)``.

    Returns:
        ``(start, end, keep)`` per window: run tokens ``[start, end)`` and report
        ``[keep, end)``; the reported ranges tile ``[0, seq_len)`` exactly once.

    Raises:
        ValueError: if ``overlap`` is not in ``[0, n_ctx)``.
    """
    check_int("overlap", overlap, low=0, high=n_ctx - 1)
    spans, start, keep = [], 0, 0
    while keep < seq_len:
        end = min(start + n_ctx, seq_len)
        spans.append((start, end, keep))
        keep, start = end, end - overlap
    return spans


def resolve_decomposition(
    model: HookedTransformer, layer: int, directions: DirectionsLike, k: int | None = None
) -> Eigendecomposition:
    """An Eigendecomposition from directions given as vectors, tokens or a decomposition.

    Args:
        model: the bilinear HookedTransformer.
        layer: the layer index.
        directions: an Eigendecomposition (truncated to k), [n, d_model] / [d_model]
            vectors, or token ids / single-token strings (their unembedding columns).
        k: eigenpairs to keep per direction (None: all).

    Returns:
        The decomposition, top-k eigenpairs by |λ|.

    Raises:
        IndexError: if the layer is out of range.
        ValueError: if a decomposition of another layer is given, or a token is unknown.
    """
    layer = check_layer(model, layer)
    if isinstance(directions, Eigendecomposition):
        if directions.layer is not None and directions.layer != layer:
            raise ValueError(f"the decomposition is of layer {directions.layer}, not layer {layer}")
        return directions if k is None or k >= directions.k else directions.truncate(k)
    if not isinstance(directions, (Tensor, str)):  # numpy arrays or (nested) lists of floats are vectors
        try:
            vectors = torch.as_tensor(directions)
        except (TypeError, ValueError, RuntimeError):  # e.g. a list of strings: token names
            vectors = None
        if vectors is not None and vectors.is_floating_point():
            directions = vectors
    if not (isinstance(directions, Tensor) and directions.is_floating_point()):
        directions = unembed_directions(model, directions)
    return eigendecompose(model, layer, directions, k=k)


def _as_tokens(model: HookedTransformer, tokens) -> Tensor:
    if isinstance(tokens, str):
        if model.tokenizer is None:
            raise ValueError("text needs a tokenizer: load the model with one, or pass token ids")
        return model.to_tokens(tokens, truncate=False)
    if isinstance(tokens, (list, tuple)) and any(isinstance(t, str) for t in tokens):
        raise ValueError("tokens must be one string or token ids; for several texts pass model.to_tokens(texts)")
    tokens = torch.as_tensor(tokens)
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.is_floating_point() or tokens.shape[1] == 0:
        raise ValueError(
            f"tokens must be a string or a non-empty [pos] / [batch, pos] integer tensor, got shape {tuple(tokens.shape)}"
        )
    if tokens.min() < 0 or tokens.max() >= model.cfg.d_vocab:
        raise ValueError(
            f"token ids must be in [0, {model.cfg.d_vocab}), got {tokens.min().item()}..{tokens.max().item()}"
        )
    return tokens.to(model.cfg.device)


def _bos_prefix(model: HookedTransformer, tokens: Tensor) -> int | None:
    bos = getattr(model.tokenizer, "bos_token_id", None) if model.tokenizer is not None else None
    return bos if bos is not None and bool((tokens[:, 0] == bos).all()) else None


@torch.no_grad()
def _run_layer(model: HookedTransformer, eig: Eigendecomposition, layer: int, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """Run one window; return the MLP input x [batch, pos, d_model] and ``u · hook_mlp_out`` [batch, pos, n]."""
    out_name = f"blocks.{layer}.hook_mlp_out"
    names = set(mlp_input_hook_names(model, layer)) | {out_name}
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names, stop_at_layer=layer + 1)
    x = mlp_input(model, layer, cache)
    total = torch.einsum("bpd,nd->bpn", cache[out_name].to(eig.directions.dtype), eig.directions)
    return x, total


def eigen_activations(
    model: HookedTransformer,
    layer: int,
    directions: DirectionsLike,
    tokens: str | Int[Tensor, "batch pos"] | Int[Tensor, pos],
    k: int | None = 8,
    overlap: int = 0,
) -> EigenActivations:
    """Per-token activations of the top-k eigenvectors of each direction on text.

    Args:
        model: the bilinear HookedTransformer.
        layer: the layer whose MLP is decomposed.
        directions: output directions: an Eigendecomposition, [n, d_model] vectors, or
            token ids / single-token strings such as ``" sad"`` (unembedding columns).
        tokens: a string (tokenized with the model's tokenizer, never truncated) or
            token ids [pos] / [batch, pos], of any length (see the module docstring for
            how sequences longer than ``n_ctx`` are windowed).
        k: eigenvectors kept per direction, largest |λ| first (None: all, exact).
        overlap: context tokens shared by consecutive windows of long sequences.

    Returns:
        The activations; ``contributions.sum(-1) + constant == total`` when k is None.

    Raises:
        IndexError: if the layer is out of range.
        ValueError: for bad tokens, an unknown direction token, or a bad overlap.
    """
    layer = check_layer(model, layer)
    eig = resolve_decomposition(model, layer, directions, k)
    tokens = _as_tokens(model, tokens)
    bos = _bos_prefix(model, tokens)
    n_ctx = model.cfg.n_ctx
    width = n_ctx - (bos is not None and tokens.shape[1] > n_ctx)  # one slot for the repeated BOS
    if width < n_ctx and isinstance(overlap, int) and overlap == width:
        raise ValueError(
            f"overlap={overlap} must be below {width}: every window of this text repeats the BOS token, "
            f"leaving {width} of n_ctx={n_ctx} positions"
        )
    xs, totals = [], []
    for start, end, keep in window_spans(tokens.shape[1], width, overlap):
        window = tokens[:, start:end]
        prefix = int(bos is not None and start > 0)
        if prefix:
            window = torch.cat([tokens[:, :1], window], dim=1)
        x, total = _run_layer(model, eig, layer, window)
        xs.append(x[:, prefix + keep - start :])
        totals.append(total[:, prefix + keep - start :])
    x = torch.cat(xs, dim=1)
    projections = eig.projections(x)
    return EigenActivations(
        tokens=tokens,
        projections=projections,
        contributions=eig.eigenvalues * projections.square(),
        total=torch.cat(totals, dim=1),
        eigendecomposition=eig,
    )
