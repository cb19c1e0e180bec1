"""load_dataset on the real bundled MNIST and scikit-learn digits; lookup order
and errors with small synthetic IDX files in tmp_path; train_val_split."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from scratch_ae.data import (DATASETS, DataError, colored_mnist, data_search_paths, dataset_location,
                             find_dataset_files, load_dataset, train_val_split, write_idx)
from scratch_ae.data.colored import PALETTE

MNIST = Path(__file__).resolve().parents[1] / "scratch_ae" / "data" / "mnist"
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Nothing outside tmp_path: empty cache, no $SCRATCH_AE_DATA, no network mirrors."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCH_AE_DATA", raising=False)
    monkeypatch.setenv("SCRATCH_AE_MIRROR", "http://127.0.0.1:9/")  # discard port: refused at once


def fake_split(folder, split, n, fill, gz=True):
    """Write a tiny (n, 28, 28) IDX split whose pixels all equal `fill`; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{stem}-images-idx3-ubyte{suffix}", np.full((n, 28, 28), fill, np.uint8))
    write_idx(folder / f"{stem}-labels-idx1-ubyte{suffix}", np.arange(n, dtype=np.uint8) % 10)
    return folder


def test_mnist_test_split_is_real_mnist():
    ds = load_dataset("mnist", "test")
    assert ds.images.shape == (10000, 784) and ds.images.dtype == np.float32
    assert ds.images.flags.c_contiguous and ds.labels.dtype == np.int64
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    assert ds.image_shape == (28, 28) and (ds.name, ds.split) == ("mnist", "test") and len(ds) == 10000
    assert np.array_equal(np.bincount(ds.labels), TEST_COUNTS)


def test_mnist_train_split_shapes_and_counts():
    ds = load_dataset("mnist")
    assert ds.images.shape == (60000, 784) and ds.split == "train"
    assert np.array_equal(np.bincount(ds.labels), TRAIN_COUNTS)


def test_each_load_returns_fresh_arrays():
    first = load_dataset("mnist", "test", limit=10)
    first.images[:] = -1.0
    first.labels[:] = 99
    again = load_dataset("mnist", "test", limit=10)
    assert again.images.min() >= 0.0 and again.labels.max() <= 9


def test_limit_keeps_the_first_examples():
    full, head = load_dataset("mnist", "test"), load_dataset("mnist", "test", limit=7)
    assert head.images.shape == (7, 784)
    assert np.array_equal(head.images, full.images[:7]) and np.array_equal(head.labels, full.labels[:7])


def test_digits_split_and_range():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape == (1500, 64) and test.images.shape == (297, 64)
    assert train.image_shape == (8, 8) and train.images.dtype == np.float32
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    assert set(np.unique(test.labels)) == set(range(10))


def test_colored_mnist_dataset_is_tinted_by_class():
    grey = load_dataset("mnist", "test", limit=200)
    ds = load_dataset("colored-mnist", "test", limit=200)
    assert ds.images.shape == (200, 3 * 784) and ds.image_shape == (3, 28, 28)
    assert ds.images.dtype == np.float32 and ds.images.flags.c_contiguous
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    expected = grey.images[:, None, :] * PALETTE[grey.labels][:, :, None]
    assert np.allclose(ds.images.reshape(200, 3, 784), expected)


def test_palette_is_ten_distinct_saturated_colours():
    assert PALETTE.shape == (10, 3) and PALETTE.min() == 0.0
    assert np.allclose(PALETTE.max(axis=1), 1.0)
    distances = np.linalg.norm(PALETTE[:, None] - PALETTE[None], axis=-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 0.3


def test_colored_mnist_random_mode_is_seeded():
    grey = load_dataset("mnist", "test", limit=50)
    a = colored_mnist(grey.images, grey.labels, mode="random", seed=3)
    b = colored_mnist(grey.images, grey.labels, mode="random", seed=3)
    c = colored_mnist(grey.images, grey.labels, mode="random", seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (50, 2352) and 0.0 <= a.min() and a.max() <= 1.0
    with pytest.raises(DataError, match="unknown mode 'hue'; expected one of: class, random"):
        colored_mnist(grey.images, grey.labels, mode="hue")
    with pytest.raises(DataError, match=r"labels must have shape \(50,\)"):
        colored_mnist(grey.images, grey.labels[:3])


def test_unknown_name_split_and_limit():
    with pytest.raises(DataError, match="unknown dataset 'foo'; expected one of: mnist, fashion-mnist, "
                                        "digits, colored-mnist"):
        load_dataset("foo")
    with pytest.raises(DataError, match="unknown split 'val' of dataset 'mnist'; expected one of: train, test"):
        load_dataset("mnist", "val")
    with pytest.raises(DataError, match="limit must be a positive integer"):
        load_dataset("mnist", "test", limit=0)
    assert DATASETS == ("mnist", "fashion-mnist", "digits", "colored-mnist")


def test_bundled_mnist_comes_first(tmp_path):
    fake_split(tmp_path / "mine" / "mnist", "test", 5, 255)
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "mine")
    assert ds.images.shape == (10000, 784)
    assert find_dataset_files("mnist")["t10k-images-idx3-ubyte"] == MNIST / "t10k-images-idx3-ubyte.gz"
    assert dataset_location("mnist") == str(MNIST)


def test_lookup_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    fake_split(tmp_path / "cache" / "scratch-ae" / "fashion-mnist", "test", 3, 30)
    assert load_dataset("fashion-mnist", "test", download=False).images.max() == pytest.approx(30 / 255)
    fake_split(tmp_path / "env" / "fashion-mnist", "test", 3, 60, gz=False)   # un-gzipped names
    monkeypatch.setenv("SCRATCH_AE_DATA", str(tmp_path / "env"))
    assert load_dataset("fashion-mnist", "test", download=False).images.max() == pytest.approx(60 / 255)
    fake_split(tmp_path / "arg" / "fashion-mnist", "test", 3, 90)
    ds = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "arg", download=False)
    assert ds.images.max() == pytest.approx(90 / 255) and ds.images.shape == (3, 784)
    assert data_search_paths(tmp_path / "arg")[1:] == [tmp_path / "arg", tmp_path / "env",
                                                       tmp_path / "cache" / "scratch-ae"]


def test_missing_files_say_what_to_put_where(tmp_path):
    assert dataset_location("fashion-mnist") == "not found"
    assert set(find_dataset_files("fashion-mnist").values()) == {None}
    assert find_dataset_files("digits") == {}
    with pytest.raises(DataError, match=r"fashion-mnist test files not found: t10k-images-idx3-ubyte.gz, "
                                        r"t10k-labels-idx1-ubyte.gz; put them in .*cache/scratch-ae/"
                                        r"fashion-mnist .*download=True"):
        load_dataset("fashion-mnist", "test", download=False)


def test_truncated_copy_of_real_file_names_it(tmp_path):
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    real = (MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(real[: len(real) // 2])
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="corrupt or truncated gzip file .*t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data")
    raw = gzip.decompress(real)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(raw[:-784])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is truncated: expected 7840016 bytes"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data")


def test_files_of_the_wrong_shape_are_rejected(tmp_path):
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((4, 8, 8), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"do not hold fashion-mnist data: expected images \(N, 28, 28\)"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data")


def test_train_val_split_is_seeded_and_disjoint():
    ds = load_dataset("digits", "train")
    tr_x, tr_y, va_x, va_y = train_val_split(ds.images, ds.labels, 0.2, seed=0)
    assert va_x.shape == (300, 64) and tr_x.shape == (1200, 64) and tr_y.shape == (1200,)
    again = train_val_split(ds.images, ds.labels, 0.2, seed=0)
    assert np.array_equal(again[2], va_x) and not np.array_equal(train_val_split(
        ds.images, ds.labels, 0.2, seed=1)[2], va_x)
    rows = {r.tobytes() for r in ds.images}
    assert {r.tobytes() for r in tr_x} | {r.tobytes() for r in va_x} == rows
    tr_x[:] = 5.0
    assert ds.images.max() == 1.0                      # copies, not views


def test_train_val_split_zero_and_errors():
    x, y = np.zeros((10, 4), np.float32), np.arange(10)
    tr_x, tr_y, va_x, va_y = train_val_split(x, y, 0.0, seed=0)
    assert va_x.shape == (0, 4) and va_y.shape == (0,) and np.array_equal(tr_y, y)
    for bad in (1.0, -0.1, float("nan"), "0.2"):
        with pytest.raises(DataError, match=r"val_fraction must be a number in \[0, 1\)"):
            train_val_split(x, y, bad, seed=0)
    with pytest.raises(DataError, match="same length N"):
        train_val_split(x, y[:5], 0.2, seed=0)
