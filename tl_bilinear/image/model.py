"""The paper's bilinear image classifier as a TransformerLens ``HookedRootModule``.

``image -> flatten -> W_E (no bias) -> n_layers x bilinear layer -> W_U -> logits``, where a
bilinear layer is ``((h W_gate + b_pre) * (h W_in + b_pre_linear)) W_out`` (branch biases
optional, paper App. L), added to ``h`` when ``residual`` is set. Hook names follow
HookedTransformer: ``hook_embed``, ``blocks.{L}.hook_resid_pre``, ``blocks.{L}.mlp.hook_pre``
(gate branch), ``blocks.{L}.mlp.hook_pre_linear``, ``blocks.{L}.mlp.hook_post`` (the product),
``blocks.{L}.hook_mlp_out``, ``blocks.{L}.hook_resid_post`` and ``hook_logits``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from tl_bilinear.model import atomic_directory

CONFIG_NAME = "classifier.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class ClassifierConfig:
    """Shape of a bilinear image classifier.

    Attributes:
        image_shape: (height, width) of the input images.
        n_classes: number of output classes.
        d_model: width of the embedding (the bilinear layers' input).
        d_mlp: hidden units per bilinear layer (default: d_model).
        n_layers: number of bilinear layers.
        bias: biases inside both branches (``b_pre``, ``b_pre_linear``).
        residual: add each layer's output to its input.
        seed: initialisation seed.
    """

    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10
    d_model: int = 512
    d_mlp: int | None = None
    n_layers: int = 1
    bias: bool = False
    residual: bool = False
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        if self.d_mlp is None:
            object.__setattr__(self, "d_mlp", self.d_model)
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape={self.image_shape} must be two positive sizes (height, width)")
        for name in ("n_classes", "d_model", "d_mlp", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        if self.n_classes < 2:
            raise ValueError(f"n_classes={self.n_classes} must be at least 2")

    @property
    def d_input(self) -> int:
        """Number of pixels (the flattened image width)."""
        return self.image_shape[0] * self.image_shape[1]


class BilinearLayer(nn.Module):
    """``((h W_gate + b_pre) * (h W_in + b_pre_linear)) W_out`` with TransformerLens hook names."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.W_gate = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_pre = nn.Parameter(torch.zeros(cfg.d_mlp)) if cfg.bias else None
        self.b_pre_linear = nn.Parameter(torch.zeros(cfg.d_mlp)) if cfg.bias else None
        self.hook_pre = HookPoint()
        self.hook_pre_linear = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, h: Float[Tensor, "batch d_model"]) -> Float[Tensor, "batch d_model"]:
        gate = h @ self.W_gate
        linear = h @ self.W_in
        if self.b_pre is not None:
            gate, linear = gate + self.b_pre, linear + self.b_pre_linear
        return self.hook_post(self.hook_pre(gate) * self.hook_pre_linear(linear)) @ self.W_out


class Block(nn.Module):
    """One bilinear layer with the residual-stream hooks around it."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.residual = cfg.residual
        self.mlp = BilinearLayer(cfg)
        self.hook_resid_pre = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, h: Float[Tensor, "batch d_model"]) -> Float[Tensor, "batch d_model"]:
        h = self.hook_resid_pre(h)
        out = self.hook_mlp_out(self.mlp(h))
        return self.hook_resid_post(h + out if self.residual else out)


class BilinearClassifier(HookedRootModule):
    """A bilinear image classifier whose layers decompose exactly (see ``class_eigendecompose``).

    ``run_with_cache`` and ``run_with_hooks`` work as on a HookedTransformer.
    """

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        generator = torch.Generator().manual_seed(cfg.seed)
        self.W_E = nn.Parameter(torch.empty(cfg.d_input, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.n_classes))
        self.hook_embed = HookPoint()
        self.hook_logits = HookPoint()
        with torch.no_grad():
            for param in self.parameters():
                if param.ndim == 2:  # PyTorch nn.Linear's default: U(±1/√fan_in)
                    bound = 1 / math.sqrt(param.shape[0])
                    param.copy_(torch.rand(param.shape, generator=generator) * 2 * bound - bound)
        self.setup()

    def flatten(self, images: Float[Tensor, "batch ..."]) -> Float[Tensor, "batch d_input"]:
        """Flatten ``[..., H, W]`` or ``[..., H*W]`` images, checking they fit the model.

        Raises:
            ValueError: if the trailing shape is neither ``image_shape`` nor its pixel count.
        """
        shape, d_input = self.cfg.image_shape, self.cfg.d_input
        if images.ndim >= 2 and tuple(images.shape[-2:]) == shape:
            return images.flatten(-2)
        if images.ndim >= 1 and images.shape[-1] == d_input:
            return images
        raise ValueError(
            f"images of shape {tuple(images.shape)} do not fit this model: it takes [..., {shape[0]}, {shape[1]}] "
            f"or [..., {d_input}] (resize the images or train a model for this image size)"
        )

    def forward(self, images: Float[Tensor, "batch ..."]) -> Float[Tensor, "batch n_classes"]:
        """Class logits for a batch of images (``[..., H, W]`` or flattened)."""
        h = self.hook_embed(self.flatten(images).to(self.W_E.dtype) @ self.W_E)
        for block in self.blocks:
            h = block(h)
        return self.hook_logits(h @ self.W_U)

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 4096) -> Tensor:
        """Predicted class per image, in batches, without gradients."""
        return torch.cat([self(chunk).argmax(-1) for chunk in images.split(batch_size)])


def save_classifier(model: BilinearClassifier, path: str | os.PathLike, **extra) -> Path:
    """Save a classifier as a directory (``classifier.json`` + ``model.safetensors``), atomically.

    Args:
        model: the classifier.
        path: the directory to create or replace.
        **extra: JSON-serialisable metadata stored next to the config (e.g. the training history).

    Returns:
        The directory.
    """
    with atomic_directory(path) as tmp:
        state = {name: value.detach().contiguous() for name, value in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME))
        (tmp / CONFIG_NAME).write_text(json.dumps({"config": asdict(model.cfg), **extra}, indent=2))
    return Path(path)


def read_run(path: str | os.PathLike) -> dict:
    """The JSON stored with a saved classifier (its ``config`` and any extra metadata).

    Raises:
        FileNotFoundError: if ``path`` is not a saved classifier directory.
        ValueError: if its JSON is unreadable.
    """
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a saved image classifier (no {CONFIG_NAME}); train one first")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON ({error}); retrain or restore the run") from None


def load_classifier(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> BilinearClassifier:
    """Load a classifier saved by ``save_classifier``.

    Args:
        path: the run directory.
        dtype: the parameter dtype to load into.

    Returns:
        The classifier in eval mode.

    Raises:
        FileNotFoundError: if the directory or its files are missing.
        ValueError: if the config or weights do not match.
    """
    raw = read_run(path)["config"]
    known = {f.name for f in fields(ClassifierConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{path}: unknown config fields {sorted(unknown)}; was it written by a newer tl-bilinear?")
    model = BilinearClassifier(ClassifierConfig(**raw))
    weights = Path(path) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; the run directory is incomplete")
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as error:
        raise ValueError(f"{weights} does not match {CONFIG_NAME}: {error}") from None
    return model.to(dtype).eval()
