"""Output directions u: unembedding columns, contrasts between tokens, arbitrary vectors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.analysis.vocabulary import Vocabulary, vocabulary
from tl_bilinear.analysis.vocabulary import vocab_strings as vocab_strings  # demo.py imports it from here
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


def token_ids(model: HookedTransformer, tokens: TokenLike, *, vocab: Vocabulary | None = None) -> list[int]:
    """Token ids for ids or single-token strings (each string must be exactly one token).

    Args:
        model: the HookedTransformer.
        tokens: a token id, a single-token string, or a list/tensor of them.
        vocab: the model's Vocabulary, if already built (strings are looked up in it;
            default: decoded from the tokenizer when a string needs it).

    Returns:
        The ids, in order.

    Raises:
        ValueError: for an id outside the vocabulary, a string that is not a single
            token (the message suggests near matches from the vocabulary), or a string
            that several ids decode to (e.g. ``"�"`` for byte tokens; pass an id).
    """
    if isinstance(tokens, (int, str)):
        tokens = [tokens]
    elif isinstance(tokens, Tensor):
        tokens = tokens.flatten().tolist()
    d_vocab = model.cfg.d_vocab_out
    ids = []
    for token in tokens:
        if isinstance(token, str):
            vocab = vocabulary(model) if vocab is None else vocab
            ids.append(vocab.token_id(token))
        else:
            if isinstance(token, bool) or int(token) != token or not 0 <= int(token) < d_vocab:
                raise ValueError(f"token id {token!r} is outside the vocabulary [0, {d_vocab})")
            ids.append(int(token))
    return ids


def unembed_directions(
    model: HookedTransformer, tokens: TokenLike, *, vocab: Vocabulary | None = None
) -> Float[Tensor, "n d_model"]:
    """The unembedding columns ``W_U[:, t]`` of the given tokens.

    Args:
        model: the HookedTransformer.
        tokens: a token id, a single-token string (e.g. ``" sad"``), or a list/tensor of them.
        vocab: the model's Vocabulary, if already built (see ``token_ids``).

    Returns:
        [n, d_model] directions, one per token, in order.

    Raises:
        ValueError: for an unknown token (with near matches) or an id out of range.
    """
    return model.W_U[:, token_ids(model, tokens, vocab=vocab)].T.detach()


def contrast_directions(
    model: HookedTransformer, tokens: TokenLike, versus: TokenLike, *, vocab: Vocabulary | None = None
) -> Float[Tensor, "n d_model"]:
    """``W_U[:, a] - W_U[:, b]``: what pushes token a up *relative to* token b.

    ``tokens`` and ``versus`` pair up elementwise; a single ``versus`` token is used
    against every token.

    Args:
        model: the HookedTransformer.
        tokens: the tokens a (ids or single-token strings).
        versus: the tokens b, one or as many as ``tokens``.
        vocab: the model's Vocabulary, if already built (see ``token_ids``).

    Returns:
        [n, d_model] directions.

    Raises:
        ValueError: for unknown tokens or lists of different lengths.
    """
    a = unembed_directions(model, tokens, vocab=vocab)
    b = unembed_directions(model, versus, vocab=vocab)
    if len(b) not in (1, len(a)):
        raise ValueError(f"got {len(a)} tokens but {len(b)} tokens to contrast them with; give one or {len(a)}")
    return a - b


def mean_contrast_directions(
    model: HookedTransformer, tokens: TokenLike, *, vocab: Vocabulary | None = None
) -> Float[Tensor, "n d_model"]:
    """``W_U[:, t]`` minus the mean of all other unembedding columns (the logit-difference direction).

    Args:
        model: the HookedTransformer.
        tokens: token ids or single-token strings.
        vocab: the model's Vocabulary, if already built (see ``token_ids``).

    Returns:
        [n, d_model] directions.

    Raises:
        ValueError: for unknown tokens.
    """
    ids = token_ids(model, tokens, vocab=vocab)
    W_U = model.W_U.detach()
    n_other = W_U.shape[1] - 1
    total = W_U.sum(dim=1)
    own = W_U[:, ids].T  # [n, d_model]
    return own - (total - own) / n_other
