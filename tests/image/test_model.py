"""The classifier as a HookedRootModule, save/load, and the exact per-class decomposition against its hooks."""

import pytest
import torch

from tests.helpers.reference import bilinear_mlp, paper_interaction_matrices
from tl_bilinear.image import (
    BilinearClassifier,
    ClassifierConfig,
    check_class,
    class_eigendecompose,
    layer_weights,
    load_classifier,
    save_classifier,
)

HOOKS = ["hook_embed", "hook_resid_pre", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out"]


def _model(bias=False, residual=False, n_layers=1, seed=0):
    model = BilinearClassifier(
        ClassifierConfig(
            image_shape=(6, 5), d_model=12, d_mlp=9, n_layers=n_layers, bias=bias, residual=residual, seed=seed
        )
    ).double()
    with torch.no_grad():  # biases start at zero: make them matter
        for block in model.blocks:
            if bias:
                block.mlp.b_pre.normal_()
                block.mlp.b_pre_linear.normal_()
    return model


def _forward_by_hand(model, images):
    """The architecture written out independently of the module (tests/helpers/reference.py's MLP)."""
    h = images.flatten(1) @ model.W_E
    for block in model.blocks:
        mlp = block.mlp
        out = bilinear_mlp(h, mlp.W_gate, mlp.W_in, mlp.W_out, mlp.b_pre, mlp.b_pre_linear)
        h = h + out if model.cfg.residual else out
    return h @ model.W_U


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_forward_and_hooks(bias, residual):
    model = _model(bias, residual, n_layers=2)
    images = torch.rand(7, 6, 5, dtype=torch.float64)
    logits, cache = model.run_with_cache(images)
    torch.testing.assert_close(logits, _forward_by_hand(model, images), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cache["hook_logits"], logits)
    for layer in range(2):
        for name in HOOKS[1:]:
            assert f"blocks.{layer}.{name}" in cache
        product = cache[f"blocks.{layer}.mlp.hook_pre"] * cache[f"blocks.{layer}.mlp.hook_pre_linear"]
        torch.testing.assert_close(cache[f"blocks.{layer}.mlp.hook_post"], product)
    zeroed = model.run_with_hooks(images, fwd_hooks=[("blocks.1.mlp.hook_post", lambda act, hook: act * 0)])
    expected = cache["blocks.1.hook_resid_pre"] @ model.W_U if residual else torch.zeros_like(logits)
    torch.testing.assert_close(zeroed, expected)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_pixel_decomposition_is_exact_at_every_input(bias, residual):
    model = _model(bias, residual)
    images = torch.rand(50, 6, 5, dtype=torch.float64)
    logits = model.run_with_cache(images)[1]["hook_logits"]
    ce = class_eigendecompose(model, space="pixel")
    assert ce.eig.augmented == bias and ce.eig.d_in == 30 + bias
    x = images.flatten(1)
    # logit == Σ λ (v·x)² + linear + constants, and all eigenpairs are kept
    torch.testing.assert_close(ce.logits(x), logits, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ce.inputs(model, images), x, rtol=0, atol=0)
    magnitudes = ce.eig.eigenvalues.abs()
    assert (magnitudes[:, :-1] >= magnitudes[:, 1:]).all()
    if not bias and not residual:
        torch.testing.assert_close(ce.eig.contributions(x).sum(-1), logits, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bias", [False, True])
def test_hidden_decomposition_of_last_layer_matches_hooks(bias):
    model = _model(bias, residual=True, n_layers=2)
    images = torch.rand(20, 30, dtype=torch.float64)
    logits, cache = model.run_with_cache(images)
    ce = class_eigendecompose(model, space="hidden")
    torch.testing.assert_close(ce.logits(cache["blocks.1.hook_resid_pre"]), logits, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ce.inputs(model, images), cache["blocks.1.hook_resid_pre"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="layer 0 is not the last: pass its output directions"):
        class_eigendecompose(model, layer=0, space="hidden")
    with pytest.raises(ValueError, match="space='pixel' needs layer 0"):
        class_eigendecompose(model, layer=1, space="pixel")
    inner = class_eigendecompose(model, layer=0, space="hidden", directions=torch.eye(12, dtype=torch.float64)[:3])
    out = cache["blocks.0.hook_mlp_out"][:, :3]
    torch.testing.assert_close(inner.eig.reconstruct(cache["blocks.0.hook_resid_pre"]), out, rtol=1e-10, atol=1e-10)


def test_pixel_interaction_matrix_matches_the_papers_einsum():
    model = _model()
    weights = layer_weights(model, 0, "pixel")
    W_E, mlp = model.W_E.detach(), model.blocks[0].mlp
    reference = paper_interaction_matrices(W_E @ mlp.W_gate, W_E @ mlp.W_in, mlp.W_out, model.W_U.T).detach()
    ce = class_eigendecompose(model)
    torch.testing.assert_close(ce.eig.matrices(), reference, rtol=1e-10, atol=1e-12)
    assert weights.d_in == 30


def test_eigen_images_have_the_image_shape():
    ce = class_eigendecompose(_model(bias=True), k=4)
    assert ce.eigen_images().shape == (10, 4, 6, 5)
    with pytest.raises(ValueError, match="eigen-images need space='pixel'"):
        class_eigendecompose(_model(), space="hidden").eigen_images()


def test_bad_inputs_name_the_value():
    model = _model()
    with pytest.raises(
        ValueError, match=r"images of shape \(3, 8, 8\) do not fit this model: it takes \[\.\.\., 6, 5\]"
    ):
        model(torch.rand(3, 8, 8, dtype=torch.float64))
    with pytest.raises(IndexError, match="class index 10 is out of range: the model has 10 classes"):
        check_class(model, 10)
    with pytest.raises(IndexError, match="layer 3 is out of range"):
        layer_weights(model, 3)
    with pytest.raises(ValueError, match="k=31 must be None or an int in"):
        class_eigendecompose(model, k=31)
    with pytest.raises(ValueError, match="d_model=0 must be a positive int"):
        ClassifierConfig(d_model=0)


def test_save_and_load_round_trip(tmp_path):
    model = _model(bias=True, residual=True, n_layers=2).float()
    save_classifier(model, tmp_path / "run", history={"loss": [1.0]})
    loaded = load_classifier(tmp_path / "run")
    assert loaded.cfg == model.cfg
    images = torch.rand(4, 6, 5)
    torch.testing.assert_close(loaded(images), model(images))
    save_classifier(_model(seed=1).float(), tmp_path / "run")  # replaces atomically
    assert load_classifier(tmp_path / "run").cfg.seed == 1
    with pytest.raises(FileNotFoundError, match="is not a saved image classifier"):
        load_classifier(tmp_path / "nothing")
