"""The paper's toy check (its tutorial 0): bilinear layers trained on boolean gates of input pairs.

Output (i, j) of an AND layer must become x_i x_j, so its interaction matrix is
½(e_i e_jᵀ + e_j e_iᵀ): eigenvalues +0.5 and −0.5 on (e_i ± e_j)/√2, everything else zero.
"""

import pytest
import torch

from tests.helpers.reference import bilinear_mlp
from tl_bilinear.toy import GATES, gate_dataset, train_gates


def test_and_gates_decompose_into_plus_and_minus_half():
    toy = train_gates(n_inputs=5, gate="AND")
    assert toy.loss < 1e-10
    eig = toy.eigendecompose()
    for out, (i, j) in enumerate(toy.pairs):
        values = eig.eigenvalues[out]
        top = values[:2].sort(descending=True).values
        torch.testing.assert_close(top, torch.tensor([0.5, -0.5], dtype=torch.float64), atol=1e-4, rtol=0)
        assert values[2:].abs().max() < 1e-4
        for value, vector in zip(values[:2], eig.eigenvectors[out, :2]):
            expected = torch.zeros(5, dtype=torch.float64)
            expected[i], expected[j] = 1.0, 1.0 if value > 0 else -1.0
            assert (vector @ expected).abs() / expected.norm() > 0.95, (out, value, vector)


@pytest.mark.parametrize("gate", list(GATES))
def test_every_gate_is_learnt_and_decomposed_exactly(gate):
    bias = gate not in ("AND", "OR", "XOR")
    toy = train_gates(n_inputs=4, gate=gate, bias=bias, steps=800)
    x, y, pairs = gate_dataset(4, gate)
    assert toy.loss < 1e-4 and toy.pairs == pairs
    w = toy.weights
    out = bilinear_mlp(x, w.W_gate, w.W_in, w.W_out, w.b_pre, w.b_pre_linear)
    torch.testing.assert_close(out, y, atol=0.05, rtol=0)
    eig = toy.eigendecompose()
    assert eig.augmented == bias
    torch.testing.assert_close(eig.reconstruct(x), out, rtol=1e-9, atol=1e-9)


def test_gate_truth_tables():
    x, y, pairs = gate_dataset(2, "XOR")
    assert pairs == [(0, 1)] and y[:, 0].tolist() == [0, 1, 1, 0]
    assert gate_dataset(2, "NAND")[1][:, 0].tolist() == [1, 1, 1, 0]
    assert gate_dataset(2, "IMPLIES")[1][:, 0].tolist() == [1, 1, 0, 1]


def test_bad_gate_arguments():
    with pytest.raises(ValueError, match="unknown gate 'NOT'; known gates: AND, OR"):
        gate_dataset(3, "NOT")
    with pytest.raises(ValueError, match="n_inputs=1 must be an int in"):
        gate_dataset(1, "AND")
    with pytest.raises(ValueError, match="NAND is 1 on the all-zero input, which needs a constant: pass bias=True"):
        train_gates(gate="NAND")
