"""IDX folders (gz and plain), the mnist.pkl.gz layout, the 8x8 digits, and every bad-input case."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from tests.image.helpers import idx_bytes, write_idx_folder, write_mnist_pickle
from tl_bilinear.image import DATA_FORMS, load_data, load_digits, load_idx_folder, read_idx


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trips(tmp_path, gz):
    train_x, train_y, test_x, test_y = write_idx_folder(tmp_path, gz=gz)
    data = load_data(str(tmp_path))
    np.testing.assert_array_equal(data.train_images.numpy(), train_x / np.float32(255))
    np.testing.assert_array_equal(data.train_labels.numpy(), train_y)
    np.testing.assert_array_equal(data.test_images.numpy(), test_x / np.float32(255))
    np.testing.assert_array_equal(data.test_labels.numpy(), test_y)
    assert data.image_shape == (4, 4) and data.train_images.dtype == torch.float32


def test_fashion_prefix_gives_fashion_class_names(tmp_path):
    write_idx_folder(tmp_path)
    data = load_data(f"fashion={tmp_path}")
    assert data.classes[0] == "T-shirt/top" and data.n_classes == 10


def test_mnist_pickle_joins_train_and_validation(tmp_path):
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = write_mnist_pickle(tmp_path / "mnist.pkl.gz")
    for spec in (str(tmp_path / "mnist.pkl.gz"), f"mnist={tmp_path}", str(tmp_path)):
        data = load_data(spec)
        assert data.train_images.shape == (14, 28, 28) and data.test_images.shape == (5, 28, 28)
        np.testing.assert_array_equal(data.train_images.flatten(1).numpy(), np.concatenate([train_x, valid_x]))
        np.testing.assert_array_equal(data.train_labels.numpy(), np.concatenate([train_y, valid_y]))
        np.testing.assert_array_equal(data.test_labels.numpy(), test_y)


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(((print, 1), 2, 3), handle)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_data(str(path))


def test_pickle_of_wrong_layout(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump((1, 2), handle)
    with pytest.raises(ValueError, match="not the mnist.pkl.gz layout"):
        load_data(str(path))


def test_digits_are_offline_and_in_unit_range():
    data = load_digits()
    assert data.image_shape == (8, 8) and data.n_classes == 10
    assert len(data.train_images) + len(data.test_images) == 1797
    assert 0 <= data.train_images.min() and data.train_images.max() == 1
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)


def _corrupt(tmp_path, name, data):
    write_idx_folder(tmp_path, gz=False)
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


GOOD_IMAGES = np.zeros((12, 4, 4), dtype=np.uint8)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x02\x08\x03" + idx_bytes(GOOD_IMAGES)[4:], "wrong magic number 01020803"),
        (b"", r"wrong magic number \(empty file\)"),
        (idx_bytes(GOOD_IMAGES, code=0x07), "unknown IDX type code 0x07"),
        (idx_bytes(GOOD_IMAGES)[:-5], "is truncated: .* bytes, expected"),
        (idx_bytes(GOOD_IMAGES)[:9], "truncated inside its header"),
        (idx_bytes(GOOD_IMAGES) + b"\x00", "longer than its header says"),
        (idx_bytes(np.zeros(12, dtype=np.uint8)), "has 1 dimensions, expected 3"),
        (gzip.compress(idx_bytes(GOOD_IMAGES))[:-10], "damaged gzip file"),
    ],
    ids=["magic", "empty", "type-code", "truncated", "short-header", "trailing", "ndim", "gzip"],
)
def test_malformed_images_file_names_file_and_problem(tmp_path, data, message):
    path = _corrupt(tmp_path, "train-images-idx3-ubyte", data)
    with pytest.raises(ValueError, match=message) as error:
        load_idx_folder(tmp_path)
    assert str(path) in str(error.value)


def test_label_and_image_counts_must_match(tmp_path):
    _corrupt(tmp_path, "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(ValueError, match="holds 6 images but .*t10k-labels-idx1-ubyte holds 5 labels"):
        load_idx_folder(tmp_path)


def test_labels_outside_the_classes(tmp_path):
    _corrupt(tmp_path, "train-labels-idx1-ubyte", idx_bytes(np.full(12, 11, dtype=np.uint8)))
    with pytest.raises(ValueError, match="labels span 11..11, outside 0..9"):
        load_idx_folder(tmp_path)


def test_missing_files_and_folders(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte.*in"):
        load_data(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_data(f"mnist={tmp_path / 'nowhere'}")
    with pytest.raises(FileNotFoundError, match="IDX file .* does not exist"):
        read_idx(tmp_path / "nowhere")


@pytest.mark.parametrize("spec", ["mnsit", "", "cifar=foo"])
def test_unknown_data_spec_lists_the_forms(spec):
    with pytest.raises(ValueError, match="digits.*fashion=DIR.*mnist=DIR") as error:
        load_data(spec)
    assert all(form in str(error.value) for form in DATA_FORMS)


def test_hub_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="hub:nobody/nothing could not be loaded .*offline, use digits"):
        load_data("hub:nobody/nothing")
