"""Toy bilinear layers trained on boolean gates of input pairs (the paper's tutorial 0).

Output (i, j) of the layer learns ``gate(x_i, x_j)`` on every binary input. On {0, 1} inputs
``x_i² = x_i``, so AND, OR and XOR are quadratic forms without biases (AND = x_i x_j: Q has
eigenvalues ±½ on (e_i ± e_j)/√2); gates that are 1 at (0, 0) need a constant, i.e. biases
(the augmented input ``[x, 1]``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from tl_bilinear.analysis import BilinearWeights, Eigendecomposition, eigendecompose

#: Boolean gates on {0, 1} as polynomials.
GATES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "AND": lambda a, b: a * b,
    "OR": lambda a, b: a + b - a * b,
    "XOR": lambda a, b: a + b - 2 * a * b,
    "NAND": lambda a, b: 1 - a * b,
    "NOR": lambda a, b: 1 - a - b + a * b,
    "XNOR": lambda a, b: 1 - a - b + 2 * a * b,
    "IMPLIES": lambda a, b: 1 - a + a * b,
}
#: The largest input width enumerated exhaustively (2^n inputs).
MAX_INPUTS = 16


@dataclass(frozen=True)
class ToyGates:
    """A trained toy layer.

    Attributes:
        weights: the layer, one output per input pair.
        pairs: the (i, j) input pair of each output.
        gate: the gate's name.
        loss: the final mean squared error over all inputs.
    """

    weights: BilinearWeights
    pairs: list[tuple[int, int]]
    gate: str
    loss: float

    def eigendecompose(self) -> Eigendecomposition:
        """Every output's interaction matrix, through the analysis core (augmented when biased)."""
        return eigendecompose(self.weights, None, torch.eye(len(self.pairs), dtype=self.weights.W_gate.dtype))


def gate_dataset(n_inputs: int, gate: str) -> tuple[Float[Tensor, "m n_inputs"], Float[Tensor, "m pairs"], list]:
    """Every binary input of width ``n_inputs`` and the gate of every input pair.

    Returns:
        ``(x, y, pairs)``.

    Raises:
        ValueError: for an unknown gate (the known ones are listed) or a width outside [2, MAX_INPUTS].
    """
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; known gates: {', '.join(GATES)}")
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or not 2 <= n_inputs <= MAX_INPUTS:
        raise ValueError(f"n_inputs={n_inputs!r} must be an int in [2, {MAX_INPUTS}]")
    pairs = list(itertools.combinations(range(n_inputs), 2))
    x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_inputs)), dtype=torch.float64)
    y = torch.stack([GATES[gate](x[:, i], x[:, j]) for i, j in pairs], dim=1)
    return x, y, pairs


def train_gates(
    n_inputs: int = 5,
    gate: str = "AND",
    bias: bool = False,
    d_mlp: int = 24,
    steps: int = 1500,
    lr: float = 1e-2,
    seed: int = 0,
) -> ToyGates:
    """Train a bilinear layer ``((x W_gate + b_pre) * (x W_in + b_pre_linear)) W_out`` on a gate (MSE, Adam).

    Args:
        n_inputs: input width (all 2^n inputs are the data).
        gate: one of ``GATES``.
        bias: learn branch biases (needed by gates that are 1 at (0, 0)).
        d_mlp: hidden units.
        steps: full-batch Adam steps.
        lr: Adam learning rate.
        seed: initialisation seed.

    Raises:
        ValueError: for an unknown gate, a bad width, or a gate that needs a constant without biases.
    """
    x, y, pairs = gate_dataset(n_inputs, gate)
    if not bias and y[0].abs().max() > 0:
        raise ValueError(f"{gate} is 1 on the all-zero input, which needs a constant: pass bias=True")
    generator = torch.Generator().manual_seed(seed)

    def param(*shape, scale):
        return torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64) * scale)

    W_gate, W_in = param(n_inputs, d_mlp, scale=n_inputs**-0.5), param(n_inputs, d_mlp, scale=n_inputs**-0.5)
    W_out = param(d_mlp, len(pairs), scale=d_mlp**-0.5)
    b_pre, b_pre_linear = (param(d_mlp, scale=1.0), param(d_mlp, scale=1.0)) if bias else (None, None)
    params = [p for p in (W_gate, W_in, W_out, b_pre, b_pre_linear) if p is not None]
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        gate_branch, linear = x @ W_gate, x @ W_in
        if bias:
            gate_branch, linear = gate_branch + b_pre, linear + b_pre_linear
        loss = ((gate_branch * linear) @ W_out - y).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def detach(p):
        return None if p is None else p.detach()

    weights = BilinearWeights(
        W_gate.detach(), W_in.detach(), W_out.detach(), b_pre=detach(b_pre), b_pre_linear=detach(b_pre_linear)
    )
    return ToyGates(weights, pairs, gate, loss.item())
