"""Colored MNIST: grey digits tinted with a colour, laid out channel-first.

Each output pixel is ``intensity * colour``, so values stay in [0, 1].
mode="class": the colour is PALETTE[label], 10 fully saturated hues 36 degrees
apart (red, orange, yellow-green, green, spring green, cyan, azure, violet,
purple, rose), so colour alone tells the class.
mode="random": each image gets a fully saturated hue drawn uniformly at random
from np.random.default_rng(seed), independent of its label.
"""
import numpy as np

from .errors import DataError

MODES = ("class", "random")


def hue_to_rgb(hue):
    """Fully saturated, full-value RGB for hues in [0, 1): shape (...,) -> (..., 3)."""
    h6 = np.asarray(hue, dtype=np.float64)[..., None] * 6.0
    rgb = np.abs((h6 + np.array([0.0, 4.0, 2.0])) % 6.0 - 3.0) - 1.0
    return np.clip(rgb, 0.0, 1.0)


PALETTE = hue_to_rgb(np.arange(10) / 10).astype(np.float32)  # (10, 3)


def colored_mnist(images, labels, mode="class", seed=0):
    """Tint grey images.

    images : (N, D) floats in [0, 1] (D = 784 for MNIST)
    labels : (N,) integers in 0..9 (used by mode="class")
    Returns (N, 3 * D) float32, each row laid out as (3, 28, 28) channel-first.
    """
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    if images.ndim != 2:
        raise DataError(f"colored_mnist: images must have shape (N, D), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataError(f"colored_mnist: labels must have shape ({images.shape[0]},), got {labels.shape}")
    if mode == "class":
        if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9):
            raise DataError("colored_mnist: labels must be integers in 0..9 for mode='class'")
        colours = PALETTE[labels]
    elif mode == "random":
        rng = np.random.default_rng(seed)
        colours = hue_to_rgb(rng.random(images.shape[0])).astype(np.float32)
    else:
        raise DataError(f"colored_mnist: unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    out = images[:, None, :] * colours[:, :, None]  # (N, 3, D)
    return np.ascontiguousarray(out.reshape(images.shape[0], -1))
