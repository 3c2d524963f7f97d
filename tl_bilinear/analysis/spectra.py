"""Eigenspectra of every output feature of a dictionary: batched, cached on disk, resumable.

The top-k eigenpairs come from ``eigendecompose`` (the matrix-free Lanczos solver when few
are wanted); each feature's ``‖Q(u)‖_F²`` comes without forming Q, as ``cᵀ K c`` with
``c = W_out u`` and K the Gram matrix of the hidden units' symmetric outer products, so
the share of Q held by the top k (``topk_mass``) is exact. Chunks of features are written
to ``cache_dir`` as they finish; a rerun with the same weights and settings reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from tl_bilinear.analysis import BilinearWeights, Eigendecomposition, eigendecompose
from tl_bilinear.analysis.features import layer_weights, output_directions
from tl_bilinear.compat import HookedTransformer

CACHE_META = "spectra.json"


@dataclass(frozen=True)
class FeatureSpectra:
    """Top eigenpairs of the output features' interaction matrices, and their ranking.

    Attributes:
        features: [n] the output feature indices.
        eigendecomposition: the top-k eigenpairs of each feature's Q (row j is feature ``features[j]``).
        frobenius_sq: [n] ``‖Q‖_F² = Σ λ²`` over all eigenvalues.
        topk_mass: [n] ``Σ_top-k λ² / ‖Q‖_F²`` (0 for Q = 0).
        ranking: [n] positions into ``features``, by top-k mass descending.
    """

    features: Int[Tensor, " n"]
    eigendecomposition: Eigendecomposition
    frobenius_sq: Float[Tensor, " n"]
    topk_mass: Float[Tensor, " n"]
    ranking: Int[Tensor, " n"]


def frobenius_sq(weights: BilinearWeights, directions: Float[Tensor, "n d_out"]) -> Float[Tensor, " n"]:
    """``‖Q(u)‖_F²`` for each direction, without forming Q.

    ``Q = Σ_m c_m sym(g_m i_mᵀ)`` and ``⟨sym(a bᵀ), sym(c dᵀ)⟩ = ½[(a·c)(b·d) + (a·d)(b·c)]``.
    """
    weights = weights.augmented().to(directions.dtype)
    W_gate, W_in = weights.W_gate, weights.W_in
    K = ((W_gate.T @ W_gate) * (W_in.T @ W_in) + (W_gate.T @ W_in) * (W_in.T @ W_gate)) / 2  # [d_mlp, d_mlp]
    C = directions @ weights.W_out.T  # [n, d_mlp]
    return ((C @ K) * C).sum(-1)


def _fingerprint(weights: BilinearWeights, U: Tensor, k: int, dtype: torch.dtype) -> str:
    digest = hashlib.sha256()
    for tensor in (weights.W_gate, weights.W_in, weights.W_out, U):
        digest.update(tensor.detach().to(torch.float64).cpu().contiguous().numpy().tobytes())
    digest.update(f"{k}:{dtype}".encode())
    return digest.hexdigest()


def _open_cache(cache_dir: Path, fingerprint: str) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = cache_dir / CACHE_META
    if meta.exists():
        saved = json.loads(meta.read_text()).get("fingerprint")
        if saved != fingerprint:
            raise ValueError(
                f"{cache_dir} caches spectra of other weights or settings; use another cache_dir or delete it"
            )
    else:
        meta.write_text(json.dumps({"fingerprint": fingerprint}))


def feature_spectra(
    model: HookedTransformer | BilinearWeights,
    layer: int | None,
    out_features: object,
    k: int = 2,
    *,
    feature_idx: int | list[int] | Tensor | None = None,
    cache_dir: str | os.PathLike | None = None,
    chunk_size: int = 256,
    method: str = "auto",
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> FeatureSpectra:
    """Top-k eigenpairs of Q(u) for every output feature, ranked by top-k mass.

    Args:
        model: a bilinear HookedTransformer, or BilinearWeights (then layer is None).
        layer: the layer index.
        out_features: the dictionary after the MLP.
        k: eigenpairs per feature (largest |λ| first).
        feature_idx: the features (None: all).
        cache_dir: where finished chunks are kept; a rerun resumes from them.
        chunk_size: features per chunk (and per cache file).
        method: ``eigendecompose``'s method.
        dtype: float32 or float64.
        progress: show a progress bar over chunks.

    Returns:
        The FeatureSpectra.

    Raises:
        ValueError: if the dictionary does not match the layer, k is out of range, or
            cache_dir holds spectra of other weights or settings.
        IndexError: for a feature index out of range.
    """
    weights = layer_weights(model, layer)
    U, index = output_directions(weights, None, out_features, feature_idx)
    U = U.to(dtype)
    cache = None if cache_dir is None else Path(cache_dir)
    if cache is not None:
        _open_cache(cache, _fingerprint(weights, U, k, dtype))
    parts = []
    for start in tqdm(range(0, len(U), chunk_size), desc="spectra", disable=not progress):
        file = None if cache is None else cache / f"chunk-{start:08d}-{chunk_size}.safetensors"
        if file is not None and file.exists():
            parts.append(load_file(str(file)))
            continue
        eig = eigendecompose(weights, None, U[start : start + chunk_size], k, method=method, dtype=dtype)
        part = {"eigenvalues": eig.eigenvalues, "eigenvectors": eig.eigenvectors, "constant": eig.constant}
        if file is not None:
            tmp = file.with_suffix(".tmp")
            save_file({name: t.contiguous() for name, t in part.items()}, str(tmp))
            os.replace(tmp, file)
        parts.append(part)
    d_in = weights.augmented().d_in
    joined = {
        name: torch.cat([p[name] for p in parts]) if parts else U.new_zeros(0, *shape)
        for name, shape in (("eigenvalues", (k,)), ("eigenvectors", (k, d_in)), ("constant", ()))
    }
    eig = Eigendecomposition(
        eigenvalues=joined["eigenvalues"],
        eigenvectors=joined["eigenvectors"],
        directions=U,
        constant=joined["constant"],
        augmented=weights.has_branch_biases,
        layer=weights.layer,
    )
    total = frobenius_sq(weights, U)
    mass = torch.where(total > 0, eig.eigenvalues.square().sum(-1) / total.clamp_min(torch.finfo(dtype).tiny), 0.0)
    return FeatureSpectra(
        features=index,
        eigendecomposition=eig,
        frobenius_sq=total,
        topk_mass=mass,
        ranking=mass.argsort(descending=True, stable=True),
    )
