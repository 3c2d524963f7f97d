"""Writers of tiny IDX files and MNIST pickles for the data tests."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file's bytes for a uint8 array (header written out by hand, independent of the reader)."""
    header = b"\x00\x00" + bytes([code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1").tobytes()


def write_idx_folder(folder: Path, n_train=12, n_test=6, side=4, gz=True, seed=0) -> tuple[np.ndarray, ...]:
    """Write train/t10k images and labels; return (train_x, train_y, test_x, test_y) as uint8."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return tuple(arrays.values())


def write_mnist_pickle(path: Path, sizes=(10, 4, 5), seed=0) -> list:
    """A tiny ``mnist.pkl.gz`` in the classic layout: (train, valid, test) of ([n, 784] float32, [n] int64)."""
    rng = np.random.default_rng(seed)
    splits = [(rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)) for n in sizes]
    with gzip.open(path, "wb") as handle:
        pickle.dump(tuple(splits), handle)
    return splits
