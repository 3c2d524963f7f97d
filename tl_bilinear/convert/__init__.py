"""Models from elsewhere as bilinear HookedTransformers.

- ``from_official``: the paper's released checkpoints (``tdooms/ts-medium``, ...), exactly.
- ``anneal_to_bilinear``: a SwiGLU (or GeGLU) model finetuned into a bilinear one by
  annealing its gate's Swish β to 0 (the paper's Appendix J); ``finetune`` continues
  training a model as it is (the comparison at equal tokens). Both use the trainer, so they
  need TransformerLens 3.9 and are imported on first use.
"""

from typing import Any

from tl_bilinear.convert.official import from_official
from tl_bilinear.convert.swish import SwishBeta, swish0_to_bilinear

#: Names that need the trainer (TransformerLens 3.9), imported on first use.
_TRAINING = {
    "AnnealResult": "anneal",
    "AnnealSchedule": "anneal",
    "anneal_to_bilinear": "anneal",
    "finetune": "finetune",
}


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        import importlib

        return getattr(importlib.import_module(f"tl_bilinear.convert.{_TRAINING[name]}"), name)
    raise AttributeError(f"module 'tl_bilinear.convert' has no attribute {name!r}")


__all__ = [
    "AnnealResult",
    "AnnealSchedule",
    "SwishBeta",
    "anneal_to_bilinear",
    "finetune",
    "from_official",
    "swish0_to_bilinear",
]
