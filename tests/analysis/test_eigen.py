"""Interaction matrices, eigendecomposition, directions, metrics and HOSVD against references."""

import itertools

import pytest
import torch

import tl_bilinear
from tests.helpers.reference import paper_interaction_matrices
from tl_bilinear.analysis import (
    BilinearWeights,
    bilinear_weights,
    contrast_directions,
    effective_rank,
    eigendecompose,
    hosvd,
    interaction_matrices,
    mean_contrast_directions,
    spectrum,
    topk_mass,
    unembed_directions,
)

G = torch.Generator().manual_seed(0)


def _directions(model, n=6):
    return torch.randn(n, model.cfg.d_model, generator=G, dtype=model.cfg.dtype)


def test_q_matches_the_paper_einsum_and_is_symmetric(tiny_model):
    U = _directions(tiny_model)
    mlp = tiny_model.blocks[1].mlp
    Q = interaction_matrices(tiny_model, 1, U, chunk_size=4)
    torch.testing.assert_close(Q, paper_interaction_matrices(mlp.W_gate, mlp.W_in, mlp.W_out, U).detach())
    torch.testing.assert_close(Q, Q.mT, rtol=0, atol=0)


def test_q_is_linear_in_u(tiny_model):
    u, w = _directions(tiny_model, 2)
    Q = interaction_matrices(tiny_model, 0, torch.stack([u, w, 2.5 * u - 3 * w]))
    torch.testing.assert_close(Q[2], 2.5 * Q[0] - 3 * Q[1])


def test_single_direction_and_float32(tiny_model):
    u = _directions(tiny_model, 1)[0]
    Q = interaction_matrices(tiny_model, 0, u, dtype=torch.float32)
    assert Q.shape == (1, 32, 32) and Q.dtype == torch.float32


def test_eigenpairs_sorted_by_magnitude_orthonormal_and_exact(tiny_model):
    U = _directions(tiny_model)
    eig = eigendecompose(tiny_model, 0, U)
    assert eig.eigenvalues.shape == (6, 32) and eig.eigenvectors.shape == (6, 32, 32)
    assert (eig.eigenvalues.abs().diff(dim=-1) <= 0).all()
    eye = torch.eye(32, dtype=torch.float64).expand(6, -1, -1)
    torch.testing.assert_close(eig.eigenvectors @ eig.eigenvectors.mT, eye)
    torch.testing.assert_close(eig.matrices(), interaction_matrices(tiny_model, 0, U))
    # largest-magnitude entry of every eigenvector is positive (a fixed sign convention)
    pivot = eig.eigenvectors.gather(-1, eig.eigenvectors.abs().argmax(-1, keepdim=True))
    assert (pivot > 0).all()


def test_reconstruct_full_is_exact_and_k0_is_zero(tiny_model):
    U = _directions(tiny_model)
    eig = eigendecompose(tiny_model, 1, U)
    x = torch.randn(3, 5, 32, generator=G, dtype=torch.float64)
    Q = interaction_matrices(tiny_model, 1, U)
    quadratic = torch.einsum("bpi,nij,bpj->bpn", x, Q, x)
    torch.testing.assert_close(eig.reconstruct(x, k=32), quadratic)
    assert eig.reconstruct(x, k=0).abs().max() == 0
    torch.testing.assert_close(eig.contributions(x).sum(-1), quadratic)
    torch.testing.assert_close(eig.truncate(4).reconstruct(x), eig.reconstruct(x, k=4))


def test_top_k_is_the_best_rank_k_approximation(tiny_model):
    U = _directions(tiny_model, 2)
    Q = interaction_matrices(tiny_model, 0, U)
    eig = eigendecompose(tiny_model, 0, U)
    all_values, all_vectors = torch.linalg.eigh(Q)
    for k in (1, 3, 8):
        best = (Q - eig.matrices(k)).norm(dim=(-2, -1))
        # Eckart-Young: the truncated SVD's error, computed independently
        sv = torch.linalg.svdvals(Q)
        torch.testing.assert_close(best, sv[:, k:].square().sum(-1).sqrt())
        # and no other choice of k eigenpairs does better
        for subset in itertools.islice(itertools.combinations(range(32), k), 200):
            idx = list(subset)
            other = torch.einsum("nk,nik,njk->nij", all_values[:, idx], all_vectors[:, :, idx], all_vectors[:, :, idx])
            assert ((Q - other).norm(dim=(-2, -1)) >= best - 1e-9).all()


def test_top_k_equals_dense_truncation(tiny_model):
    U = _directions(tiny_model)
    full = eigendecompose(tiny_model, 0, U)
    top = eigendecompose(tiny_model, 0, U, k=5)
    torch.testing.assert_close(top.eigenvalues, full.eigenvalues[:, :5])
    torch.testing.assert_close(top.eigenvectors, full.eigenvectors[:, :5])


def test_spectrum_matches_eigendecompose(tiny_model):
    U = _directions(tiny_model)
    torch.testing.assert_close(spectrum(tiny_model, 0, U, chunk_size=2), eigendecompose(tiny_model, 0, U).eigenvalues)


def test_indexing_keeps_the_direction_axis(tiny_model):
    eig = eigendecompose(tiny_model, 0, _directions(tiny_model))
    assert len(eig[2]) == 1 and len(eig[1:4]) == 3 and len(eig[-1]) == 1
    torch.testing.assert_close(eig[-1].eigenvalues, eig.eigenvalues[-1:])


def test_direction_helpers(tiny_model):
    W_U = tiny_model.W_U.detach()
    torch.testing.assert_close(unembed_directions(tiny_model, [3, 5]), W_U[:, [3, 5]].T)
    torch.testing.assert_close(unembed_directions(tiny_model, torch.tensor(7)), W_U[:, [7]].T)
    torch.testing.assert_close(contrast_directions(tiny_model, [3, 5], 9), (W_U[:, [3, 5]] - W_U[:, [9]]).T)
    others = torch.cat([W_U[:, :4], W_U[:, 5:]], dim=1).mean(1)
    torch.testing.assert_close(mean_contrast_directions(tiny_model, 4)[0], W_U[:, 4] - others)


def test_token_strings_and_near_match_suggestions(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "happy", "sad", "scared", "story", "the"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(tmp_path)
    model = tl_bilinear.make_model("ts-micro", d_vocab=6)
    model.set_tokenizer(PreTrainedTokenizerFast.from_pretrained(tmp_path), default_padding_side="right")
    torch.testing.assert_close(unembed_directions(model, ["sad", "happy"]), model.W_U[:, [2, 1]].T.detach())
    with pytest.raises(ValueError, match=r"'sadd' is not a single token.*'sad'"):
        unembed_directions(model, "sadd")


def test_effective_rank_and_topk_mass():
    values = torch.tensor([[2.0, -2.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [4.0, -3.0, 0.0, 0.0]])
    torch.testing.assert_close(effective_rank(values), torch.tensor([2.0, 1.0, 0.0, 49 / 25]))
    torch.testing.assert_close(topk_mass(values, 1), torch.tensor([0.5, 1.0, 0.0, 16 / 25]))
    torch.testing.assert_close(topk_mass(values, 4), torch.tensor([1.0, 1.0, 0.0, 1.0]))


def test_hosvd_matches_svd_of_the_flattened_tensor(tiny_model):
    U = _directions(tiny_model, 9)
    flat = interaction_matrices(tiny_model, 1, U).reshape(9, -1)
    ref_left, ref_s, ref_right = torch.linalg.svd(flat, full_matrices=False)
    result = hosvd(tiny_model, 1, U)
    torch.testing.assert_close(result.singular_values, ref_s)
    components = result.component_matrices(tiny_model, 1).reshape(len(ref_s), -1)
    alignment = (components * ref_right).sum(-1).abs()  # singular vectors up to sign
    torch.testing.assert_close(alignment, torch.ones_like(alignment))
    assert hosvd(tiny_model, 1, U, k=3).singular_values.shape == (3,)


def test_lanczos_and_dense_agree_on_a_wide_layer():
    model = tl_bilinear.make_model("ts-micro", d_model=128, d_vocab=97, dtype=torch.float64)
    U = model.W_U[:, :4].T
    dense = eigendecompose(model, 0, U, k=6, method="dense")
    fast = eigendecompose(model, 0, U, k=6, method="auto")
    torch.testing.assert_close(fast.eigenvalues, dense.eigenvalues, rtol=1e-8, atol=1e-10)
    cos = (fast.eigenvectors * dense.eigenvectors).sum(-1).abs()
    assert cos.min() > 1 - 1e-6


# ---- bad input -------------------------------------------------------------------------


def test_non_bilinear_layer_is_rejected():
    model = tl_bilinear.make_model("ts-micro", act_fn="relu", gated_mlp=True)
    with pytest.raises(ValueError, match=r"layer 0's MLP is not bilinear \(act_fn='relu'"):
        eigendecompose(model, 0, model.W_U[:, 0])
    ungated = tl_bilinear.make_model("ts-micro", gated_mlp=False)
    with pytest.raises(ValueError, match="gated_mlp=False"):
        bilinear_weights(ungated, 0)


@pytest.mark.parametrize("layer", [2, -1, 1.0, "0"])
def test_layer_out_of_range(tiny_model, layer):
    with pytest.raises(IndexError, match="out of range: the model has 2 layers"):
        interaction_matrices(tiny_model, layer, tiny_model.W_U[:, 0])


def test_direction_of_the_wrong_width(tiny_model):
    with pytest.raises(ValueError, match=r"shape \(31,\), expected \[32\] or \[n, 32\]"):
        eigendecompose(tiny_model, 0, torch.randn(31, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN or inf"):
        eigendecompose(tiny_model, 0, torch.full((32,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="floating point"):
        eigendecompose(tiny_model, 0, torch.ones(32, dtype=torch.long))


def test_bad_k_and_method(tiny_model):
    u = tiny_model.W_U[:, 0]
    with pytest.raises(ValueError, match=r"k=33 must be None or an int in \[0, 32\]"):
        eigendecompose(tiny_model, 0, u, k=33)
    with pytest.raises(ValueError, match="method='fast'"):
        eigendecompose(tiny_model, 0, u, method="fast")
    eig = eigendecompose(tiny_model, 0, u, k=4)
    with pytest.raises(ValueError, match=r"k=5 must be an int in \[0, 4\]"):
        eig.reconstruct(torch.zeros(32, dtype=torch.float64), k=5)
    with pytest.raises(ValueError, match="x has width 31"):
        eig.contributions(torch.zeros(31, dtype=torch.float64))


def test_results_carry_no_autograd_graph(tiny_model):
    U = tiny_model.W_U[:, :3].T  # a slice of a parameter: requires grad
    assert U.requires_grad
    assert not interaction_matrices(tiny_model, 0, U).requires_grad
    assert not eigendecompose(tiny_model, 0, U).eigenvalues.requires_grad
    assert not hosvd(tiny_model, 0, U).singular_values.requires_grad


def test_token_id_out_of_range(tiny_model):
    with pytest.raises(ValueError, match=r"token id 97 is outside the vocabulary \[0, 97\)"):
        unembed_directions(tiny_model, 97)


def test_bilinear_weights_shape_check():
    with pytest.raises(ValueError, match="W_out has shape"):
        BilinearWeights(W_gate=torch.zeros(4, 8), W_in=torch.zeros(4, 8), W_out=torch.zeros(7, 4))
