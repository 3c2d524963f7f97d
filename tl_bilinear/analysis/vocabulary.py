"""A model's vocabulary decoded once: token strings by id, and single-token lookup by string."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

from tl_bilinear.compat import HookedTransformer


def vocab_strings(model: HookedTransformer) -> list[str]:
    """The decoded string of every token id of the model's tokenizer.

    Args:
        model: a HookedTransformer with a tokenizer.

    Returns:
        ``d_vocab`` strings, indexed by token id.

    Raises:
        ValueError: if the model has no tokenizer.
    """
    if model.tokenizer is None:
        raise ValueError("token strings need a tokenizer: load the model with one, or pass token ids")
    return model.tokenizer.batch_decode([[i] for i in range(model.cfg.d_vocab)])


@dataclass(frozen=True)
class Vocabulary:
    """Every token id's decoded string, and the id of each string that names exactly one token.

    Build it once per model (:func:`vocabulary`) and pass it to the functions that look
    tokens up (``token_ids``, ``unembed_directions``, ...), so the tokenizer decodes the
    vocabulary once.

    Attributes:
        strings: the decoded string of each token id.
    """

    strings: list[str]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _shared: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_ids", {s: i for i, s in reversed(list(enumerate(self.strings)))})
        object.__setattr__(self, "_shared", frozenset(s for s, n in Counter(self.strings).items() if n > 1))

    def __len__(self) -> int:
        return len(self.strings)

    def __getitem__(self, token_id: int) -> str:
        return self.strings[token_id]

    def __contains__(self, token: object) -> bool:
        """Whether ``token`` is the string of some token id."""
        return token in self._ids

    def near_matches(self, token: str, n: int = 5) -> list[str]:
        """Up to n token strings close to ``token`` (``difflib``, similarity >= 0.6), best first."""
        return difflib.get_close_matches(token, list(self._ids), n=n, cutoff=0.6)

    def token_id(self, token: str, name: str | None = None) -> int:
        """The id of a string that is exactly one token.

        Args:
            token: the token's text, e.g. ``" sad"``.
            name: how the caller calls the value (e.g. ``"--token"``), to lead the message.

        Returns:
            The token id.

        Raises:
            ValueError: if ``token`` is not a token string (the message suggests near
                matches), or several ids decode to it (e.g. ``"�"`` for byte tokens).
        """
        what = f"{name} {token!r}" if name else repr(token)
        if token not in self._ids:
            near = self.near_matches(token)
            hint = f"; near matches: {', '.join(repr(t) for t in near)}" if near else ""
            raise ValueError(f"{what} is not a single token of this model's vocabulary{hint}")
        if token in self._shared:
            same = [i for i, s in enumerate(self.strings) if s == token]
            raise ValueError(
                f"{what} is the text of {len(same)} token ids ({same[:5]}{', ...' if len(same) > 5 else ''}), "
                "so it names no single token; pass the token id instead"
            )
        return self._ids[token]


def vocabulary(model: HookedTransformer) -> Vocabulary:
    """Decode the model's vocabulary once.

    Args:
        model: a HookedTransformer with a tokenizer.

    Returns:
        The Vocabulary.

    Raises:
        ValueError: if the model has no tokenizer.
    """
    return Vocabulary(vocab_strings(model))
