"""Where dataset files are looked for, in order.

1. the package itself (MNIST ships in ``scratch_ae/data/mnist/``),
2. the `data_dir` argument,
3. the directory in $SCRATCH_AE_DATA,
4. the user cache, ``$XDG_CACHE_HOME/scratch-ae`` or ``~/.cache/scratch-ae``.

In each directory a dataset lives in a subfolder named after it, e.g.
``<dir>/fashion-mnist/train-images-idx3-ubyte.gz``; the un-gzipped file name
(``train-images-idx3-ubyte``) is accepted too.
"""
import os
from pathlib import Path

from .sources import IDX_DATASETS, SPLIT_FILES, check_name

DATA_ENV = "SCRATCH_AE_DATA"
PACKAGE_DIR = Path(__file__).resolve().parent


def cache_dir():
    """The user cache directory, ``$XDG_CACHE_HOME/scratch-ae`` or ``~/.cache/scratch-ae``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scratch-ae"


def data_search_paths(data_dir=None):
    """The directories searched for dataset files, first match wins (a list of Paths)."""
    paths = [PACKAGE_DIR]
    if data_dir is not None:
        paths.append(Path(data_dir))
    if os.environ.get(DATA_ENV):
        paths.append(Path(os.environ[DATA_ENV]))
    paths.append(cache_dir())
    return paths


def download_dirs(data_dir=None):
    """Where a download may go, in order of preference: data_dir, $SCRATCH_AE_DATA, the cache."""
    return data_search_paths(data_dir)[1:]


def _idx_name(name):
    """colored-mnist is built from the MNIST files."""
    return "mnist" if name == "colored-mnist" else name


def find_file(name, filename, data_dir=None):
    """The first existing ``<dir>/<name>/<filename>.gz`` or ``.../<filename>``, else None."""
    for base in data_search_paths(data_dir):
        for candidate in (filename + ".gz", filename):
            path = base / name / candidate
            if path.is_file():
                return path
    return None


def find_dataset_files(name, data_dir=None, splits=("train", "test")):
    """Map each IDX file of dataset `name` to the Path it is found at, or None.

    Returns e.g. {"train-images-idx3-ubyte": Path(...), ...}; "colored-mnist"
    reports the MNIST files it is built from; "digits" ships with
    scikit-learn and has no files, so it gives {}.
    """
    check_name(name)
    name = _idx_name(name)
    if name not in IDX_DATASETS:
        return {}
    return {f: find_file(name, f, data_dir) for split in splits for f in SPLIT_FILES[split]}


def dataset_location(name, data_dir=None):
    """One line saying where dataset `name` is found, for ``scratch-ae info``."""
    files = find_dataset_files(name, data_dir)
    if not files:
        return "bundled with scikit-learn (sklearn.datasets.load_digits)"
    found = [p for p in files.values() if p is not None]
    if not found:
        return "not found"
    folders = sorted({str(p.parent) for p in found})
    missing = [f for f, p in files.items() if p is None]
    where = ", ".join(folders)
    return where if not missing else f"{where} (missing: {', '.join(missing)})"
