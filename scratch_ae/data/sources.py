"""Where the IDX datasets come from: file names, download mirrors, checksums.

MIRRORS and CHECKSUMS are plain module-level dicts so that they can be
overridden (tests point them at a local server with their own checksums).
A mirror is a base URL; the file name (``<file>.gz``) is appended to it, and
a ``{name}`` in it is replaced by the dataset name.
"""
import os

from .errors import DataError

DATASETS = ("mnist", "fashion-mnist", "digits", "colored-mnist")
IDX_DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

# split -> (images file, labels file), without the ".gz"
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MIRROR_ENV = "SCRATCH_AE_MIRROR"

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

# dataset -> file -> accepted MD5s: of the .gz as published and/or of the
# decompressed file (the bundled MNIST copies were re-compressed, so only
# their decompressed MD5s match the published ones).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
    },
    # the .gz MD5s published with Fashion-MNIST (as listed by torchvision)
    "fashion-mnist": {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe",),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79",),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310",),
    },
}


def check_name(name):
    """Raise DataError unless `name` is one of DATASETS."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")


def check_split(split, name=None):
    """Raise DataError unless `split` is one of SPLITS."""
    if split not in SPLITS:
        where = f" of dataset {name!r}" if name else ""
        raise DataError(f"unknown split {split!r}{where}; expected one of: {', '.join(SPLITS)}")


def mirror_urls(name, filename, mirrors=None):
    """The URLs to try for `filename` of dataset `name`, in order.

    mirrors : list of base URLs (or one comma-separated string); by default
        $SCRATCH_AE_MIRROR when set, else MIRRORS[name].
    """
    if mirrors is None:
        mirrors = os.environ.get(MIRROR_ENV) or MIRRORS[name]
    if isinstance(mirrors, str):
        mirrors = [m.strip() for m in mirrors.split(",") if m.strip()]
    urls = []
    for base in mirrors:
        base = base.replace("{name}", name)
        urls.append(base + ("" if base.endswith("/") else "/") + filename)
    return urls
