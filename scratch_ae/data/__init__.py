"""Datasets, IDX files, corruptions and splits for scratch-ae.

    >>> from scratch_ae.data import load_dataset
    >>> test = load_dataset("mnist", "test")       # bundled, no download
    >>> test.images.shape, test.images.dtype
    ((10000, 784), dtype('float32'))

Every bad input raises DataError (a ValueError) with a one-line message.
"""
from .colored import colored_mnist
from .corruptions import gaussian_noise, masking_noise, occlusion, parse_corruption, salt_and_pepper
from .datasets import Dataset, load_dataset
from .download import download_file
from .errors import DataError, DownloadError
from .idx import read_idx, write_idx
from .paths import data_search_paths, dataset_location, find_dataset_files
from .sources import DATASETS, MIRRORS
from .split import train_val_split

__all__ = [
    "DataError", "DownloadError", "Dataset", "DATASETS", "MIRRORS", "load_dataset",
    "read_idx", "write_idx", "download_file", "colored_mnist", "train_val_split",
    "parse_corruption", "gaussian_noise", "masking_noise", "salt_and_pepper", "occlusion",
    "data_search_paths", "find_dataset_files", "dataset_location",
]
