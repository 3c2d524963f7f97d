"""Eigenvector activations on text: exact totals, top-k reconstruction, windows, direction forms."""

import pytest
import torch

from tl_bilinear.analysis import (
    eigen_activations,
    eigendecompose,
)
from tl_bilinear.analysis.activations import window_spans


def _tokens(batch, pos, seed=0):
    return torch.randint(0, 97, (batch, pos), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layer", [0, 1])
def test_contributions_sum_to_hook_mlp_out(short_model, layer):
    tokens = _tokens(3, 16)
    U = torch.randn(3, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    acts = eigen_activations(short_model, layer, U, tokens, k=None)
    _, cache = short_model.run_with_cache(tokens)
    exact = cache[f"blocks.{layer}.hook_mlp_out"] @ U.T
    assert torch.equal(acts.total, exact)  # read from the hook, not recomputed
    summed = acts.contributions.sum(-1) + acts.eigendecomposition.constant
    torch.testing.assert_close(summed, exact, rtol=0, atol=1e-10)
    torch.testing.assert_close(acts.explained(), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-10)
    lam = acts.eigendecomposition.eigenvalues
    torch.testing.assert_close(acts.contributions, lam * acts.projections.square())


def test_top_k_reconstruction_is_partial_and_ordered(short_model):
    tokens = _tokens(2, 16, seed=3)
    U = torch.randn(2, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    full = eigen_activations(short_model, 1, U, tokens, k=None)
    top4 = eigen_activations(short_model, 1, U, tokens, k=4)
    assert top4.contributions.shape == (2, 16, 2, 4)
    torch.testing.assert_close(top4.contributions, full.contributions[..., :4])
    torch.testing.assert_close(top4.residual, full.contributions[..., 4:].sum(-1))
    assert (top4.explained() < 1).all()


def test_explained_is_undefined_for_a_constant_total(short_model):
    """One token: the total has no variation, so the share explained is NaN, not a huge number."""
    U = torch.randn(2, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    one = eigen_activations(short_model, 1, U, _tokens(1, 1, seed=6), k=4)
    assert torch.isnan(one.explained()).all()
    assert torch.isfinite(eigen_activations(short_model, 1, U, _tokens(1, 8, seed=6), k=4).explained()).all()


def test_long_text_is_windowed_not_truncated(short_model):
    tokens = _tokens(2, 40, seed=4)  # n_ctx = 16
    U = torch.randn(1, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    acts = eigen_activations(short_model, 0, U, tokens, k=None)
    assert acts.total.shape == (2, 40, 1) and torch.equal(acts.tokens, tokens)
    for start, end, keep in window_spans(40, 16, 0):
        _, cache = short_model.run_with_cache(tokens[:, start:end])
        torch.testing.assert_close(
            acts.total[:, keep:end, 0], (cache["blocks.0.hook_mlp_out"] @ U.T)[:, keep - start :, 0]
        )
    # with overlap, every token after the first window keeps 6 tokens of left context
    ov = eigen_activations(short_model, 0, U, tokens, k=None, overlap=6)
    torch.testing.assert_close(ov.total[:, :16], acts.total[:, :16])
    _, cache = short_model.run_with_cache(tokens[:, 10:26])
    torch.testing.assert_close(ov.total[:, 16:26, 0], (cache["blocks.0.hook_mlp_out"] @ U.T)[:, 6:, 0])


def test_window_spans_tile_the_sequence():
    for length in (1, 15, 16, 17, 100):
        for overlap in (0, 1, 8, 15):
            spans = window_spans(length, 16, overlap)
            covered = [t for _, end, keep in spans for t in range(keep, end)]
            assert covered == list(range(length))
            assert all(end - start <= 16 and start <= keep for start, end, keep in spans)
    with pytest.raises(ValueError, match="overlap"):
        window_spans(10, 16, 16)


def test_accepts_a_decomposition_and_rejects_bad_input(short_model):
    U = torch.randn(2, 32, dtype=torch.float64)
    eig = eigendecompose(short_model, 1, U)
    acts = eigen_activations(short_model, 1, eig, _tokens(1, 8), k=3)
    assert acts.projections.shape == (1, 8, 2, 3)
    with pytest.raises(ValueError, match="layer 1, not layer 0"):
        eigen_activations(short_model, 0, eig, _tokens(1, 8))
    with pytest.raises(IndexError, match="out of range"):
        eigen_activations(short_model, 5, U, _tokens(1, 8))
    with pytest.raises(ValueError, match="token ids"):
        eigen_activations(short_model, 0, U, torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="tokenizer"):
        eigen_activations(short_model, 0, U, "no tokenizer here")


def test_long_string_windows_repeat_bos(text_model):
    n_ctx = text_model.cfg.n_ctx  # 24
    text = "Once upon a time there was a happy dog. The dog was sad when it rained. " * 4
    tokens = text_model.to_tokens(text, truncate=False)
    assert tokens.shape[1] > 2 * n_ctx and tokens[0, 0] == text_model.tokenizer.bos_token_id
    U = torch.randn(1, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    acts = eigen_activations(text_model, 1, U, text, k=None)
    assert torch.equal(acts.tokens, tokens)  # the whole text, nothing truncated
    # windows of n_ctx - 1 text tokens; later windows run as [BOS] + window
    _, cache = text_model.run_with_cache(tokens[:, : n_ctx - 1])
    torch.testing.assert_close(acts.total[:, : n_ctx - 1, 0], (cache["blocks.1.hook_mlp_out"] @ U.T)[..., 0])
    second = torch.cat([tokens[:, :1], tokens[:, n_ctx - 1 : 2 * (n_ctx - 1)]], dim=1)
    _, cache = text_model.run_with_cache(second)
    torch.testing.assert_close(
        acts.total[:, n_ctx - 1 : 2 * (n_ctx - 1), 0], (cache["blocks.1.hook_mlp_out"] @ U.T)[:, 1:, 0]
    )
    torch.testing.assert_close(acts.reconstruction, acts.total, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="repeats the BOS token"):
        eigen_activations(text_model, 1, U, text, k=None, overlap=n_ctx - 1)


def test_numpy_vectors_are_directions_not_token_ids(text_model):
    # a float numpy vector is a direction, not a list of token ids
    u = text_model.W_U[:, 5].detach()
    tokens = torch.tensor([0, 5, 9, 12])
    acts = eigen_activations(text_model, 1, u.numpy(), tokens, k=None)
    torch.testing.assert_close(acts.total, eigen_activations(text_model, 1, u, tokens, k=None).total)
    # so are Python lists of floats; lists of ints and strings stay token ids / names
    as_list = eigen_activations(text_model, 1, u.tolist(), tokens, k=None)
    torch.testing.assert_close(as_list.total, acts.total.to(as_list.total.dtype))
    by_id = eigen_activations(text_model, 1, [5], tokens, k=None)
    torch.testing.assert_close(by_id.total, acts.total)


def test_several_texts_in_a_list_say_how_to_pass_them(text_model):
    with pytest.raises(ValueError, match=r"model.to_tokens\(texts\)"):
        eigen_activations(text_model, 0, " happy", ["the dog", "the cat"])
