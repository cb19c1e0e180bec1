"""Input corruptions for denoising autoencoders and robustness labs.

Every function takes a batch x of shape (N, D) with values in [0, 1] (NumPy,
or CuPy: the noise is then drawn on the host and copied to the device), a
seeded numpy.random.Generator, and returns a new array of x's shape and dtype;
x itself is never modified.  Masking and salt-and-pepper corrupt exactly
round(fraction * D) pixels of every image, as in Vincent et al. (2010).
"""
import math

import numpy as np

from ._host import check_batch, check_rng, like
from .errors import DataError


def _check_level(value, name, func, upper=1.0):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (upper is not None and value > upper):
        expected = f"in [0, {upper:g}]" if upper is not None else ">= 0"
        raise DataError(f"{func}: {name} must be a number {expected}, got {value!r}")


def _chosen_pixels(shape, fraction, rng):
    """Boolean (N, D) mask with exactly round(fraction * D) True per row, at random places."""
    n, d = shape
    k = int(round(fraction * d))
    if k == 0:
        return np.zeros(shape, dtype=bool)
    keys = rng.random(shape)
    kth = np.partition(keys, k - 1, axis=1)[:, k - 1:k]
    return keys <= kth


def gaussian_noise(x, sigma, rng):
    """x + N(0, sigma^2) noise per pixel, clipped to [0, 1]; (N, D) -> (N, D)."""
    check_batch(x, "gaussian_noise")
    check_rng(rng, "gaussian_noise")
    _check_level(sigma, "sigma", "gaussian_noise", upper=None)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    noise = rng.standard_normal(x.shape, dtype=dtype) * dtype(sigma)
    return (x + like(noise, x)).clip(0.0, 1.0).astype(x.dtype, copy=False)


def masking_noise(x, fraction, rng):
    """Set a random `fraction` of the pixels of each image to 0; (N, D) -> (N, D)."""
    check_batch(x, "masking_noise")
    check_rng(rng, "masking_noise")
    _check_level(fraction, "fraction", "masking_noise")
    keep = ~_chosen_pixels(x.shape, fraction, rng)
    return (x * like(keep.astype(x.dtype), x)).astype(x.dtype, copy=False)


def salt_and_pepper(x, fraction, rng):
    """Set a random `fraction` of the pixels of each image to 0 or 1 (a fair coin each)."""
    check_batch(x, "salt_and_pepper")
    check_rng(rng, "salt_and_pepper")
    _check_level(fraction, "fraction", "salt_and_pepper")
    chosen = _chosen_pixels(x.shape, fraction, rng)
    salt = chosen & (rng.random(x.shape) < 0.5)
    keep, salt = like((~chosen).astype(x.dtype), x), like(salt.astype(x.dtype), x)
    return (x * keep + salt).astype(x.dtype, copy=False)


def _plane(image_shape, d, func):
    """(C, H, W) of `image_shape` ((H, W) or (C, H, W)), checked against D unless D is None."""
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1 or (d is not None and math.prod(shape) != d):
        product = "" if d is None else f" with product D={d}"
        raise DataError(f"{func}: image_shape must be (H, W) or (C, H, W){product}, got {image_shape!r}")
    return (1,) * (3 - len(shape)) + shape


def occlusion(x, p, rng, image_shape):
    """Zero one square patch per image, of side round(sqrt(p * H * W)) (at most
    min(H, W)), at a uniformly random position, in all channels; so a fraction
    ~p of each H x W plane is occluded.  (N, D) -> (N, D)."""
    check_batch(x, "occlusion")
    check_rng(rng, "occlusion")
    _check_level(p, "p", "occlusion")
    c, h, w = _plane(image_shape, x.shape[1], "occlusion")
    n = x.shape[0]
    side = min(int(round(math.sqrt(p * h * w))), h, w)
    top = rng.integers(0, h - side + 1, size=(n, 1))
    left = rng.integers(0, w - side + 1, size=(n, 1))
    rows = (np.arange(h) >= top) & (np.arange(h) < top + side)        # (N, H)
    cols = (np.arange(w) >= left) & (np.arange(w) < left + side)      # (N, W)
    patch = rows[:, :, None] & cols[:, None, :]                        # (N, H, W)
    keep = np.broadcast_to(~patch[:, None], (n, c, h, w)).reshape(n, -1)
    return (x * like(keep.astype(x.dtype), x)).astype(x.dtype, copy=False)


KINDS = {"gaussian": "sigma", "masking": "fraction", "salt-and-pepper": "fraction",
         "occlusion": "p", "none": None}
_FUNCS = {"gaussian": gaussian_noise, "masking": masking_noise,
          "salt-and-pepper": salt_and_pepper, "occlusion": occlusion}


class Corruption:
    """A parsed corruption spec: call it as f(x, rng) -> corrupted copy of x."""

    def __init__(self, kind, level, image_shape):
        self.kind, self.level, self.image_shape = kind, level, image_shape

    def __call__(self, x, rng):
        if self.kind == "none":
            return x.copy()
        if self.kind == "occlusion":
            return occlusion(x, self.level, rng, self.image_shape)
        return _FUNCS[self.kind](x, self.level, rng)

    def __repr__(self):
        return "none" if self.kind == "none" else f"{self.kind}:{self.level:g}"


def parse_corruption(spec, image_shape=None):
    """Turn "gaussian:0.45", "masking:0.3", "salt-and-pepper:0.1", "occlusion:0.2"
    or "none" into a callable f(x, rng) -> x_corrupted ((N, D) -> (N, D)).

    image_shape : (H, W) or (C, H, W), needed by "occlusion".
    """
    if not isinstance(spec, str):
        raise DataError(f"corruption spec must be a string like 'gaussian:0.45', got {type(spec).__name__}")
    kind, _, value = spec.strip().partition(":")
    kind = kind.strip().lower().replace("_", "-")
    if kind not in KINDS:
        raise DataError(f"unknown corruption kind {kind!r} in {spec!r}; expected one of: {', '.join(KINDS)}")
    if kind == "none":
        if value.strip():
            raise DataError(f"corruption 'none' takes no value, got {spec!r}")
        return Corruption("none", None, image_shape)
    try:
        level = float(value)
    except ValueError:
        raise DataError(f"corruption {spec!r}: expected '{kind}:<{KINDS[kind]}>', "
                        f"e.g. '{kind}:0.3', with a number after the colon") from None
    upper = None if kind == "gaussian" else 1.0
    _check_level(level, KINDS[kind], f"corruption {spec!r}", upper)
    if kind == "occlusion":
        if image_shape is None:
            raise DataError(f"corruption {spec!r}: occlusion needs image_shape, e.g. (28, 28)")
        _plane(image_shape, None, f"corruption {spec!r}")
    return Corruption(kind, level, image_shape)
