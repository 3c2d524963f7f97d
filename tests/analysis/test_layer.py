"""Layer indices: checked once, with one message, and resolved as a Layer."""

import numpy as np
import pytest
import torch

import tl_bilinear
from tl_bilinear.analysis import Layer, check_layer, interaction_matrices


@pytest.mark.parametrize("layer", [2, -1, 1.0, "0"])
def test_layer_out_of_range(tiny_model, layer):
    with pytest.raises(IndexError, match="out of range: the model has 2 layers"):
        interaction_matrices(tiny_model, layer, tiny_model.W_U[:, 0])


@pytest.mark.parametrize("layer", [np.int64(1), torch.tensor(1)])
def test_a_non_int_layer_says_so(tiny_model, layer):
    with pytest.raises(IndexError, match="it must be a Python int"):
        interaction_matrices(tiny_model, layer, tiny_model.W_U[:, 0])


def test_check_layer_resolves_once(tiny_model):
    layer = check_layer(tiny_model, 1)
    assert isinstance(layer, Layer) and layer == 1 and f"blocks.{layer}" == "blocks.1"
    assert check_layer(tiny_model, layer) is layer  # a resolved layer passes as it is
    deeper = tl_bilinear.make_model("ts-micro", n_layers=1)
    with pytest.raises(IndexError, match=r"layer 1 is out of range: the model has 1 layer \(0..0\)"):
        check_layer(deeper, layer)  # resolved for another depth: checked again
    with pytest.raises(IndexError, match=r"^--layer 5 is out of range"):
        check_layer(tiny_model, 5, name="--layer")
