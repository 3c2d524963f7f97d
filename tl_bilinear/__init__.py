"""tl-bilinear: weight-based interpretability of bilinear MLPs in TransformerLens.

Importing the package registers ``act_fn="bilinear"`` with TransformerLens.
"""

from tl_bilinear.activation import register

register()

from tl_bilinear.compat import TL4, tl3_only  # noqa: E402
from tl_bilinear.config import (  # noqa: E402
    bilinear_config,
    get_config,
    get_preset,
    list_presets,
    register_preset,
)
from tl_bilinear.convert import from_official  # noqa: E402
from tl_bilinear.hf import from_hf, to_hf  # noqa: E402
from tl_bilinear.model import freeze_biases, load, make_model, save  # noqa: E402

if not TL4:  # the trainer needs TransformerLens 3.9
    from tl_bilinear.convert import anneal_to_bilinear

__version__ = "0.1.0"

__getattr__ = tl3_only("tl_bilinear", ("anneal_to_bilinear",))  # it needs the trainer

__all__ = [
    "anneal_to_bilinear",
    "bilinear_config",
    "freeze_biases",
    "from_hf",
    "from_official",
    "get_config",
    "get_preset",
    "list_presets",
    "load",
    "make_model",
    "register",
    "register_preset",
    "save",
    "to_hf",
]
