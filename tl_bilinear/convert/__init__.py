"""Models from elsewhere as bilinear HookedTransformers.

- ``from_official``: the paper's released checkpoints (``tdooms/ts-medium``, ...), exactly.
- ``anneal_to_bilinear``: a SwiGLU (or GeGLU) model finetuned into a bilinear one by
  annealing its gate's Swish β to 0 (the paper's Appendix J); ``finetune`` continues
  training a model as it is (the comparison at equal tokens). Both use the trainer, so they
  need TransformerLens 3.9.
"""

from tl_bilinear.compat import TL4, tl3_only
from tl_bilinear.convert.official import from_official
from tl_bilinear.convert.swish import SwishBeta, swish0_to_bilinear

if not TL4:  # the trainer needs TransformerLens 3.9
    from tl_bilinear.convert.anneal import AnnealResult, AnnealSchedule, anneal_to_bilinear
    from tl_bilinear.convert.finetune import finetune


__getattr__ = tl3_only("tl_bilinear.convert", ("AnnealResult", "AnnealSchedule", "anneal_to_bilinear", "finetune"))

__all__ = [
    "AnnealResult",
    "AnnealSchedule",
    "SwishBeta",
    "anneal_to_bilinear",
    "finetune",
    "from_official",
    "swish0_to_bilinear",
]
