"""Output directions u: unembedding columns, contrasts between tokens, arbitrary vectors."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.compat import HookedTransformer

TokenLike = int | str | Sequence[int] | Sequence[str] | Tensor


def as_directions(directions: Tensor, width: int) -> Float[Tensor, "n width"]:
    """Validate output directions and give them a leading batch axis.

    Args:
        directions: one direction [width] or several [n, width].
        width: the width the layer writes (its ``d_out``, usually ``d_model``).

    Returns:
        The directions as a [n, width] tensor, detached (analysis results carry no
        autograd graph, even for directions sliced from a model's parameters).

    Raises:
        ValueError: if the shape is wrong or a value is not finite.
    """
    directions = directions.detach() if isinstance(directions, Tensor) else torch.as_tensor(directions)
    shape = tuple(directions.shape)
    if directions.ndim == 1:
        directions = directions[None]
    if directions.ndim != 2 or directions.shape[1] != width:
        raise ValueError(
            f"directions have shape {shape}, expected [{width}] or [n, {width}] (the layer writes d_model={width})"
        )
    if not directions.is_floating_point():
        raise ValueError(
            f"directions must be floating point, got {directions.dtype}; pass vectors, or use unembed_directions for token ids"
        )
    if not torch.isfinite(directions).all():
        raise ValueError("directions contain NaN or inf")
    return directions


def vocab_strings(model: HookedTransformer) -> list[str]:
    """The decoded string of every token id of the model's tokenizer."""
    if model.tokenizer is None:
        raise ValueError("token strings need a tokenizer: load the model with one, or pass token ids")
    return model.tokenizer.batch_decode([[i] for i in range(model.cfg.d_vocab)])


def token_ids(model: HookedTransformer, tokens: TokenLike) -> list[int]:
    """Token ids for ids or single-token strings (each string must be exactly one token).

    Raises:
        ValueError: for an id outside the vocabulary, a string that is not a single
            token (the message suggests near matches from the vocabulary), or a string
            that several ids decode to (e.g. ``"�"`` for byte tokens; pass an id).
    """
    if isinstance(tokens, (int, str)):
        tokens = [tokens]
    elif isinstance(tokens, Tensor):
        tokens = tokens.flatten().tolist()
    tokens = list(tokens)
    d_vocab = model.cfg.d_vocab_out
    lookup: dict[str, int] | None = None
    ids = []
    for token in tokens:
        if isinstance(token, str):
            if lookup is None:
                strings = vocab_strings(model)
                lookup = {s: i for i, s in reversed(list(enumerate(strings)))}
                shared = {s for s, count in Counter(strings).items() if count > 1}
            if token not in lookup:
                near = difflib.get_close_matches(token, list(lookup), n=5, cutoff=0.6)
                hint = f"; near matches: {near}" if near else ""
                raise ValueError(f"{token!r} is not a single token in the vocabulary{hint}")
            if token in shared:
                same = [i for i, s in enumerate(strings) if s == token]
                raise ValueError(
                    f"{token!r} is the text of {len(same)} token ids ({same[:5]}{', ...' if len(same) > 5 else ''}), "
                    "so it names no single token; pass the token id instead"
                )
            ids.append(lookup[token])
        else:
            if isinstance(token, bool) or int(token) != token or not 0 <= int(token) < d_vocab:
                raise ValueError(f"token id {token!r} is outside the vocabulary [0, {d_vocab})")
            ids.append(int(token))
    return ids


def unembed_directions(model: HookedTransformer, tokens: TokenLike) -> Float[Tensor, "n d_model"]:
    """The unembedding columns ``W_U[:, t]`` of the given tokens.

    Args:
        model: the HookedTransformer.
        tokens: a token id, a single-token string (e.g. ``" sad"``), or a list/tensor of them.

    Returns:
        [n, d_model] directions, one per token, in order.

    Raises:
        ValueError: for an unknown token (with near matches) or an id out of range.
    """
    return model.W_U[:, token_ids(model, tokens)].T.detach()


def contrast_directions(model: HookedTransformer, tokens: TokenLike, versus: TokenLike) -> Float[Tensor, "n d_model"]:
    """``W_U[:, a] - W_U[:, b]``: what pushes token a up *relative to* token b.

    ``tokens`` and ``versus`` pair up elementwise; a single ``versus`` token is used
    against every token.

    Raises:
        ValueError: for unknown tokens or lists of different lengths.
    """
    a = unembed_directions(model, tokens)
    b = unembed_directions(model, versus)
    if len(b) not in (1, len(a)):
        raise ValueError(f"got {len(a)} tokens but {len(b)} tokens to contrast them with; give one or {len(a)}")
    return a - b


def mean_contrast_directions(model: HookedTransformer, tokens: TokenLike) -> Float[Tensor, "n d_model"]:
    """``W_U[:, t]`` minus the mean of all other unembedding columns (the logit-difference direction).

    Raises:
        ValueError: for unknown tokens.
    """
    ids = token_ids(model, tokens)
    W_U = model.W_U.detach()
    n_other = W_U.shape[1] - 1
    total = W_U.sum(dim=1)
    own = W_U[:, ids].T  # [n, d_model]
    return own - (total - own) / n_other
