"""A layer index checked once against its model, then passed inward as a :class:`Layer`."""

from __future__ import annotations

from tl_bilinear.compat import HookedTransformer


class Layer(int):
    """A layer index already checked against a model of ``n_layers`` layers.

    It is an int in every use (hook names, indexing, comparisons, JSON). :func:`check_layer`
    returns it unchanged for a model of the same depth, so a layer resolved at the public
    edge is not checked again by the functions it is passed to.
    """

    n_layers: int

    def __new__(cls, index: int, n_layers: int) -> Layer:
        layer = super().__new__(cls, index)
        layer.n_layers = n_layers
        return layer

    def __reduce__(self):
        return Layer, (int(self), self.n_layers)


def check_layer(model: HookedTransformer, layer: int, name: str = "layer") -> Layer:
    """Resolve ``layer`` as a valid layer index of ``model``, or raise a clear error.

    Args:
        model: the HookedTransformer.
        layer: a Python int in ``[0, n_layers)``, or a Layer resolved for a model of that depth.
        name: how the caller calls the value (e.g. ``"--layer"``), to lead the message.

    Returns:
        The layer as a :class:`Layer`.

    Raises:
        IndexError: if the layer is out of range (negative indices included) or not an int.
    """
    n_layers = model.cfg.n_layers
    if isinstance(layer, Layer) and layer.n_layers == n_layers:
        return layer
    not_int = isinstance(layer, bool) or not isinstance(layer, int)
    if not_int or not 0 <= layer < n_layers:
        hint = f"; it must be a Python int, not {type(layer).__name__} (pass int(layer))" if not_int else ""
        layers = f"{n_layers} layer{'s' if n_layers != 1 else ''}"
        raise IndexError(f"{name} {layer!r} is out of range: the model has {layers} (0..{n_layers - 1}){hint}")
    return Layer(layer, n_layers)
