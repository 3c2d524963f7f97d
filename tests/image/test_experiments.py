"""The experiments on a model trained on the 8x8 digits: explanation, truncation, consistency, masks, challenge."""

import pytest
import torch

from tl_bilinear.image import (
    ClassifierConfig,
    accuracy,
    challenge_data,
    challenge_task,
    class_eigendecompose,
    eigen_mask,
    explain,
    hoyer_sparsity,
    mask_attack,
    rank_matched_cosines,
    regularisation_metrics,
    regularisation_sweep,
    seed_consistency,
    truncation_curve,
)
from tl_bilinear.image.adversarial import _positive_eigenvectors
from tl_bilinear.image.train import TrainConfig


def test_training_learns_the_digits(digits_model, digits):
    model, history = digits_model
    assert history["test_accuracy"][-1] > 0.9
    assert history["loss"][-1] < history["loss"][0]
    assert accuracy(model, digits.test_images.double(), digits.test_labels) == pytest.approx(
        history["test_accuracy"][-1]
    )


def test_exact_on_digits_in_float64(digits_model, digits):
    model, _ = digits_model
    ce = class_eigendecompose(model)
    x = digits.test_images.double().flatten(1)
    logits = model.run_with_cache(x)[1]["hook_logits"]
    torch.testing.assert_close(ce.eig.contributions(x).sum(-1) + ce.eig.constant, logits, rtol=1e-10, atol=1e-10)


def test_truncation_curve_ends_at_the_models_accuracy(digits_model, digits):
    model, _ = digits_model
    ce = class_eigendecompose(model)
    images = digits.test_images.double().flatten(1)
    curve = truncation_curve(ce, images, digits.test_labels, ks=[0, 1, 5, 64], batch_size=100)
    assert list(curve) == [0, 1, 5, 64]
    assert curve[64] == pytest.approx(accuracy(model, images, digits.test_labels))
    assert curve[0] < 0.2 < curve[5]
    # the reference: truncate by hand and classify
    eig5 = ce.eig.truncate(5)
    by_hand = (eig5.contributions(images).sum(-1) + eig5.constant).argmax(-1)
    assert curve[5] == pytest.approx((by_hand == digits.test_labels).double().mean().item())
    with pytest.raises(ValueError, match=r"ks=\[65\] must be non-empty ints in \[0, 64\]"):
        truncation_curve(ce, images, digits.test_labels, ks=[65])


def test_explanation_adds_up_to_the_logits(digits_model, digits):
    model, _ = digits_model
    ce = class_eigendecompose(model)
    x = digits.test_images[0].double().flatten()
    explanation = explain(ce, x, top=3, k=5)
    logits = model(x[None])[0]
    assert explanation.classes[0] == logits.argmax()
    torch.testing.assert_close(explanation.logits, logits[explanation.classes])
    torch.testing.assert_close(explanation.contributions.sum(-1) + explanation.rest, explanation.logits)
    with pytest.raises(ValueError, match="top=11 must be in"):
        explain(ce, x, top=11)


def test_consistency_is_one_with_itself_and_symmetric(digits_model):
    model, _ = digits_model
    ce = class_eigendecompose(model, k=3)
    cosines = rank_matched_cosines([ce, ce], rank=3)
    torch.testing.assert_close(cosines, torch.ones(1, 10, 3, dtype=torch.float64))
    random = class_eigendecompose(type(model)(model.cfg).double(), k=3)
    assert rank_matched_cosines([ce, random]).mean() < 0.9
    with pytest.raises(ValueError, match="at least two"):
        rank_matched_cosines([ce])


def test_regularisation_metrics(digits_model):
    ce = class_eigendecompose(digits_model[0])
    metrics = regularisation_metrics(ce)
    assert 1 <= metrics["effective_rank"] <= 64 and 0 <= metrics["sparsity"] <= 1
    one_hot, flat = torch.eye(5, dtype=torch.float64)[0], torch.ones(5, dtype=torch.float64)
    torch.testing.assert_close(
        hoyer_sparsity(torch.stack([one_hot, flat])), torch.tensor([1.0, 0.0], dtype=torch.float64)
    )


def test_eigen_mask_is_the_pseudo_inverse(digits_model, digits):
    model, _ = digits_model
    ce = class_eigendecompose(model)
    reference = digits.train_images.double().flatten(1).mean(0)
    mask = eigen_mask(ce, target=3, reference=reference, k=4)
    vectors = _positive_eigenvectors(ce, 4, reference)  # [10, 4, 64]
    projections = vectors @ mask
    assert (projections[3] > 0).all()
    torch.testing.assert_close(projections[3] / projections[3, 0], torch.ones(4, dtype=torch.float64))
    others = torch.cat([projections[:3], projections[4:]])
    assert others.abs().max() < 1e-8 * projections[3].abs().max()
    assert mask.norm().item() == pytest.approx(1.0)


def test_mask_attack_beats_the_permuted_mask(digits_model, digits):
    model, _ = digits_model
    ce = class_eigendecompose(model)
    result = mask_attack(model, ce, digits.test_images.double(), digits.test_labels, target=3, strengths=[0, 4, 8], k=1)
    assert result.accuracy_eigen[0] == result.accuracy_permuted[0]
    assert result.accuracy_eigen[-1] < result.accuracy_permuted[-1]
    assert result.target_rate_eigen[-1] > result.target_rate_permuted[-1]
    assert result.mask.shape == (8, 8)
    with pytest.raises(IndexError, match="target class 12 is out of range"):
        mask_attack(model, ce, digits.test_images.double(), digits.test_labels, target=12)


def test_challenge_task_recovers_the_target(digits):
    target = digits.train_images[0]
    images, labels = challenge_data(target, 200)
    closer = ((images - target) ** 2).sum((1, 2)) < ((images - 1 + target) ** 2).sum((1, 2))
    assert torch.equal(labels.bool(), closer)
    config = TrainConfig(epochs=10, batch_size=128, noise=0.0, weight_decay=0.0, progress=False)
    result = challenge_task(target, n_train=4000, n_test=1000, d_model=32, train_config=config)
    assert result.accuracy > 0.8
    assert result.cosine > 0.8
    with pytest.raises(ValueError, match="target must be a"):
        challenge_data(target * 3, 10)


def test_sweep_and_seed_consistency_train_one_model_per_setting(digits):
    config = ClassifierConfig(image_shape=(8, 8), d_model=16)
    train = TrainConfig(epochs=3, batch_size=128, progress=False)
    rows = regularisation_sweep(digits, noises=[0.0, 0.5], weight_decays=[0.5], model_config=config, train_config=train)
    assert [(r["noise"], r["weight_decay"]) for r in rows] == [(0.0, 0.5), (0.5, 0.5)]
    assert all({"accuracy", "effective_rank", "sparsity"} <= set(r) for r in rows)
    models, cosines = seed_consistency(digits, [0, 1], config, train, rank=2)
    assert [m.cfg.seed for m in models] == [0, 1] and cosines.shape == (1, 10, 2)
    assert not torch.equal(models[0].W_E, models[1].W_E)
