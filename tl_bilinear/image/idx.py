"""The IDX file format of MNIST and Fashion-MNIST (gzipped or plain), read with validation.

An IDX file is two zero bytes, a type code, the number of dimensions, each dimension as a
big-endian uint32, then the values in C order. Images are ``idx3`` (count, rows, columns),
labels ``idx1`` (count).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

#: IDX type codes and the numpy dtypes they hold (big-endian).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is a damaged gzip file ({error}); download it again") from None


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain, detected from its first bytes).

    Args:
        path: the file.
        ndim: the number of dimensions it must have (3 for images, 1 for labels), or None.

    Returns:
        The array in its stored dtype (native byte order).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, if the magic number, type code or dimensions are wrong,
            or the data is truncated or has trailing bytes.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"{path} is not an IDX file: wrong magic number {data[:4].hex() or '(empty file)'}")
    code, dims = data[2], data[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{path} has unknown IDX type code 0x{code:02x} (known: {sorted(map(hex, IDX_TYPES))})")
    if ndim is not None and dims != ndim:
        raise ValueError(f"{path} has {dims} dimensions, expected {ndim} (is it an images/labels mix-up?)")
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError(f"{path} is truncated inside its header ({len(data)} bytes)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(f"{path} is {what}: {len(data)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path:
    """The file ``stem`` or ``stem.gz`` in ``folder`` (also the ``stem`` with '.' for the last '-').

    Raises:
        FileNotFoundError: naming the folder and the names tried.
    """
    alternate = stem[: stem.rfind("-")] + "." + stem[stem.rfind("-") + 1 :]  # t10k-images.idx3-ubyte
    names = [stem, stem + ".gz", alternate, alternate + ".gz"]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {stem}[.gz] in {folder} (tried {', '.join(names)})")


def read_idx_split(folder: str | os.PathLike, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split (``prefix`` "train" or "t10k") of an IDX folder.

    Returns:
        ``(images [n, rows, cols], labels [n])``.

    Raises:
        FileNotFoundError: if either file is missing.
        ValueError: if a file is malformed or the counts differ.
    """
    folder = Path(folder)
    images_path = find_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "they must come from the same split"
        )
    return images, labels
