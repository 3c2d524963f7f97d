"""Paper-style TopK sparse autoencoders: model, activation buffer, trainer, file formats.

``train_sae(model, SAETrainConfig(layer=L))`` trains one at the MLP input of layer L;
``save_sae`` / ``load_sae`` keep it as a directory; ``save_saelens`` / ``load_saelens``
and ``load_paper_sae`` read and write the other formats. The analysis of SAE features
through the weights lives in ``tl_bilinear.analysis`` (``feature_interactions``,
``feature_spectra``, ``low_rank_correlation``).
"""

from tl_bilinear.analysis import FeatureDictionary, as_dictionary
from tl_bilinear.compat import TL4, tl3_only
from tl_bilinear.sae.activations import ActivationBuffer, collect_activations, resolve_hook, splice_hook
from tl_bilinear.sae.evaluate import SAEMetrics, evaluate_sae
from tl_bilinear.sae.formats import load_paper_sae, load_saelens, open_sae, save_saelens
from tl_bilinear.sae.io import load_sae, save_sae
from tl_bilinear.sae.model import SAEConfig, TopKSAE

if not TL4:  # training checkpoints its state with the trainer's helpers (TransformerLens 3.9)
    from tl_bilinear.sae.train import SAE_RECIPES, SAETrainConfig, SAETrainResult, train_sae

__getattr__ = tl3_only("tl_bilinear.sae", ("SAE_RECIPES", "SAETrainConfig", "SAETrainResult", "train_sae"))

__all__ = [
    "ActivationBuffer",
    "FeatureDictionary",
    "SAEConfig",
    "SAE_RECIPES",
    "SAEMetrics",
    "SAETrainConfig",
    "SAETrainResult",
    "TopKSAE",
    "as_dictionary",
    "collect_activations",
    "evaluate_sae",
    "load_paper_sae",
    "load_sae",
    "load_saelens",
    "open_sae",
    "resolve_hook",
    "save_sae",
    "save_saelens",
    "splice_hook",
    "train_sae",
]
