"""Reconstruction metrics in the units the literature uses."""
import numpy as np

from .backend import check_array_backend


def sse_per_image(reconstruction, target):
    """Squared error summed over an image's pixels, averaged over images (MNIST's usual unit)."""
    diff = reconstruction - target
    return float((diff * diff).sum()) / target.shape[0]


def mse_per_pixel(reconstruction, target):
    """Squared error averaged over every pixel of every image."""
    diff = reconstruction - target
    return float((diff * diff).mean())


def reconstruction_metrics(model, X, batch_size=2000, corrupt=None, rng=None):
    """{"mse_per_pixel", "sse_per_image", "n_images"} of `model` on X (N, D).

    corrupt: optional f(x, rng) applied to the inputs (the targets stay clean),
    to measure robustness to noise or occlusion.  Sums stay on the device and
    are read back once.
    """
    check_array_backend(X, model.backend_)
    xp = model.xp
    rng = rng or np.random.default_rng(0)
    total = xp.zeros((), dtype=np.float64)
    n = X.shape[0]
    for i in range(0, n, batch_size):
        target = model.backend_.asarray(X[i:i + batch_size], dtype=model.dtype)
        inputs = target if corrupt is None else model.backend_.asarray(corrupt(X[i:i + batch_size], rng), dtype=model.dtype)
        diff = model.reconstruct(inputs) - target
        total += (diff * diff).sum()
    sse = float(total)
    return {"mse_per_pixel": sse / (n * X.shape[1]), "sse_per_image": sse / n, "n_images": int(n)}


def snr_db(estimate, clean):
    """Signal-to-noise ratio in decibels of `estimate` against the `clean` images, over the whole set:

        SNR = 10 log10( sum clean^2 / sum (estimate - clean)^2 ).

    Higher is better; +3 dB halves the error power.  Used for the noisy input (estimate = noisy)
    and for a denoiser's output alike, so the two are directly comparable.
    """
    clean = np.asarray(clean, dtype=np.float64)
    error = np.asarray(estimate, dtype=np.float64) - clean
    return float(10.0 * np.log10((clean * clean).sum() / (error * error).sum()))
