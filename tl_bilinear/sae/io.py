"""SAE directories: ``sae_config.json`` + ``sae.safetensors`` (+ trainer state), written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tl_bilinear.model import atomic_directory
from tl_bilinear.sae.model import SAEConfig, TopKSAE

SAE_FORMAT = "tl-bilinear-sae"
CONFIG_FILE = "sae_config.json"
WEIGHTS_FILE = "sae.safetensors"


def check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], where: str) -> None:
    """Raise a clear error unless every expected tensor is present with its shape.

    Args:
        tensors: the loaded tensors.
        expected: name -> shape.
        where: the file, for the message.

    Raises:
        ValueError: naming the missing or mis-shaped tensor, its shape and the expected one.
    """
    for name, shape in expected.items():
        if name not in tensors:
            raise ValueError(f"{where} has no tensor {name!r} (expected shape {shape}); it holds {sorted(tensors)}")
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"{where}: tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {shape}")


def write_sae_files(directory: Path, sae: TopKSAE, extra: dict[str, Any] | None = None) -> None:
    """Write the weights and the config (last: a directory with a config is complete)."""
    tensors = {name: getattr(sae, name).detach().contiguous().cpu() for name in ("W_enc", "W_dec", "b_dec")}
    save_file(tensors, str(directory / WEIGHTS_FILE))
    meta = {"format": SAE_FORMAT, "config": sae.cfg.to_dict(), **(extra or {})}
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def save_sae(sae: TopKSAE, path: str | os.PathLike, **extra: Any) -> Path:
    """Save an SAE as a directory, atomically (a kill leaves the previous one intact).

    Args:
        sae: the TopKSAE.
        path: the directory to create or replace.
        **extra: more JSON fields for the config file.

    Returns:
        The directory.
    """
    with atomic_directory(path) as tmp:
        write_sae_files(tmp, sae, extra)
    return Path(path)


def read_sae_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed config file of an SAE directory written by ``save_sae``.

    Raises:
        FileNotFoundError: if the directory or its config is missing.
        ValueError: if the config is not ours.
    """
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"no SAE at {str(path)!r}: {CONFIG_FILE} is missing (write one with save_sae or `tl-bilinear sae train`)"
        )
    meta = json.loads(file.read_text())
    if meta.get("format") != SAE_FORMAT or "config" not in meta:
        raise ValueError(f"{file} is not a {SAE_FORMAT} config")
    return meta


def load_sae(path: str | os.PathLike, dtype: torch.dtype | None = None) -> TopKSAE:
    """Load an SAE directory written by ``save_sae`` (or ``tl-bilinear sae train``).

    Args:
        path: the directory.
        dtype: parameter dtype (default: the saved one).

    Returns:
        The TopKSAE, in eval mode.

    Raises:
        FileNotFoundError: if there is no SAE there.
        ValueError: if a tensor is missing or mis-shaped (named, with both shapes).
    """
    meta = read_sae_meta(path)
    cfg = SAEConfig.from_dict(meta["config"])
    file = Path(path) / WEIGHTS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing")
    tensors = load_file(str(file))
    check_tensors(
        tensors, {"W_enc": (cfg.d_in, cfg.d_sae), "W_dec": (cfg.d_sae, cfg.d_in), "b_dec": (cfg.d_in,)}, str(file)
    )
    return sae_from_tensors(cfg, tensors, dtype)


def sae_from_tensors(cfg: SAEConfig, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> TopKSAE:
    """A TopKSAE holding the given ``W_enc``, ``W_dec`` and ``b_dec`` (already shape-checked)."""
    dtype = dtype or tensors["W_enc"].dtype
    sae = TopKSAE(cfg, dtype=dtype)
    with torch.no_grad():
        for name in ("W_enc", "W_dec", "b_dec"):
            getattr(sae, name).copy_(tensors[name].to(dtype))
    return sae.eval()
