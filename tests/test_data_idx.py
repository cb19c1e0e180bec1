"""read_idx / write_idx on the bundled MNIST files and on small synthetic arrays."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from scratch_ae.data import DataError, read_idx, write_idx

MNIST = Path(__file__).resolve().parents[1] / "scratch_ae" / "data" / "mnist"
TEST_LABELS = MNIST / "t10k-labels-idx1-ubyte.gz"


@pytest.fixture(scope="module")
def raw_labels():
    """The decompressed bytes of the real MNIST test labels (10008 bytes)."""
    return gzip.decompress(TEST_LABELS.read_bytes())


def test_reads_real_mnist_labels():
    labels = read_idx(TEST_LABELS)
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.array_equal(np.bincount(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


def test_reads_real_mnist_images_header():
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert images.max() == 255 and images.flags.writeable


def test_uncompressed_file_and_bytes_read_the_same(tmp_path, raw_labels):
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    plain.write_bytes(raw_labels)
    expected = read_idx(TEST_LABELS)
    assert np.array_equal(read_idx(plain), expected)
    assert np.array_equal(read_idx(raw_labels), expected)
    assert np.array_equal(read_idx(TEST_LABELS.read_bytes()), expected)


def test_gzip_is_detected_by_magic_not_by_name(tmp_path, raw_labels):
    misnamed_gz = tmp_path / "labels.idx"             # gzip content, no .gz
    misnamed_gz.write_bytes(TEST_LABELS.read_bytes())
    misnamed_raw = tmp_path / "labels.gz"             # raw content, .gz name
    misnamed_raw.write_bytes(raw_labels)
    assert np.array_equal(read_idx(misnamed_gz), read_idx(misnamed_raw))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_read_roundtrip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)
    assert [p.name for p in tmp_path.iterdir()] == [name]     # no temporary file left


def test_truncated_real_file_names_the_file(tmp_path, raw_labels):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(raw_labels[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte is truncated: expected 10008 bytes.*got 9908"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(TEST_LABELS.read_bytes()[:2000])
    with pytest.raises(DataError, match="corrupt or truncated gzip file .*t10k-labels-idx1-ubyte.gz"):
        read_idx(path)


def test_corrupt_gzip_names_the_file(tmp_path):
    data = bytearray(TEST_LABELS.read_bytes())
    data[100:110] = bytes(10)
    path = tmp_path / "broken.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="broken.gz"):
        read_idx(path)


def test_trailing_bytes_are_an_error(raw_labels):
    with pytest.raises(DataError, match="3 trailing bytes"):
        read_idx(raw_labels + b"xyz")


@pytest.mark.parametrize("data, message", [
    (b"", "not an IDX file"),
    (b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", "not an IDX file.*01 02 08 01"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unsupported IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "ndim must be in 1..4, got 0"),
    (b"\x00\x00\x08\x05" + bytes(20), "ndim must be in 1..4, got 5"),
    (b"\x00\x00\x08\x02\x00\x00", "header needs 12 bytes"),
])
def test_bad_headers(data, message):
    with pytest.raises(DataError, match=message):
        read_idx(data)


def test_missing_file_and_bad_argument(tmp_path):
    with pytest.raises(DataError, match="cannot read IDX file .*nope"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="path or bytes"):
        read_idx(42)


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(DataError, match="dtype int64 has no IDX type"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))
    with pytest.raises(DataError, match="1..4 dimensions"):
        write_idx(tmp_path / "a", np.zeros((1,) * 5, dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []
