"""Would lower precision beat the fp32 floor? bf16 / int8 GEMMs and a bf16 Krylov route.

The speed bar of bench_eigen.py (5x the best dense route, which is about the fp32 floor
itself) is out of reach for fp32 Lanczos on flat (random-weight) spectra: ~110 matvecs
per direction of 8 d m FLOPs each are 1.7x the floor at peak. This script measures the
remaining lever, lower-precision GEMMs, on the same ts-medium-shaped random layer:

1. GEMM rates of the Lanczos shapes in fp32, bf16 (fp32 accumulate, bf16 output: torch
   on CPU has no bf16 GEMM with fp32 output) and int8 (``torch._int_mm``, exact int32);
   and each of a matvec's two GEMMs emulated to ~15 bits from two int8 limbs per operand
   (weights split once, vectors split every call), against one fp32 GEMM.
2. The bf16 Krylov route: batched Lanczos with bf16 matvecs to a bf16-level tolerance,
   then one Rayleigh-Ritz step on the top p Ritz vectors with exact fp32 matvecs; timed
   and compared, like ``eigendecompose(k=16)``, with float64 dense eigenpairs.

    python benchmarks/bench_precision.py [--n 1024 --k 16 --p 24 --reference 64]
"""

from __future__ import annotations

import argparse

import torch
from bench_eigen import timed
from machine import print_machine

import tl_bilinear
from tl_bilinear.analysis import eigendecompose
from tl_bilinear.analysis.interaction import bilinear_matvec
from tl_bilinear.analysis.lanczos import lanczos_topk


def gemm_rate(rows: int, inner: int, cols: int, dtype: torch.dtype) -> float:
    """Best of 5 GFLOP/s (GOP/s for int8) of [rows, inner] @ [inner, cols]."""
    if dtype == torch.int8:
        a, b = (torch.randint(-127, 128, s, dtype=dtype) for s in ((rows, inner), (inner, cols)))
        mm = torch._int_mm
    else:
        a, b = torch.randn(rows, inner, dtype=dtype), torch.randn(inner, cols, dtype=dtype)
        mm = torch.mm
    mm(a, b)
    return 2 * rows * inner * cols / min(timed(lambda: mm(a, b))[1] for _ in range(5)) / 1e9


def int8_limbs(A: torch.Tensor, dim: int):
    """A ≈ s (A1 + A2 / 254): two int8 limbs, scaled per slice along ``dim`` (~15 bits)."""
    s = A.abs().amax(dim, keepdim=True).clamp_min(1e-30) / 127
    A1 = torch.round(A / s)
    A2 = torch.round((A - A1 * s) * (254 / s))
    return A1.to(torch.int8), A2.to(torch.int8), s


def emulated_product(A: torch.Tensor, B_limbs: tuple) -> torch.Tensor:
    """A @ B to ~15 bits from int8 GEMMs (three limb products, lo x lo dropped), fp32 out.

    B (the weights) is split once, outside; A (the vectors) is split here, every call.
    """
    A1, A2, sa = int8_limbs(A, 1)
    B1, B2, sb = B_limbs
    high = torch._int_mm(A1, B1).float()
    cross = torch._int_mm(torch.cat([A1, A2], 1), torch.cat([B2, B1], 0)).float()
    return high.add_(cross, alpha=1 / 254).mul_(sa).mul_(sb)


def bf16_matvec(W_gate, W_in, C):
    """``bilinear_matvec`` with bf16 GEMMs: the Krylov phase's cheap operator."""
    m = W_gate.shape[1]
    W_up = torch.cat([W_in, W_gate], 1).bfloat16()
    W_down = (torch.cat([W_gate, W_in], 1) / 2).T.contiguous().bfloat16()
    C = C.bfloat16()

    def matvec(V, index):
        hidden = (V.bfloat16() @ W_up).view(len(V), 2, m) * C[index][:, None, :]
        return (hidden.view(len(V), 2 * m) @ W_down).float()

    return matvec


def bf16_krylov_rayleigh_ritz(W_gate, W_in, C, k: int, p: int):
    """Top-k by |λ|: bf16 Lanczos for p Ritz vectors, then fp32 Rayleigh-Ritz on them."""
    n, d = C.shape[0], W_gate.shape[0]
    _, X, _ = lanczos_topk(bf16_matvec(W_gate, W_in, C), n, d, p, tol=3e-3)  # bf16 noise level
    Z = bilinear_matvec(W_gate, W_in, C)(X.reshape(n * p, d), torch.arange(n).repeat_interleave(p)).view(n, p, d)
    values, Y = torch.linalg.eigh(((X @ Z.mT) + (Z @ X.mT)) / 2)  # X: orthonormal (fp32) Ritz vectors
    order = values.abs().argsort(1, descending=True)[:, :k]
    return values.gather(1, order), (Y.gather(2, order[:, None, :].expand(-1, p, -1)).mT @ X)


def errors(values, vectors, ref_values, ref_vectors):
    """Max relative eigenvalue error, and min |cos| where the eigenvalue is separated
    (relative gap > 1e-3 to its neighbours), against float64 eigenpairs [n, k + 1]."""
    n, k = len(ref_values), values.shape[1]
    rel = ((values[:n].double() - ref_values[:, :k]).abs() / ref_values[:, :k].abs()).max().item()
    magnitude = ref_values.abs()
    gap = torch.minimum(
        magnitude[:, :k] - magnitude[:, 1:],
        torch.nn.functional.pad(magnitude[:, : k - 1] - magnitude[:, 1:k], (1, 0), value=float("inf")),
    )
    separated = gap > 1e-3 * magnitude[:, :k]
    cos = (vectors[:n].double() * ref_vectors[:, :k]).sum(-1).abs()[separated].min().item()
    return rel, cos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--p", type=int, default=24, help="Ritz vectors kept for the fp32 Rayleigh-Ritz step")
    parser.add_argument("--reference", type=int, default=64, help="directions checked against float64 eigh")
    args = parser.parse_args()
    print_machine()
    torch.set_grad_enabled(False)
    n, k, d, m = args.n, args.k, 512, 2048
    print("GEMM rates of the Lanczos shapes (GFLOP/s; int8: GOP/s):")
    for shape in ((n, d, 2 * m), (n, 2 * m, d)):
        rates = {str(t).split(".")[1]: gemm_rate(*shape, t) for t in (torch.float32, torch.bfloat16, torch.int8)}
        print(
            f"  {shape}: "
            + ", ".join(f"{t} {r:.0f}" for t, r in rates.items())
            + f"  (bf16 {rates['bfloat16'] / rates['float32']:.1f}x, int8 {rates['int8'] / rates['float32']:.1f}x fp32)"
        )

    for inner, cols in ((d, 2 * m), (2 * m, d)):  # the two GEMMs of a matvec
        A, B = torch.randn(n, inner), torch.randn(inner, cols)
        B_limbs = int8_limbs(B, 0)
        emulated = min(timed(lambda A=A, B_limbs=B_limbs: emulated_product(A, B_limbs))[1] for _ in range(5))
        fp32 = min(timed(lambda A=A, B=B: A @ B)[1] for _ in range(5))
        exact = A.double() @ B.double()
        err = ((emulated_product(A, B_limbs) - exact).norm() / exact.norm()).item()
        print(
            f"  {(n, inner, cols)} from int8 limbs (vector splitting included): {emulated * 1e3:.1f} ms vs fp32 "
            f"{fp32 * 1e3:.1f} ms ({fp32 / emulated:.1f}x), relative error {err:.1e}"
        )

    model = tl_bilinear.make_model("ts-medium", seed=0, n_layers=1, d_vocab=max(4096, n))
    mlp = model.blocks[0].mlp
    U = model.W_U[:, :n].T.contiguous()
    W_gate, W_in, C = mlp.W_gate.detach(), mlp.W_in.detach(), U @ mlp.W_out.detach().T
    ref = eigendecompose(model, 0, U[: args.reference], k=k + 1, method="dense", dtype=torch.float64)
    ref_values, ref_vectors = ref.eigenvalues, ref.eigenvectors

    ours, ours_s = timed(lambda: eigendecompose(model, 0, U, k=k))
    (values, vectors), mixed_s = timed(lambda: bf16_krylov_rayleigh_ritz(W_gate, W_in, C, k, args.p))
    for name, seconds, (rel, cos) in (
        ("ours (fp32 Lanczos)", ours_s, errors(ours.eigenvalues, ours.eigenvectors, ref_values, ref_vectors)),
        (f"bf16 Krylov + fp32 Rayleigh-Ritz (p={args.p})", mixed_s, errors(values, vectors, ref_values, ref_vectors)),
    ):
        print(f"{name:42s} {seconds:6.2f} s   max rel eigenvalue error {rel:.1e} (target <= 1e-5), min |cos| {cos:.6f}")


if __name__ == "__main__":
    main()
