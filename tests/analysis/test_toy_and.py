"""The paper's toy check (its tutorial 0): a bilinear layer trained on AND of input pairs.

Output (i, j) must become x_i x_j, so its interaction matrix is ½(e_i e_jᵀ + e_j e_iᵀ):
eigenvalues +0.5 and −0.5 with eigenvectors (e_i ± e_j)/√2, everything else zero.
"""

import itertools

import torch

from tl_bilinear.analysis import BilinearWeights, eigendecompose


def _train_and_layer(n_inputs=5, d_mlp=24, steps=1500):
    torch.manual_seed(0)
    pairs = list(itertools.combinations(range(n_inputs), 2))
    x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_inputs)))  # every input
    y = torch.stack([x[:, i] * x[:, j] for i, j in pairs], dim=1)  # AND = product on {0, 1}
    W_gate = torch.nn.Parameter(torch.randn(n_inputs, d_mlp) / n_inputs**0.5)
    W_in = torch.nn.Parameter(torch.randn(n_inputs, d_mlp) / n_inputs**0.5)
    W_out = torch.nn.Parameter(torch.randn(d_mlp, len(pairs)) / d_mlp**0.5)
    opt = torch.optim.Adam([W_gate, W_in, W_out], lr=1e-2)
    for _ in range(steps):
        loss = (((x @ W_gate) * (x @ W_in)) @ W_out - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return BilinearWeights(W_gate.detach(), W_in.detach(), W_out.detach()), pairs, loss.item()


def test_and_gates_decompose_into_plus_and_minus_half():
    weights, pairs, loss = _train_and_layer()
    assert loss < 1e-5
    eig = eigendecompose(weights, None, torch.eye(len(pairs)))
    for out, (i, j) in enumerate(pairs):
        values = eig.eigenvalues[out]
        top = values[:2].sort(descending=True).values
        torch.testing.assert_close(top, torch.tensor([0.5, -0.5]), atol=5e-3, rtol=0)
        assert values[2:].abs().max() < 5e-3
        for value, vector in zip(values[:2], eig.eigenvectors[out, :2]):
            expected = torch.zeros(weights.d_in)
            expected[i], expected[j] = 1.0, 1.0 if value > 0 else -1.0
            cos = (vector @ expected).abs() / expected.norm()
            assert cos > 0.99, (out, value, vector)
