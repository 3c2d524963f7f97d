"""Regressions found by sweeping the analysis API on a trained model: indexing, layers, tokens."""

import numpy as np
import pytest
import torch

from tl_bilinear.analysis import eigen_activations, eigendecompose, hosvd, interaction_matrices, spectrum, token_ids


@pytest.fixture(scope="module")
def eig(tiny_model):
    return eigendecompose(tiny_model, 0, tiny_model.W_U[:, :3].T, k=4)


@pytest.mark.parametrize("index", [3, -4, 10])
def test_an_int_index_past_the_end_raises(eig, index):
    # eig[3] of 3 directions used to return an empty decomposition (slice(3, 4))
    with pytest.raises(IndexError, match=f"direction index {index} is out of range for 3 directions"):
        eig[index]


@pytest.mark.parametrize("index", [1, -2, np.int64(1), torch.tensor(1)])
def test_integer_likes_keep_the_direction_axis(eig, index):
    # numpy and 0-d tensor ints used to drop the axis: eigenvalues [k] and len(part) == k
    part = eig[index]
    assert len(part) == 1 and part.eigenvalues.shape == (1, 4) and part.directions.shape == (1, 32)
    torch.testing.assert_close(part.eigenvectors[0], eig.eigenvectors[1], rtol=0, atol=0)


@pytest.mark.parametrize("layer", [np.int64(1), torch.tensor(1)])
def test_a_non_int_layer_says_so(tiny_model, layer):
    with pytest.raises(IndexError, match="it must be a Python int"):
        interaction_matrices(tiny_model, layer, tiny_model.W_U[:, 0])


def test_a_string_several_ids_decode_to_is_refused(text_model):
    # byte tokens 0x80.. each decode to '\ufffd'; the lookup used to return the first silently
    strings = text_model.tokenizer.batch_decode([[i] for i in range(text_model.cfg.d_vocab)])
    assert strings.count("\ufffd") > 1
    with pytest.raises(ValueError, match="is the text of .* token ids .* pass the token id"):
        token_ids(text_model, "\ufffd")
    assert token_ids(text_model, [" happy", strings.index("\ufffd")])[1] == strings.index("\ufffd")


def test_numpy_vectors_are_directions_not_token_ids(text_model):
    # a float numpy vector used to go to the token lookup: "token id -0.06 is outside the vocabulary"
    u = text_model.W_U[:, 5].detach()
    tokens = torch.tensor([0, 5, 9, 12])
    acts = eigen_activations(text_model, 1, u.numpy(), tokens, k=None)
    torch.testing.assert_close(acts.total, eigen_activations(text_model, 1, u, tokens, k=None).total)
    # so are Python lists of floats; lists of ints and strings stay token ids / names
    as_list = eigen_activations(text_model, 1, u.tolist(), tokens, k=None)
    torch.testing.assert_close(as_list.total, acts.total.to(as_list.total.dtype))
    by_id = eigen_activations(text_model, 1, [5], tokens, k=None)
    torch.testing.assert_close(by_id.total, acts.total)


def test_hosvd_refuses_a_negative_k(tiny_model):
    # k=-1 used to slice keep[-1:] and silently drop the smallest component
    U = tiny_model.W_U[:, :3].T
    assert len(hosvd(tiny_model, 0, U).singular_values) == 3
    with pytest.raises(ValueError, match="k=-1 must be None"):
        hosvd(tiny_model, 0, U, k=-1)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, U, c: interaction_matrices(m, 0, U, chunk_size=c, build="direct"),
        lambda m, U, c: interaction_matrices(m, 0, U, chunk_size=c, build="packed"),
        lambda m, U, c: eigendecompose(m, 0, U, k=2, method="dense", chunk_size=c),
        lambda m, U, c: spectrum(m, 0, U, chunk_size=c),
    ],
)
@pytest.mark.parametrize("chunk_size", [0, -1, 2.0])
def test_a_bad_chunk_size_is_a_clear_error(tiny_model, call, chunk_size):
    with pytest.raises(ValueError, match=f"chunk_size={chunk_size!r} must be None"):
        call(tiny_model, tiny_model.W_U[:, :3].T, chunk_size)


def test_several_texts_in_a_list_say_how_to_pass_them(text_model):
    with pytest.raises(ValueError, match=r"model.to_tokens\(texts\)"):
        eigen_activations(text_model, 0, " happy", ["the dog", "the cat"])
