"""The experiments on a model trained on the 8x8 digits: explanation, truncation, consistency, masks, challenge."""

import numpy as np
import pytest
import torch

from tl_bilinear.image import (
    BilinearClassifier,
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


def reference_eigen_mask(model, target, reference, k, rank):
    """The paper's recipe in numpy: eigenvectors of each class's hidden-space Q, lstsq encoders, through W_E."""
    mlp = model.blocks[0].mlp
    W_gate, W_in, W_out = (p.detach().double().numpy() for p in (mlp.W_gate, mlp.W_in, mlp.W_out))
    W_E, W_U = model.W_E.detach().double().numpy(), model.W_U.detach().double().numpy()
    h_ref = reference.double().numpy() @ W_E
    rows = []
    for c in range(W_U.shape[1]):
        d = W_out @ W_U[:, c]
        q = (W_gate * d) @ W_in.T
        values, vectors = np.linalg.eigh((q + q.T) / 2)
        top = vectors[:, values > 0][:, ::-1][:, :k].T  # positive, largest first
        rows.append(top * np.where(top @ h_ref < 0, -1.0, 1.0)[:, None])
    V = np.concatenate(rows)
    b = np.zeros(len(V))
    b[target * k + np.arange(k) if rank is None else target * k + rank] = 1.0
    encoder = np.linalg.lstsq(V, b, rcond=None)[0]  # minimum-norm solution of V e = b
    assert np.allclose(V @ encoder, b, atol=1e-8)  # the other stacked eigenvectors are untouched
    mask = W_E @ encoder
    return torch.from_numpy(mask / np.linalg.norm(mask))


@pytest.mark.parametrize("rank", [0, 2, None])
def test_eigen_mask_matches_the_papers_recipe(digits_model, digits, rank):
    model, _ = digits_model
    reference = digits.train_images.double().flatten(1).mean(0)
    mask = eigen_mask(model, target=3, reference=reference, k=4, rank=rank)
    torch.testing.assert_close(mask, reference_eigen_mask(model, 3, reference, 4, rank), rtol=1e-6, atol=1e-8)
    assert mask.norm().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rank=4 must be in 0..3"):
        eigen_mask(model, target=3, reference=reference, k=4, rank=4)
    with pytest.raises(ValueError, match="embedding-space decomposition"):
        eigen_mask(model, target=3, reference=reference, ce=class_eigendecompose(model))
    two_layers = BilinearClassifier(ClassifierConfig(image_shape=(8, 8), d_model=16, n_layers=2))
    with pytest.raises(ValueError, match="single-layer classifier"):
        eigen_mask(two_layers, target=3, reference=reference.float())


def test_mask_attack_beats_the_permuted_mask(digits_model, digits):
    model, _ = digits_model
    images, labels = digits.test_images.double(), digits.test_labels
    # 10 stacked eigenvectors in a 48-wide embedding (at k = 4, 40 of 48, the encoders lose their targeting)
    result = mask_attack(model, images, labels, target=3, strengths=[0, 2, 4, 8], k=1, scale="l2")
    assert result.mask.norm().item() == pytest.approx(1.0)
    assert result.accuracy_eigen[0] == result.accuracy_permuted[0]
    assert all(e < p for e, p in zip(result.accuracy_eigen[1:], result.accuracy_permuted[1:]))
    assert result.target_rate_eigen[-1] > result.target_rate_permuted[-1]
    assert result.mask.shape == (8, 8)
    with pytest.raises(IndexError, match="target class 12 is out of range"):
        mask_attack(model, images, labels, target=12)
    with pytest.raises(ValueError, match="scale='linf' must be"):
        mask_attack(model, images, labels, target=3, scale="linf")
    paper = mask_attack(model, images, labels, target=3, k=1)  # the paper's strengths and scale
    assert paper.strengths[0] == 0.025 and paper.strengths[-1] == 0.3 and len(paper.strengths) == 12
    positive = paper.mask[paper.mask > 0]
    assert positive.std().item() == pytest.approx(1.0)
    torch.testing.assert_close(paper.mask / paper.mask.norm(), result.mask)


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
