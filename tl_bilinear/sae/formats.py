"""Other SAE formats on disk: SAELens (read and write, without importing it) and the paper's releases.

- SAELens 6: ``cfg.json`` + ``sae_weights.safetensors`` with ``W_enc`` [d_in, d_sae],
  ``W_dec`` [d_sae, d_in], ``b_enc`` [d_sae], ``b_dec`` [d_in]. Its ``topk`` architecture
  applies a ReLU to the k kept values and has an encoder bias; ours keeps the values and
  has none, so the two agree exactly whenever ``b_enc = 0`` and the top k are positive
  (the usual case: a TopK SAE's kth largest pre-activation is far above zero).
- The paper's releases (hub repos such as ``tdooms/ts-medium-scope``): one folder per SAE,
  named like ``4-mlp-in-x4-k30``, holding ``config.json`` and ``model.safetensors`` with
  ``w_enc.weight`` [d_sae, d_model], ``w_dec.weight`` [d_model, d_sae] and ``b_dec``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tl_bilinear.analysis import as_dictionary
from tl_bilinear.model import atomic_directory
from tl_bilinear.sae.io import CONFIG_FILE, check_tensors, load_sae, sae_from_tensors
from tl_bilinear.sae.model import SAEConfig, TopKSAE

SAELENS_CONFIG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"
PAPER_CONFIG = "config.json"
PAPER_WEIGHTS = "model.safetensors"
_PAPER_FOLDER = re.compile(r"(?P<layer>\d+)-(?P<site>[a-z-]+?)-x(?P<expansion>\d+)-k(?P<k>\d+)")
_PAPER_SITES = {"mlp-in": "mlp_in", "mlp-out": "mlp_out"}


def save_saelens(sae: object, path: str | os.PathLike, *, k: int | None = None, hook_name: str | None = None) -> Path:
    """Write an SAE in SAELens's on-disk format (architecture ``topk``), atomically.

    Args:
        sae: our TopKSAE or anything with ``W_enc``/``W_dec`` (``b_dec``).
        path: the directory.
        k: features kept (default: ``sae.k``).
        hook_name: recorded in the metadata (default: ``sae.cfg.hook_name``).

    Returns:
        The directory; ``sae_lens.SAE.load_from_disk(path)`` reads it.

    Raises:
        ValueError: if k is unknown.
    """
    dictionary = as_dictionary(sae)
    cfg = getattr(sae, "cfg", None)
    k = k if k is not None else getattr(sae, "k", None)
    if k is None:
        raise ValueError("k is needed for a SAELens topk config: pass k=")
    hook_name = hook_name or getattr(cfg, "hook_name", None)
    config = {
        "architecture": "topk",
        "d_in": dictionary.d_in,
        "d_sae": dictionary.d_sae,
        "k": int(k),
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "rescale_acts_by_decoder_norm": False,
        "metadata": {"hook_name": hook_name} if hook_name else {},
    }
    tensors = {
        "W_enc": dictionary.W_enc.float().contiguous(),
        "W_dec": dictionary.W_dec.float().contiguous(),
        "b_enc": dictionary.W_enc.new_zeros(dictionary.d_sae).float(),
        "b_dec": dictionary.b_dec.float().contiguous(),
    }
    with atomic_directory(path) as tmp:
        save_file(tensors, str(tmp / SAELENS_WEIGHTS))
        (tmp / SAELENS_CONFIG).write_text(json.dumps(config, indent=2))
    return Path(path)


def load_saelens(path: str | os.PathLike, dtype: torch.dtype | None = None) -> TopKSAE:
    """Read a SAELens SAE directory as our TopKSAE.

    Args:
        path: a directory with ``cfg.json`` and ``sae_weights.safetensors``.
        dtype: parameter dtype (default: the saved one).

    Returns:
        The TopKSAE.

    Raises:
        FileNotFoundError: if a file is missing.
        ValueError: for an architecture or setting we cannot represent (named), or a
            missing or mis-shaped tensor (named, with both shapes).
    """
    path = Path(path)
    for name in (SAELENS_CONFIG, SAELENS_WEIGHTS):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} is missing: not a SAELens SAE directory")
    config = json.loads((path / SAELENS_CONFIG).read_text())
    architecture = config.get("architecture", "standard")
    if architecture != "topk":
        raise ValueError(
            f"SAELens architecture {architecture!r} cannot be represented as a paper-style TopK SAE; "
            "only 'topk' can (for weight-based analysis pass the SAELens SAE object itself)"
        )
    unsupported = {
        "apply_b_dec_to_input": (config.get("apply_b_dec_to_input", True), True),
        "normalize_activations": (config.get("normalize_activations", "none"), "none"),
        "reshape_activations": (config.get("reshape_activations", "none"), "none"),
        "rescale_acts_by_decoder_norm": (config.get("rescale_acts_by_decoder_norm", False), False),
    }
    for key, (value, wanted) in unsupported.items():
        if value != wanted:
            raise ValueError(f"SAELens setting {key}={value!r} cannot be represented (only {wanted!r})")
    d_in, d_sae = int(config["d_in"]), int(config["d_sae"])
    tensors = load_file(str(path / SAELENS_WEIGHTS))
    shapes = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    check_tensors(tensors, shapes, str(path / SAELENS_WEIGHTS))
    b_enc = tensors.get("b_enc")
    if b_enc is not None and b_enc.any():
        raise ValueError(
            f"{path / SAELENS_WEIGHTS} has a non-zero encoder bias b_enc, which the paper's TopK SAE "
            "cannot represent; for weight-based analysis pass the SAELens SAE object itself"
        )
    metadata = config.get("metadata") or {}
    hook_name = metadata.get("hook_name") or config.get("hook_name")
    layer = metadata.get("hook_layer", config.get("hook_layer"))
    cfg = SAEConfig(d_in, d_sae, int(config.get("k", 100)), hook_name, layer)
    return sae_from_tensors(cfg, tensors, dtype)


def _paper_folder(path: str | os.PathLike, folder: str | None, revision: str | None) -> Path:
    local = Path(path) if folder is None else Path(path) / folder
    if local.is_dir():
        return local
    if Path(path).exists():
        raise FileNotFoundError(f"{local} does not exist: name a folder of the snapshot, e.g. '4-mlp-in-x4-k30'")
    from huggingface_hub import snapshot_download

    pattern = [f"{folder}/*"] if folder else None
    try:
        snapshot = snapshot_download(str(path), allow_patterns=pattern, revision=revision)
    except Exception as error:  # offline, unknown repo: one clear error
        raise FileNotFoundError(
            f"{str(path)!r} is neither a local directory nor a reachable hub repo ({type(error).__name__}); "
            "download the snapshot and pass its directory"
        ) from error
    return Path(snapshot) / folder if folder else Path(snapshot)


def load_paper_sae(
    path: str | os.PathLike, folder: str | None = None, *, revision: str | None = None, dtype: torch.dtype | None = None
) -> TopKSAE:
    """Read one of the paper's released SAEs (a local snapshot, or the hub when online).

    Args:
        path: a local snapshot directory, an SAE folder, or a hub repo id such as
            ``"tdooms/ts-medium-scope"``.
        folder: the SAE folder inside it, e.g. ``"4-mlp-in-x4-k30"`` (None: path is the folder).
        revision: hub revision.
        dtype: parameter dtype (default: the saved one).

    Returns:
        The TopKSAE (layer and site parsed from the folder name when it has the paper's pattern).

    Raises:
        FileNotFoundError: if the folder or its files are missing, or the hub is unreachable.
        ValueError: for a missing or mis-shaped tensor (named, with both shapes).
    """
    directory = _paper_folder(path, folder, revision)
    weights_file = directory / PAPER_WEIGHTS
    if not weights_file.is_file():
        raise FileNotFoundError(f"{weights_file} is missing: not one of the paper's SAE folders")
    config_file = directory / PAPER_CONFIG
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    tensors = load_file(str(weights_file))
    if "w_enc.weight" not in tensors:
        raise ValueError(
            f"{weights_file} has no tensor 'w_enc.weight' (expected [d_sae, d_model]); it holds {sorted(tensors)}"
        )
    d_sae, d_in = tensors["w_enc.weight"].shape
    check_tensors(tensors, {"w_dec.weight": (d_in, d_sae), "b_dec": (d_in,)}, str(weights_file))
    match = _PAPER_FOLDER.fullmatch(directory.name)
    layer = int(match["layer"]) if match else config.get("layer")
    k = int(config.get("k", match["k"] if match else 30))
    site = _PAPER_SITES.get(match["site"]) if match else None
    hook_name = f"blocks.{layer}.hook_mlp_out" if site == "mlp_out" else None
    if site == "mlp_in":
        hook_name = f"blocks.{layer}.ln2.hook_normalized"
    ours = {"W_enc": tensors["w_enc.weight"].T, "W_dec": tensors["w_dec.weight"].T, "b_dec": tensors["b_dec"]}
    return sae_from_tensors(SAEConfig(d_in, d_sae, k, hook_name, layer), ours, dtype)


def open_sae(path: str | os.PathLike, dtype: torch.dtype | None = None) -> TopKSAE:
    """Load an SAE directory of any supported format: ours, SAELens, or the paper's.

    Args:
        path: the directory.
        dtype: parameter dtype (default: the saved one).

    Returns:
        The TopKSAE.

    Raises:
        FileNotFoundError: if the directory holds none of the three formats.
        ValueError: as the loader of its format.
    """
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return load_sae(path, dtype)
    if (path / SAELENS_CONFIG).is_file():
        return load_saelens(path, dtype)
    if (path / PAPER_WEIGHTS).is_file():
        return load_paper_sae(path, dtype=dtype)
    raise FileNotFoundError(
        f"{str(path)!r} holds no SAE: expected {CONFIG_FILE} (tl-bilinear), {SAELENS_CONFIG} (SAELens) "
        f"or {PAPER_WEIGHTS} (the paper's release)"
    )
