"""effective_rank and topk_mass are scale-free at any magnitude and precision (sweep regression).

On the trained demo model, ``eigendecompose`` of ``1e-20 * W_U[:, ' happy']`` gave an
effective rank of 1.98 instead of 160.0 and ``1e20 *`` gave NaN: the squares under- and
overflowed in float32.
"""

import pytest
import torch

from tl_bilinear.analysis import effective_rank, eigendecompose, topk_mass


@pytest.mark.parametrize(
    "dtype, scale",
    [
        (torch.float32, 1e-22),
        (torch.float32, 1e-20),
        (torch.float32, 1e20),
        (torch.float32, 1e30),
        (torch.float16, 1e-3),
        (torch.float16, 1e2),
        (torch.bfloat16, 1e-30),
        (torch.float64, 1e-160),
    ],
)
def test_metrics_do_not_depend_on_scale(dtype, scale):
    spectrum = torch.tensor([[3.0, -2.0, 1.0, 0.5, -0.25, 0.0], [1.0, 1.0, -1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    values = (spectrum * scale).to(dtype)
    expected_rank = spectrum.abs().sum(-1) ** 2 / spectrum.square().sum(-1)
    expected_mass = spectrum[:, :2].square().sum(-1) / spectrum.square().sum(-1)
    rtol = 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-6
    torch.testing.assert_close(effective_rank(values).double(), expected_rank, rtol=rtol, atol=0)
    torch.testing.assert_close(topk_mass(values, 2).double(), expected_mass, rtol=rtol, atol=0)


def test_a_wide_flat_float16_spectrum_does_not_overflow():
    values = torch.ones(3, 256, dtype=torch.float16)  # (Σ|λ|)² = 65536 > float16 max
    torch.testing.assert_close(effective_rank(values).double(), torch.full((3,), 256.0, dtype=torch.float64))


def test_zero_and_empty_spectra():
    assert effective_rank(torch.zeros(2, 5)).tolist() == [0.0, 0.0]
    assert topk_mass(torch.zeros(2, 5), 3).tolist() == [0.0, 0.0]
    assert effective_rank(torch.zeros(2, 0)).tolist() == [0.0, 0.0]
    assert topk_mass(torch.zeros(2, 0), 1).tolist() == [0.0, 0.0]


def test_a_tiny_direction_of_a_model_keeps_its_effective_rank(tiny_model):
    u = tiny_model.W_U[:, 3].detach().float()
    reference = effective_rank(eigendecompose(tiny_model, 1, u, dtype=torch.float64).eigenvalues)
    for scale in (1e-20, 1e18):
        eig = eigendecompose(tiny_model, 1, u * scale, dtype=torch.float32)
        torch.testing.assert_close(effective_rank(eig.eigenvalues).double(), reference, rtol=1e-4, atol=0)
