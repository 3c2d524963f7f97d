"""SAE-basis interactions, feature spectra and low-rank correlation against independent references."""

import numpy as np
import pytest
import torch

from tests.helpers.reference import paper_interaction_matrices
from tl_bilinear.analysis import (
    FeatureDictionary,
    as_dictionary,
    bilinear_weights,
    feature_interactions,
    feature_spectra,
    input_feature_projections,
    low_rank_correlation,
)
from tl_bilinear.data import TokenBlockStream
from tl_bilinear.sae import SAEConfig, TopKSAE


class Plain:
    """Anything exposing W_enc / W_dec (no b_dec, no encode)."""

    def __init__(self, W_enc, W_dec):
        self.W_enc, self.W_dec = W_enc, W_dec


def random_sae(d_in, d_sae, k, seed):
    sae = TopKSAE(SAEConfig(d_in, d_sae, k), seed=seed, dtype=torch.float64)
    with torch.no_grad():
        sae.W_enc.normal_(generator=torch.Generator().manual_seed(seed + 100))
        sae.b_dec.normal_(std=0.1, generator=torch.Generator().manual_seed(seed + 200))
    return sae


def reference_Q(model, layer, U):
    w = bilinear_weights(model, layer)
    return paper_interaction_matrices(w.W_gate, w.W_in, w.W_out, U)


def test_feature_interactions_equal_direct_computation(tiny_model):
    out_sae, in_sae = random_sae(32, 64, 4, 0), random_sae(32, 48, 4, 1)
    idx = [3, 0, 63]
    result = feature_interactions(tiny_model, 1, out_sae, idx, in_sae, top=6, dtype=torch.float64)
    Q = reference_Q(tiny_model, 1, out_sae.W_enc.detach()[:, idx].T)
    D = in_sae.W_dec.detach()
    expected = torch.einsum("ad,nde,be->nab", D, Q, D)
    torch.testing.assert_close(result.matrices, expected, rtol=1e-10, atol=1e-12)
    for n in range(3):
        upper = torch.triu_indices(48, 48)
        entries = expected[n][upper[0], upper[1]]
        order = entries.abs().argsort(descending=True)[:6]
        assert result.top_pairs[n].tolist() == upper.T[order].tolist()
        off = upper[0] != upper[1]
        scale = entries[off].std()
        torch.testing.assert_close(result.outlier_scores[n], entries[order].abs() / scale)
    # anything with W_enc / W_dec gives the same
    plain = feature_interactions(tiny_model, 1, Plain(out_sae.W_enc, out_sae.W_dec), idx, in_sae, dtype=torch.float64)
    torch.testing.assert_close(plain.matrices, result.matrices)


def test_feature_interactions_bad_input(tiny_model):
    sae = random_sae(32, 64, 4, 0)
    with pytest.raises(IndexError, match="feature index 64 is out of range: the dictionary has 64 features"):
        feature_interactions(tiny_model, 1, sae, 64, sae)
    with pytest.raises(ValueError, match="reads width 16, but this layer's activations have width 32"):
        feature_interactions(tiny_model, 1, random_sae(16, 64, 4, 0), 0, sae)
    with pytest.raises(TypeError, match="is not a feature dictionary"):
        as_dictionary(object())


def test_spectra_match_dense_and_resume_from_cache(tiny_model, tmp_path):
    sae = random_sae(32, 40, 4, 2)
    result = feature_spectra(tiny_model, 1, sae, k=3, cache_dir=tmp_path, chunk_size=16, dtype=torch.float64)
    Q = reference_Q(tiny_model, 1, sae.W_enc.detach().T)
    values = torch.linalg.eigvalsh(Q)
    top = values.gather(1, values.abs().argsort(1, descending=True)[:, :3])
    torch.testing.assert_close(result.eigendecomposition.eigenvalues, top, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(result.frobenius_sq, Q.square().sum((1, 2)), rtol=1e-10, atol=0)
    mass = top.square().sum(1) / values.square().sum(1)
    torch.testing.assert_close(result.topk_mass, mass, rtol=1e-7, atol=0)
    assert result.ranking.tolist() == mass.argsort(descending=True).tolist()
    assert len(list(tmp_path.glob("chunk-*.safetensors"))) == 3
    (tmp_path / "chunk-00000016-16.safetensors").unlink()  # an interrupted run: one chunk missing
    again = feature_spectra(tiny_model, 1, sae, k=3, cache_dir=tmp_path, chunk_size=16, dtype=torch.float64)
    torch.testing.assert_close(again.eigendecomposition.eigenvalues, result.eigendecomposition.eigenvalues)
    with pytest.raises(ValueError, match="caches spectra of other weights"):
        feature_spectra(tiny_model, 0, sae, k=3, cache_dir=tmp_path, chunk_size=16, dtype=torch.float64)


def test_input_feature_projections(tiny_model):
    out_sae, in_sae = random_sae(32, 24, 4, 3), random_sae(32, 20, 4, 4)
    eig = feature_spectra(tiny_model, 1, out_sae, k=2, dtype=torch.float64).eigendecomposition
    projections, top = input_feature_projections(eig, in_sae, top=3)
    D = in_sae.W_dec.detach()
    expected = torch.einsum("nkd,sd->nks", eig.eigenvectors, D / D.norm(dim=1, keepdim=True))
    torch.testing.assert_close(projections, expected)
    assert (
        top.shape == (24, 2, 3)
        and (expected.abs().gather(-1, top[..., :1]) == expected.abs().amax(-1, keepdim=True)).all()
    )


def tokens_of(model, n=24):
    stream = TokenBlockStream("builtin", model.tokenizer, model.cfg.n_ctx, split="validation")
    return next(stream.batches(n))


def test_low_rank_correlation_exact_and_pearson(text_model):
    sae = random_sae(32, 48, 6, 5)
    tokens = tokens_of(text_model)
    full = low_rank_correlation(text_model, 1, sae, tokens, max_k=32)
    assert full.max_abs_error.max() < 1e-9  # all eigenvectors: the exact quadratic form at every token
    assert (full.correlation[:, -1] > 1 - 1e-9).all()
    # independent Pearson at k = 2 from the cache
    _, cache = text_model.run_with_cache(tokens)
    x = cache["blocks.1.ln2.hook_normalized"].reshape(-1, 32)
    y = cache["blocks.1.hook_mlp_out"].reshape(-1, 32)
    active = sae.encode(y) != 0
    Q = reference_Q(text_model, 1, sae.W_enc.detach().T)
    values, vectors = torch.linalg.eigh(Q)
    for row, f in enumerate(full.features.tolist()[:5]):
        order = values[f].abs().argsort(descending=True)[:2]
        approx = ((x @ vectors[f][:, order]).square() * values[f][order]).sum(-1)
        actual = (y - sae.b_dec) @ sae.W_enc[:, f]
        mask = active[:, f]
        expected = np.corrcoef(approx[mask].detach().numpy(), actual[mask].detach().numpy())[0, 1]
        assert abs(full.at(2)[row].item() - expected) < 1e-5
        assert full.active_counts[f].item() == mask.sum().item()


def test_low_rank_correlation_reports_silent_features(text_model):
    sae = random_sae(32, 16, 2, 6)
    with torch.no_grad():
        sae.W_enc[:, 5] = 0  # pre-activation 0: with the clamp of a bare dictionary, never active
        sae.b_dec.zero_()
    plain = FeatureDictionary(W_enc=sae.W_enc.detach(), W_dec=sae.W_dec.detach(), b_dec=sae.b_dec.detach())
    result = low_rank_correlation(text_model, 1, plain, tokens_of(text_model, 8), max_k=4)
    assert 5 in result.excluded.tolist() and result.active_counts[5] == 0
    assert 5 not in result.features.tolist()
    assert torch.isfinite(result.correlation).all() and torch.isfinite(result.mean_curve()).all()
    assert result.fraction_above(2, 0.75) <= 1


def test_negation_study_reads_the_matrix(text_model):
    from tl_bilinear.sae.negation import negation_study

    in_sae, out_sae = random_sae(32, 40, 4, 7), random_sae(32, 24, 4, 8)
    study = negation_study(text_model, 1, in_sae, out_sae, top=2)
    M = feature_interactions(text_model, 1, out_sae, study.output_feature, in_sae, dtype=torch.float64).matrices[0]
    torch.testing.assert_close(study.cross, M[study.negation_features][:, study.sentiment_features])
    torch.testing.assert_close(study.cross_scores, study.cross.abs() / study.scale)
    assert len(study.top_eigenvalues) == 6 and study.texts == 72
    # against the larger of two baselines the best score drops (strictly, with these dictionaries)
    strict = negation_study(text_model, 1, in_sae, out_sae, contrast="polarity", top=2)
    assert strict.output_score < study.output_score
    with pytest.raises(ValueError, match="negated='both' must be 'pos' or 'neg'"):
        negation_study(text_model, 1, in_sae, out_sae, negated="both")
    with pytest.raises(ValueError, match="contrast='other' must be 'plain' or 'polarity'"):
        negation_study(text_model, 1, in_sae, out_sae, contrast="other")
