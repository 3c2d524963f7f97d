"""The SAE-feature plots and page: real figures, one self-contained document."""

import pytest
import torch

from tl_bilinear.viz.feature_report import FeatureView, feature_report
from tl_bilinear.viz.features import correlation_figure, interaction_heatmap_figure


def test_heatmap_and_curve():
    fig = interaction_heatmap_figure(torch.tensor([[1.0, -2.0], [-2.0, 0.5]]), ["a", "b"])
    assert fig.axes[0].images[0].get_clim() == (-2.0, 2.0)  # symmetric around zero
    with pytest.raises(ValueError, match="need \\[s, s\\] and s labels"):
        interaction_heatmap_figure(torch.zeros(2, 2), ["a"])
    fig = correlation_figure(torch.linspace(0.5, 1, 8), torch.tensor([0.9, 0.8, 0.1, -0.2]))
    assert fig.axes[1].get_title() == "50% above 0.75"


def test_report_page(tmp_path):
    view = FeatureView(
        feature=7,
        caption="top eigenvalues <b>",
        matrix=torch.eye(2),
        labels=["in 1", "in 2"],
        tokens=["<s>", " not", " happy"],
        actual=torch.tensor([0.0, 1.0, 3.0]),
        approximation=torch.tensor([0.1, 0.9, 2.5]),
        k=2,
    )
    doc = feature_report("layer 2", [("features", 10)], torch.linspace(0.4, 0.9, 4), torch.rand(10), [view])
    page = doc.save(tmp_path / "p.html").read_text()
    assert "Output feature 7" in page and "top eigenvalues &lt;b&gt;" in page and "ColoredTokensMulti" in page
    assert page.count('class="tlb-plot"') == 2 and "<s>" not in page.split("</script>")[-1]
