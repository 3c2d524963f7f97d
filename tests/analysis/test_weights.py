"""Reading a bilinear layer's weights: only bilinear MLPs, shapes checked."""

import pytest
import torch

import tl_bilinear
from tl_bilinear.analysis import (
    BilinearWeights,
    bilinear_weights,
    eigendecompose,
)


def test_non_bilinear_layer_is_rejected():
    model = tl_bilinear.make_model("ts-micro", act_fn="relu", gated_mlp=True)
    with pytest.raises(ValueError, match=r"layer 0's MLP is not bilinear \(act_fn='relu'"):
        eigendecompose(model, 0, model.W_U[:, 0])
    ungated = tl_bilinear.make_model("ts-micro", gated_mlp=False)
    with pytest.raises(ValueError, match="gated_mlp=False"):
        bilinear_weights(ungated, 0)


def test_bilinear_weights_shape_check():
    with pytest.raises(ValueError, match="W_out has shape"):
        BilinearWeights(W_gate=torch.zeros(4, 8), W_in=torch.zeros(4, 8), W_out=torch.zeros(7, 4))
