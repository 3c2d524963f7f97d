"""The streamed top-n context scanner equals a brute-force top-n over the whole dataset."""

import pytest
import torch

from tl_bilinear.analysis.activations import eigen_activations
from tl_bilinear.analysis.contexts import TopNMerger, top_activating_contexts


def _brute_force(scores_per_seq, n):
    """scores_per_seq: [S, P, F] -> per feature the (sequence, position, score) of the n best sequences."""
    best, pos = scores_per_seq.max(dim=1)  # [S, F]
    out = []
    for f in range(best.shape[1]):
        order = sorted(range(best.shape[0]), key=lambda s: -best[s, f].item())[:n]
        out.append([(s, pos[s, f].item(), best[s, f].item()) for s in order])
    return out


def test_merger_matches_brute_force_on_random_scores():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (23, 9), generator=g)
    scores = torch.randn(23, 9, 4, generator=g, dtype=torch.float64)
    merger = TopNMerger(4, n=5, before=3, after=2)
    for chunk in range(0, 23, 4):  # uneven batches, last one smaller
        merger.update(tokens[chunk : chunk + 4], scores[chunk : chunk + 4], scores[chunk : chunk + 4] * 10)
    res = merger.result()
    for f, expected in enumerate(_brute_force(scores, 5)):
        assert res.sequence[f].tolist() == [s for s, _, _ in expected]
        assert res.position[f].tolist() == [p for _, p, _ in expected]
        torch.testing.assert_close(res.scores[f], torch.tensor([v for _, _, v in expected], dtype=torch.float64))
        for j, (s, p, v) in enumerate(expected):
            window = res.tokens[f, j]
            for w in range(6):
                t = p - 3 + w
                assert window[w].item() == (tokens[s, t].item() if 0 <= t < 9 else -1)
                if 0 <= t < 9:
                    assert res.values[f, j, w].item() == pytest.approx(scores[s, t, f].item() * 10)
                else:
                    assert torch.isnan(res.values[f, j, w])
            assert res.values[f, j, res.max_index[f, j]].item() == pytest.approx(v * 10)


def test_fewer_sequences_than_n_are_padded():
    merger = TopNMerger(2, n=4)
    merger.update(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, 2), torch.ones(2, 3, 2))
    res = merger.result()
    assert res.sequence[0].tolist() == [0, 1, -1, -1] or res.sequence[0].tolist() == [1, 0, -1, -1]
    assert torch.isinf(res.scores[:, 2:]).all()
    assert len(res.contexts(0)) == 2


def test_nan_scores_never_rank():
    """NaN (e.g. from a diverged short_model) is skipped: a sequence ranks by its finite maximum,
    and one with no finite score is not a context at all."""
    scores = torch.tensor(
        [
            [[1.0], [float("nan")], [0.5]],
            [[float("nan")], [float("nan")], [float("nan")]],
            [[0.2], [3.0], [float("nan")]],
        ]
    )  # [3 sequences, 3 positions, 1 feature]
    merger = TopNMerger(1, n=3, before=0, after=0)
    merger.update(torch.zeros(3, 3, dtype=torch.long), scores, scores)
    res = merger.result()
    assert res.sequence[0].tolist() == [2, 0, -1]
    assert res.position[0].tolist()[:2] == [1, 0]
    assert res.scores[0].tolist() == [3.0, 1.0, float("-inf")]
    assert len(res.contexts(0)) == 2


def test_dataset_scan_matches_brute_force(short_model):
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, 97, (20, 12), generator=g)
    U = torch.randn(2, 32, dtype=torch.float64, generator=g)
    batches = (data[i : i + 6] for i in range(0, 20, 6))  # a generator: streamed once
    found = top_activating_contexts(short_model, 0, U, batches, k=3, n=4, before=2, after=1)
    acts = eigen_activations(short_model, 0, U, data, k=3)
    contrib = acts.contributions.flatten(2)
    lam_sign = acts.eigendecomposition.eigenvalues.sign().flatten()
    for res, scores, values in (
        (found.eigenvectors, contrib * lam_sign, contrib),
        (found.directions, acts.total, acts.total),
    ):
        for f, expected in enumerate(_brute_force(scores, 4)):
            assert res.sequence[f].tolist() == [s for s, _, _ in expected]
            assert res.position[f].tolist() == [p for _, p, _ in expected]
            for j, (s, p, _) in enumerate(expected):
                torch.testing.assert_close(res.values[f, j, 2], values[s, p, f])
    assert (found.eigenvectors.scores[:, :-1] >= found.eigenvectors.scores[:, 1:]).all()
    with pytest.raises(ValueError, match="no batches"):
        top_activating_contexts(short_model, 0, U, iter([]), k=3)
