"""Spectrum metrics and the HOSVD against references; the metrics are scale-free.

On the trained demo model, ``eigendecompose`` of ``1e-20 * W_U[:, ' happy']`` is a case in point:
in float32 the squares of its eigenvalues under- and overflow unless the metrics rescale first.
"""

import pytest
import torch

from tests.helpers.reference import random_directions
from tl_bilinear.analysis import (
    effective_rank,
    eigendecompose,
    hosvd,
    interaction_matrices,
    topk_mass,
)


def test_effective_rank_and_topk_mass():
    values = torch.tensor([[2.0, -2.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [4.0, -3.0, 0.0, 0.0]])
    torch.testing.assert_close(effective_rank(values), torch.tensor([2.0, 1.0, 0.0, 49 / 25]))
    torch.testing.assert_close(topk_mass(values, 1), torch.tensor([0.5, 1.0, 0.0, 16 / 25]))
    torch.testing.assert_close(topk_mass(values, 4), torch.tensor([1.0, 1.0, 0.0, 1.0]))


def test_hosvd_matches_svd_of_the_flattened_tensor(tiny_model):
    U = random_directions(tiny_model, 9)
    flat = interaction_matrices(tiny_model, 1, U).reshape(9, -1)
    ref_left, ref_s, ref_right = torch.linalg.svd(flat, full_matrices=False)
    result = hosvd(tiny_model, 1, U)
    torch.testing.assert_close(result.singular_values, ref_s)
    components = result.component_matrices(tiny_model, 1).reshape(len(ref_s), -1)
    alignment = (components * ref_right).sum(-1).abs()  # singular vectors up to sign
    torch.testing.assert_close(alignment, torch.ones_like(alignment))
    assert hosvd(tiny_model, 1, U, k=3).singular_values.shape == (3,)


def test_hosvd_refuses_a_negative_k(tiny_model):
    # a negative k would slice keep[-1:] and silently drop the smallest component
    U = tiny_model.W_U[:, :3].T
    assert len(hosvd(tiny_model, 0, U).singular_values) == 3
    with pytest.raises(ValueError, match="k=-1 must be None"):
        hosvd(tiny_model, 0, U, k=-1)


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
