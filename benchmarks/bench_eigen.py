"""Top-k eigenpairs of many interaction matrices: the paper's way, the best dense way, ours.

Times the top-k eigenpairs of n unembedding directions of one ts-medium-shaped bilinear
layer (random weights from ``tl_bilinear.make_model``) three ways:

1. paper: the paper code's four-operand ``torch.einsum("mi,mj,om,no->nij", ...)``,
   symmetrised, then a full batched ``torch.linalg.eigh`` (the same eigh as route 2, so
   its time is reused rather than run twice);
2. best dense: the fastest Q build we have (``interaction_matrices(..., build="packed")``:
   the layer's packed interaction tensor once, then one GEMM over the packed upper
   triangles and a gather), then a full batched ``torch.linalg.eigh``;
3. ours: ``tl_bilinear.analysis.eigendecompose(model, 0, U, k=k)`` with method "auto"
   (today the matrix-free batched Lanczos with a dense fallback for unconverged
   directions: it measured fastest);

It prints both speed-ups, ours' accuracy against the dense route, the measured fp32 GEMM
peak, the matmul-bound floor (the FLOPs of building the upper triangles of all the Q's,
``n d (d+1)/2 m 2``, over that peak) and ours / floor. A synthetic low-effective-rank
layer (closer to trained weights: a few dominant eigenvalues) is timed too.

    python benchmarks/bench_eigen.py [--n 1024 --k 16 --d-model 512 --d-mlp 2048] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from machine import print_machine

import tl_bilinear
from tl_bilinear.analysis import eigen as eigen_module
from tl_bilinear.analysis import eigendecompose, interaction_matrices

SEPARATION = 1e-3  # an eigenvalue is "separated" if its relative gap to every other one exceeds this


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def gemm_peak(rows: int, inner: int, cols: int, repeats: int = 5) -> float:
    """Best fp32 GEMM rate (GFLOP/s) of [rows, inner] @ [inner, cols]."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        best = min(best, timed(lambda: a @ b)[1])
    return 2 * rows * inner * cols / best / 1e9


def dense_eigh(Q: torch.Tensor, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    values, vectors = [], []
    for part in Q.split(chunk):
        v, V = torch.linalg.eigh(part)
        values.append(v)
        vectors.append(V)
    return torch.cat(values), torch.cat(vectors)


def top_by_magnitude(values: torch.Tensor, vectors: torch.Tensor, k: int):
    order = values.abs().argsort(dim=1, descending=True)[:, :k]
    return values.gather(1, order), vectors.gather(2, order[:, None, :].expand(-1, vectors.shape[1], -1)).mT


def accuracy(all_values, all_vectors, values, vectors, k) -> dict:
    """Ours against the dense route: eigenvalue error, eigenvector / eigenspace alignment.

    Eigenvalues of (almost) equal |λ| and opposite signs may swap places in a sort by
    |λ|, so each of ours is matched to the nearest dense eigenvalue (signed), and the
    sorted magnitudes are compared separately (that the top-k set is the right one).
    """
    all_values, all_vectors, values = all_values.double(), all_vectors.double(), values.double()
    ref_values, _ = top_by_magnitude(all_values, all_vectors, k)
    distance = (all_values[:, None, :] - values[:, :, None]).abs()  # [n, k, d]
    matched = (distance.amin(2) / values.abs()).max().item()
    magnitudes = ((values.abs() - ref_values.abs()).abs() / ref_values.abs()).max().item()
    same = distance <= SEPARATION * values.abs()[:, :, None]  # the dense eigenspace of each of ours
    separated = same.sum(2) == 1
    # |projection of our vector onto that eigenspace|: |cos| if separated
    proj = torch.einsum("ndj,nkd->nkj", all_vectors, vectors.double())
    alignment = (proj.square() * same).sum(2).sqrt()
    return dict(
        eigenvalue_max_rel_error=max(matched, magnitudes),
        separated_fraction=separated.float().mean().item(),
        eigenvector_min_abs_cos_separated=alignment[separated].min().item() if separated.any() else None,
        eigenspace_min_alignment_clustered=alignment[~separated].min().item() if (~separated).any() else None,
    )


class Counter:
    """Counts matvec rows and Lanczos outcomes inside ``eigendecompose`` (benchmark-only patch)."""

    def __init__(self):
        self.rows, self.converged, self.total = 0, 0, 0
        self._matvec, self._topk = eigen_module.bilinear_matvec, eigen_module.lanczos_topk

    def __enter__(self):
        def bilinear_matvec(*args):
            inner = self._matvec(*args)

            def matvec(V, index):
                self.rows += len(V)
                return inner(V, index)

            return matvec

        def lanczos_topk(*args, **kwargs):
            out = self._topk(*args, **kwargs)
            self.converged, self.total = int(out[2].sum()), len(out[2])
            return out

        eigen_module.bilinear_matvec, eigen_module.lanczos_topk = bilinear_matvec, lanczos_topk
        return self

    def __exit__(self, *exc):
        eigen_module.bilinear_matvec, eigen_module.lanczos_topk = self._matvec, self._topk


def low_rank_(model, seed: int = 1) -> None:
    """Overwrite layer 0's MLP with power-law singular values (a few dominant directions)."""
    g = torch.Generator().manual_seed(seed)
    mlp = model.blocks[0].mlp
    with torch.no_grad():
        for W in (mlp.W_gate, mlp.W_in, mlp.W_out):
            rows, cols = W.shape
            r = min(rows, cols)
            left = torch.linalg.qr(torch.randn(rows, r, generator=g)).Q
            right = torch.linalg.qr(torch.randn(cols, r, generator=g)).Q
            sigma = 1.0 / torch.arange(1, r + 1, dtype=torch.float32) ** 1.5
            W.copy_(left * sigma @ right.T * (W.norm() / sigma.norm()))


def run_ours(model, U, k):
    with Counter() as counter:
        eig, seconds = timed(lambda: eigendecompose(model, 0, U, k=k))
    return eig, seconds, counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024, help="unembedding directions")
    parser.add_argument("--k", type=int, default=16, help="eigenpairs per direction")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--d-mlp", type=int, default=2048)
    parser.add_argument(
        "--low-rank-dense",
        type=int,
        default=128,
        help="directions of the low-rank variant checked (and timed) densely; 0 skips the variant",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = print_machine()
    n, k, d, m = args.n, args.k, args.d_model, args.d_mlp

    torch.set_grad_enabled(False)
    model = tl_bilinear.make_model(
        "ts-medium", seed=args.seed, n_layers=1, d_model=d, d_mlp=m, n_heads=max(1, d // 64), d_vocab=max(4096, n)
    )
    mlp = model.blocks[0].mlp
    U = model.W_U[:, :n].T.contiguous()  # [n, d_model]: unembedding directions
    peak = max(gemm_peak(n, d, 2 * m), gemm_peak(2048, 2048, 2048, 3))
    floor_flops = n * d * (d + 1) / 2 * m * 2
    floor = floor_flops / (peak * 1e9)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; n={n} k={k} d_model={d} d_mlp={m}; "
        f"load average {os.getloadavg()[0]:.1f} (other processes perturb every timing)"
    )
    print(f"fp32 GEMM peak {peak:.0f} GFLOP/s; floor = {floor_flops / 1e9:.0f} GFLOP / peak = {floor:.2f} s")

    # (1) the paper code's einsum (its eigh is the same call as route 2's: time reused)
    paper_Q, paper_build = timed(lambda: torch.einsum("mi,mj,om,no->nij", mlp.W_gate.T, mlp.W_in.T, mlp.W_out.T, U))
    paper_Q = (paper_Q + paper_Q.mT) / 2
    # (2) the best dense route: the packed build (the fastest we have) + batched eigh
    Q, dense_build = timed(lambda: interaction_matrices(model, 0, U, build="packed"))
    assert torch.allclose(paper_Q, Q, atol=1e-4 * Q.abs().max()), "paper einsum and interaction_matrices disagree"
    del paper_Q
    dense_eigh(Q[:8])  # warm-up (LAPACK workspaces, thread pool)
    (all_values, all_vectors), dense_eigh_s = timed(lambda: dense_eigh(Q))
    del Q
    dense = dense_build + dense_eigh_s
    paper = paper_build + dense_eigh_s
    # (3) ours
    eig, ours, counter = run_ours(model, U, k)
    acc = accuracy(all_values, all_vectors, eig.eigenvalues, eig.eigenvectors, k)
    ours_flops = counter.rows * 8 * d * m  # two [rows, d] x [d, 2m]-shaped GEMMs per matvec row
    packed_flops = d * (d + 1) * d * (m + n)  # T once (d(d+1)/2 m d_out 2) + U Tᵀ (n d(d+1)/2 d_out 2)
    del all_vectors

    results = dict(
        machine=machine,
        n=n,
        k=k,
        d_model=d,
        d_mlp=m,
        threads=torch.get_num_threads(),
        peak_gflops=peak,
        floor_s=floor,
        paper_s=paper,
        paper_einsum_s=paper_build,
        dense_s=dense,
        dense_build_s=dense_build,
        dense_eigh_s=dense_eigh_s,
        ours_s=ours,
        paper_over_ours=paper / ours,
        dense_over_ours=dense / ours,
        ours_over_floor=ours / floor,
        ours_matvec_gflop=ours_flops / 1e9,
        ours_gflops=ours_flops / ours / 1e9,
        dense_build_gflops=packed_flops / dense_build / 1e9,
        dense_build_over_floor=dense_build / floor,
        mean_lanczos_steps=counter.rows / n,
        lanczos_converged=counter.converged,
        **acc,
    )
    print(f"(1) paper einsum + eigh : {paper:7.2f} s  (einsum {paper_build:.2f} s + eigh {dense_eigh_s:.2f} s)")
    print(
        f"(2) packed build + eigh : {dense:7.2f} s  (build {dense_build:.2f} s = {dense_build / floor:.2f} x floor, "
        f"{packed_flops / 1e9:.0f} GFLOP at {results['dense_build_gflops']:.0f} GFLOP/s + eigh {dense_eigh_s:.2f} s)"
    )
    print(
        f"(3) ours (auto: Lanczos): {ours:7.2f} s  ({results['mean_lanczos_steps']:.0f} matvecs per direction, "
        f"{ours_flops / 1e9:.0f} GFLOP at {results['ours_gflops']:.0f} GFLOP/s; "
        f"{counter.converged}/{counter.total} converged, the rest went dense)"
    )
    print(
        f"speed-up: {paper / ours:.1f}x over the paper code, {dense / ours:.1f}x over the best dense route "
        f"(target >= 5x); ours / floor = {ours / floor:.2f} (target <= 2)"
    )
    print(
        f"accuracy: top-{k} eigenvalue max rel error {acc['eigenvalue_max_rel_error']:.1e} (target <= 1e-5); "
        f"min |cos| over separated eigenvalues (rel gap > {SEPARATION:g}, "
        f"{100 * acc['separated_fraction']:.1f}%) {acc['eigenvector_min_abs_cos_separated']}; "
        f"min eigenspace alignment otherwise {acc['eigenspace_min_alignment_clustered']}"
    )

    if args.low_rank_dense:
        low_rank_(model)
        eig, low_ours, counter = run_ours(model, U, k)
        sub = min(args.low_rank_dense, n)
        Q, build = timed(lambda: interaction_matrices(model, 0, U, build="packed"))  # all n: T amortised
        Q = Q[:sub]
        (all_values, all_vectors), eigh_s = timed(lambda: dense_eigh(Q))
        eigh_s = min(eigh_s, timed(lambda: dense_eigh(Q))[1])  # best of two: 2-thread LAPACK stalls under load
        low_dense = build + eigh_s * n / sub
        # the reference in float64: float32 rounding of Q alone moves the small eigenvalues of a
        # low-rank Q by ~1e-5 of their size, as much as the target
        ref_values, ref_vectors = dense_eigh(interaction_matrices(model, 0, U[:sub], dtype=torch.float64))
        low_acc = accuracy(ref_values, ref_vectors, eig.eigenvalues[:sub], eig.eigenvectors[:sub], k)
        spectrum = ref_values.abs()
        eff_rank = ((spectrum.sum(1) ** 2) / spectrum.square().sum(1)).mean().item()
        results["low_rank"] = dict(
            ours_s=low_ours,
            dense_s_scaled=low_dense,
            dense_directions_timed=sub,
            dense_over_ours=low_dense / low_ours,
            ours_over_floor=low_ours / floor,
            mean_lanczos_steps=counter.rows / n,
            effective_rank=eff_rank,
            lanczos_converged=counter.converged,
            **low_acc,
        )
        print(
            f"low-rank variant (mean effective rank {eff_rank:.0f}): ours {low_ours:.2f} s "
            f"({counter.rows / n:.0f} matvecs per direction, {counter.converged}/{counter.total} converged); "
            f"dense {low_dense:.2f} s (packed build of all {n}, eigh timed on {sub} and scaled x{n / sub:g}); "
            f"{low_dense / low_ours:.1f}x; ours / floor = {low_ours / floor:.2f}; "
            f"max rel error {low_acc['eigenvalue_max_rel_error']:.1e} (against float64), "
            f"min |cos| separated {low_acc['eigenvector_min_abs_cos_separated']}"
        )
    results["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {results['load_average_end']:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
