"""Views of bilinear-MLP analyses: circuitsvis token views, plots, the HTML report.

Everything renders offline: documents inline the circuitsvis bundle once and escape
every token (see :mod:`tl_bilinear.viz.html`).
"""

from tl_bilinear.viz.html import HTMLDocument
from tl_bilinear.viz.plots import effective_rank_figure, figure_data_uri, save_figure, spectra_figure, spectrum_figure
from tl_bilinear.viz.report import analysis_report
from tl_bilinear.viz.tokens import colored_tokens, colored_tokens_multi, display_vocab, topk_samples, topk_tokens

__all__ = [
    "HTMLDocument",
    "analysis_report",
    "colored_tokens",
    "colored_tokens_multi",
    "display_vocab",
    "effective_rank_figure",
    "figure_data_uri",
    "save_figure",
    "spectra_figure",
    "spectrum_figure",
    "topk_samples",
    "topk_tokens",
]
