"""A seeded train/validation split."""
import math

import numpy as np

from ._host import like
from .errors import DataError


def train_val_split(images, labels, val_fraction, seed):
    """Split (N, D) images and (N,) labels into a training and a validation part.

    round(val_fraction * N) examples, chosen by np.random.default_rng(seed),
    go to validation; both parts keep the original order.  val_fraction must
    be in [0, 1); 0 gives empty validation arrays.
    Returns (train_images, train_labels, val_images, val_labels), all copies.
    """
    n = images.shape[0] if hasattr(images, "shape") and len(images.shape) else None
    if n is None or not hasattr(labels, "shape") or labels.shape[:1] != (n,):
        raise DataError("train_val_split: images (N, D) and labels (N,) must have the same length N, "
                        f"got shapes {getattr(images, 'shape', None)} and {getattr(labels, 'shape', None)}")
    ok = isinstance(val_fraction, (int, float, np.integer, np.floating)) and not isinstance(val_fraction, bool)
    if not ok or not math.isfinite(val_fraction) or not 0 <= val_fraction < 1:
        raise DataError(f"train_val_split: val_fraction must be a number in [0, 1), got {val_fraction!r}")
    n_val = int(round(val_fraction * n))
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    ti, vi = like(train_idx, images), like(val_idx, images)
    tl, vl = like(train_idx, labels), like(val_idx, labels)
    return images[ti], labels[tl], images[vi], labels[vl]
