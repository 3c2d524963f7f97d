"""A small bilinear classifier trained on the bundled 8x8 digits, shared by the image tests."""

import pytest
import torch

from tl_bilinear.image import ClassifierConfig, TrainConfig, load_digits, train_classifier


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits (bundled, offline)."""
    return load_digits()


@pytest.fixture(scope="session")
def digits_model(digits):
    """A one-layer, 48-wide classifier trained for a few seconds (float64 for exactness)."""
    torch.manual_seed(0)
    config = ClassifierConfig(image_shape=(8, 8), d_model=48, seed=0)
    model, history = train_classifier(digits, config, TrainConfig(epochs=15, batch_size=64, noise=0.2, progress=False))
    return model.double(), history
