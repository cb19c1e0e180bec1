"""load_dataset: the datasets of scratch-ae as float32 arrays in [0, 1].

============== =========== ============ ==============================================
name           image_shape train / test source
============== =========== ============ ==============================================
mnist          (28, 28)    60000/10000  bundled in scratch_ae/data/mnist (CC BY-SA 3.0)
fashion-mnist  (28, 28)    60000/10000  data_dir, $SCRATCH_AE_DATA or cache; downloaded
digits         (8, 8)      1500/297     sklearn.datasets.load_digits, pixels / 16;
                                        train = the first 1500 samples, test = the rest
colored-mnist  (3, 28, 28) 60000/10000  MNIST tinted by class (colored_mnist, mode="class")
============== =========== ============ ==============================================
"""
import functools
from dataclasses import dataclass

import numpy as np

from .colored import colored_mnist
from .errors import DataError
from .fetch import split_files
from .idx import read_idx
from .sources import check_name, check_split

DIGITS_TRAIN = 1500
IMAGE_SHAPES = {"mnist": (28, 28), "fashion-mnist": (28, 28), "digits": (8, 8),
                "colored-mnist": (3, 28, 28)}


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset.

    images : (N, D) float32, C-contiguous, values in [0, 1]; D = prod(image_shape)
    labels : (N,) int64 class labels
    image_shape : shape of one image, e.g. (28, 28) or (3, 28, 28) channel-first
    """
    images: np.ndarray
    labels: np.ndarray
    image_shape: tuple
    name: str
    split: str

    def __len__(self):
        return self.images.shape[0]

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, split={self.split!r}, images={self.images.shape} "
                f"{self.images.dtype}, labels={self.labels.shape}, image_shape={self.image_shape})")


@functools.lru_cache(maxsize=8)
def _read_cached(path, mtime_ns, size):
    """read_idx keyed on (path, mtime, size) so an edited file is read again; read-only result."""
    array = read_idx(path)
    array.setflags(write=False)
    return array


def _read(path):
    stat = path.stat()
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits
    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32)
    images.setflags(write=False)
    return images, bunch.target.astype(np.int64)


def _raw_split(name, split, data_dir, download, mirrors, limit):
    """(uint8-or-float images (N, ...), labels (N,)) before conversion, first `limit` only."""
    if name == "digits":
        images, labels = _digits()
        part = slice(0, DIGITS_TRAIN) if split == "train" else slice(DIGITS_TRAIN, None)
        return images[part][:limit], labels[part][:limit]
    idx_name = "mnist" if name == "colored-mnist" else name
    images_path, labels_path = split_files(idx_name, split, data_dir, download, mirrors)
    images, labels = _read(images_path), _read(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataError(f"{images_path} and {labels_path} do not hold {idx_name} data: expected "
                        f"images (N, 28, 28) and labels (N,), got {images.shape} and {labels.shape}")
    return images[:limit], labels[:limit]


def _check_limit(limit):
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")


def load_dataset(name, split="train", data_dir=None, download=True, limit=None, mirrors=None):
    """Load one split of a dataset as a Dataset of fresh arrays (safe to modify).

    name : one of DATASETS ("mnist", "fashion-mnist", "digits", "colored-mnist")
    split : "train" or "test"
    data_dir : extra directory searched (and downloaded into) before
        $SCRATCH_AE_DATA and the user cache; see paths.py for the full order
    download : fetch missing IDX files from the mirrors (see sources.py)
    limit : keep only the first `limit` examples
    mirrors : base URLs to download from instead of sources.MIRRORS[name]
    """
    check_name(name)
    check_split(split, name)
    _check_limit(limit)
    images, labels = _raw_split(name, split, data_dir, download, mirrors, limit)
    n = images.shape[0]
    flat = images.reshape(n, -1)
    if flat.dtype == np.uint8:
        flat = flat.astype(np.float32)
        flat /= 255.0
    else:
        flat = flat.astype(np.float32, copy=True)
    labels = labels.astype(np.int64, copy=True)
    if name == "colored-mnist":
        flat = colored_mnist(flat, labels, mode="class")
    return Dataset(np.ascontiguousarray(flat), labels, IMAGE_SHAPES[name], name, split)
