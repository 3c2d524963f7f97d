"""The paper's "challenge" task with a known answer (Fig. 6).

Inputs are uniform random images; the label is whether an input is closer (L2) to a target
image t or to its complement 1 − t, i.e. the sign of ``x · (2t − 1) − c``: a linear rule. A
bilinear model with biases expresses it through the augmented input ``[x, 1]``, so the dominant
eigenvector of ``Q(u_True − u_False)`` must point along ``2t − 1`` in pixel space.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.analysis import eigendecompose
from tl_bilinear.image.datasets import ImageData
from tl_bilinear.image.decompose import layer_weights
from tl_bilinear.image.model import BilinearClassifier, ClassifierConfig
from tl_bilinear.image.train import TrainConfig, accuracy, train_classifier

#: Training for the challenge task: no noise or weight decay, small batches.
CHALLENGE_TRAINING = TrainConfig(epochs=30, batch_size=256, noise=0.0, weight_decay=0.0)


@dataclass(frozen=True)
class ChallengeResult:
    """A model trained on the challenge task and what its weights reveal.

    Attributes:
        model: the trained classifier (two classes: 0 closer to the complement, 1 closer to the target).
        accuracy: its test accuracy.
        eigenvalues: [k] of ``Q(u_True − u_False)``, by |λ|.
        eigenvector: [height, width] the dominant eigenvector's pixel part.
        cosine: |cos| between it and ``2t − 1``.
    """

    model: BilinearClassifier
    accuracy: float
    eigenvalues: Float[Tensor, k]
    eigenvector: Float[Tensor, "height width"]
    cosine: float


def challenge_data(
    target: Float[Tensor, "height width"], n: int, seed: int = 0
) -> tuple[Float[Tensor, "n height width"], Int[Tensor, n]]:
    """Uniform random images and whether each is closer to ``target`` (1) than to ``1 − target`` (0).

    Raises:
        ValueError: if the target is not a 2-D image with values in [0, 1].
    """
    if target.ndim != 2 or target.min() < 0 or target.max() > 1:
        raise ValueError(f"target must be a [height, width] image in [0, 1], got shape {tuple(target.shape)}")
    images = torch.rand((n, *target.shape), generator=torch.Generator().manual_seed(seed))
    to_target = (images - target).flatten(1).norm(dim=-1)
    to_complement = (images - (1 - target)).flatten(1).norm(dim=-1)
    return images, (to_target < to_complement).long()


def challenge_task(
    target: Float[Tensor, "height width"],
    n_train: int = 20000,
    n_test: int = 2000,
    d_model: int = 64,
    train_config: TrainConfig = CHALLENGE_TRAINING,
    seed: int = 0,
) -> ChallengeResult:
    """Train a bilinear model with biases on the challenge task and recover the target from its weights.

    Returns:
        The ChallengeResult.
    """
    train, test = challenge_data(target, n_train, seed), challenge_data(target, n_test, seed + 1)
    data = ImageData(*train, *test, classes=("complement", "target"), name="challenge")
    config = ClassifierConfig(image_shape=tuple(target.shape), n_classes=2, d_model=d_model, bias=True, seed=seed)
    model, _ = train_classifier(data, config, replace(train_config, seed=seed))
    W_U = model.W_U.detach()
    eig = eigendecompose(layer_weights(model, 0, "pixel"), None, W_U[:, 1] - W_U[:, 0], k=1, dtype=torch.float64)
    vector = eig.eigenvectors[0, 0, : target.numel()]
    expected = (2 * target - 1).flatten().double()
    cosine = (torch.nn.functional.cosine_similarity(vector, expected, dim=0)).abs().item()
    return ChallengeResult(
        model=model,
        accuracy=accuracy(model, test[0], test[1]),
        eigenvalues=eig.eigenvalues[0],
        eigenvector=vector.reshape(target.shape),
        cosine=cosine,
    )
