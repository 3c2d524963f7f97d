"""Output directions: unembedding columns, contrasts, token ids, validation."""

import pytest
import torch

from tl_bilinear.analysis import (
    contrast_directions,
    eigendecompose,
    mean_contrast_directions,
    unembed_directions,
)


def test_direction_helpers(tiny_model):
    W_U = tiny_model.W_U.detach()
    torch.testing.assert_close(unembed_directions(tiny_model, [3, 5]), W_U[:, [3, 5]].T)
    torch.testing.assert_close(unembed_directions(tiny_model, torch.tensor(7)), W_U[:, [7]].T)
    torch.testing.assert_close(contrast_directions(tiny_model, [3, 5], 9), (W_U[:, [3, 5]] - W_U[:, [9]]).T)
    others = torch.cat([W_U[:, :4], W_U[:, 5:]], dim=1).mean(1)
    torch.testing.assert_close(mean_contrast_directions(tiny_model, 4)[0], W_U[:, 4] - others)


def test_direction_of_the_wrong_width(tiny_model):
    with pytest.raises(ValueError, match=r"shape \(31,\), expected \[32\] or \[n, 32\]"):
        eigendecompose(tiny_model, 0, torch.randn(31, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN or inf"):
        eigendecompose(tiny_model, 0, torch.full((32,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="floating point"):
        eigendecompose(tiny_model, 0, torch.ones(32, dtype=torch.long))


def test_token_id_out_of_range(tiny_model):
    with pytest.raises(ValueError, match=r"token id 97 is outside the vocabulary \[0, 97\)"):
        unembed_directions(tiny_model, 97)
