"""Where an SAE reads the model: hook names, activations from a cache, splicing back, a shuffling buffer.

The MLP input site reads ``blocks.L.ln2.hook_normalized`` with the norm's gain and bias
applied (exactly ``tl_bilinear.analysis.mlp_input``), so that an SAE trained there lives
in the space the interaction matrices act on; splicing divides the gain back out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.analysis import mlp_input, mlp_input_hook_names
from tl_bilinear.compat import HookedTransformer

SITES = ("mlp_in", "mlp_out")
_MLP_INPUT = re.compile(r"blocks\.(\d+)\.ln2\.hook_normalized")
_LAYER = re.compile(r"blocks\.(\d+)\.")


def resolve_hook(model: HookedTransformer, layer: int | None, site: str) -> str:
    """The hook name of a site (``"mlp_in"``, ``"mlp_out"``) of a layer, or a hook name itself.

    Raises:
        ValueError: if the model has no such hook (the close names are listed), or a site
            is given without a layer.
    """
    if site in SITES:
        if layer is None:
            raise ValueError(f"site {site!r} needs a layer")
        return mlp_input_hook_names(model, layer)[0] if site == "mlp_in" else f"blocks.{layer}.hook_mlp_out"
    if site not in model.hook_dict:
        close = difflib.get_close_matches(site, list(model.hook_dict), n=5, cutoff=0.5)
        hint = f"; close names: {close}" if close else ""
        raise ValueError(f"the model has no hook {site!r} (use 'mlp_in', 'mlp_out' or a hook name){hint}")
    return site


def hook_layer(hook_name: str) -> int | None:
    """The block index in a hook name (``blocks.3.hook_mlp_out`` -> 3), or None."""
    match = _LAYER.match(hook_name)
    return int(match.group(1)) if match else None


def read_activations(
    model: HookedTransformer, hook_name: str, cache: Mapping[str, Tensor]
) -> Float[Tensor, "batch pos d_in"]:
    """The SAE's input from a cache: the hook's value, with the ln2 gain for the MLP input.

    Raises:
        KeyError: if the cache lacks the hook.
    """
    match = _MLP_INPUT.fullmatch(hook_name)
    if match:
        return mlp_input(model, int(match.group(1)), cache)
    if hook_name not in cache:
        raise KeyError(f"the cache has no {hook_name!r}")
    return cache[hook_name]


def splice_hook(
    model: HookedTransformer, hook_name: str, replace: Callable[[Tensor], Tensor]
) -> Callable[[Tensor, object], Tensor]:
    """A forward hook that replaces the SAE-space activation ``x`` by ``replace(x)``.

    Args:
        model: the model.
        hook_name: the hook (see ``resolve_hook``).
        replace: maps [batch, pos, d_in] activations (gain applied at the MLP input) to new ones.

    Returns:
        A function for ``model.run_with_hooks(fwd_hooks=[(hook_name, fn)])``.
    """
    match = _MLP_INPUT.fullmatch(hook_name)
    ln2 = model.blocks[int(match.group(1))].ln2 if match else None
    w, b = getattr(ln2, "w", None), getattr(ln2, "b", None)

    def hook(value: Tensor, hook: object) -> Tensor:
        x = value if w is None else value * w
        x = x if b is None else x + b
        new = replace(x).to(value.dtype)
        new = new if b is None else new - b
        return new if w is None else new / w

    return hook


@torch.no_grad()
def collect_activations(
    model: HookedTransformer, hook_name: str, tokens: Int[Tensor, "batch pos"], skip_first: bool = True
) -> Float[Tensor, "n d_in"]:
    """Run the model up to the hook's block on token blocks; return the activations as rows.

    Args:
        model: the model.
        hook_name: the hook.
        tokens: [batch, pos] token ids.
        skip_first: drop position 0 of each block (it has no context; its norm is an outlier).

    Returns:
        [batch * pos', d_in] float32 activations.
    """
    layer = hook_layer(hook_name)
    needed = {hook_name}
    _, cache = model.run_with_cache(
        tokens.to(model.cfg.device),
        names_filter=lambda name: name in needed,
        stop_at_layer=None if layer is None else layer + 1,
    )
    x = read_activations(model, hook_name, cache)
    if skip_first:
        x = x[:, 1:]
    return x.reshape(-1, x.shape[-1]).float()


class ActivationBuffer:
    """Shuffled batches of activations from a stream of token blocks, in bounded memory.

    Holds ``capacity`` activations. Once full it is shuffled, half of it is handed out in
    batches of ``batch_size`` and refilled from the model, and so on: memory stays at
    ``capacity × d_in`` floats and each batch mixes tokens from many documents.

    Args:
        model: the model.
        hook_name: where to read (see ``resolve_hook``).
        token_batches: an iterator of [batch, pos] token blocks (e.g. ``TokenBlockStream.batches``).
        batch_size: activations per batch handed out.
        capacity: activations held (at least ``2 × batch_size``).
        seed: shuffling seed.
        skip_first: drop position 0 of each block.

    Raises:
        ValueError: if capacity is below twice the batch size.
    """

    def __init__(
        self,
        model: HookedTransformer,
        hook_name: str,
        token_batches: Iterator[Tensor],
        *,
        batch_size: int = 4096,
        capacity: int = 65536,
        seed: int = 0,
        skip_first: bool = True,
    ):
        if capacity < 2 * batch_size:
            raise ValueError(f"capacity={capacity} must be at least twice batch_size={batch_size}")
        self.model, self.hook_name, self.token_batches = model, hook_name, token_batches
        self.batch_size, self.capacity, self.skip_first = batch_size, capacity, skip_first
        self.generator = torch.Generator().manual_seed(seed)
        self.storage: Tensor | None = None
        self.filled = 0
        self._pending = torch.empty(0)

    def _fill(self, start: int) -> bool:
        """Write activations into ``storage[start:]``; False when the stream ran out first."""
        position = start
        while position < self.capacity:
            if not len(self._pending):
                tokens = next(self.token_batches, None)
                if tokens is None:
                    self.filled = position
                    return False
                self._pending = collect_activations(self.model, self.hook_name, tokens, self.skip_first)
                if self.storage is None:
                    self.storage = self._pending.new_empty(self.capacity, self._pending.shape[1])
            take = min(self.capacity - position, len(self._pending))
            self.storage[position : position + take] = self._pending[:take]
            self._pending = self._pending[take:]
            position += take
        self.filled = self.capacity
        return True

    def __iter__(self) -> Iterator[Float[Tensor, "batch_size d_in"]]:
        more = self._fill(0)
        half = self.capacity // 2
        while self.filled >= self.batch_size:
            self.storage[: self.filled] = self.storage[torch.randperm(self.filled, generator=self.generator)]
            served = (half if more else self.filled) // self.batch_size * self.batch_size
            for start in range(0, served, self.batch_size):
                yield self.storage[start : start + self.batch_size].clone()
            if not more:
                return
            more = self._fill_front(served)

    def _fill_front(self, served: int) -> bool:
        """Move the unserved tail to the front and refill behind it."""
        kept = self.filled - served
        self.storage[:kept] = self.storage[served : self.filled].clone()
        return self._fill(kept)
