"""A plain autoencoder against a denoising one trained on Gaussian noise at sigma = 0.45.

Both are the standard 784-256-784 ReLU/ReLU network with MSE.  The denoising
autoencoder (Vincent et al. 2008, 2010) sees x + N(0, 0.45^2) (clipped to
[0, 1], a fresh draw every step) and is trained to reconstruct the clean x.
Both are then tested on corrupted test images against the clean ones:

* Gaussian noise, sigma from 0 to 1 in steps of 0.1, and 0.45 (the same noise for both models);
* occlusion: one black square covering a fraction p of the image, p from 0 to 0.7.

The table has one row per corruption level; the unit is SSE per image
(squared error summed over the 784 pixels against the clean image, averaged
over the test images; MSE per pixel = SSE / 784).  Figures: the two curves
(figures/robustness.png), image rows clean / corrupted / reconstructed by
each model (figures/rows_gaussian.png at sigma = 0.45, rows_occlusion.png at
p = 0.3), and the first-layer filters of both (filters_plain.png,
filters_denoising.png, the 64 most active units each).

What full mode shows (its figures: benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments): on noisy inputs the denoising AE's error is a
fraction of the plain AE's, from sigma 0.45 up to 1; the curves cross between
sigma 0.1 and 0.2.  The price is a clean error several times the plain AE's,
and Gaussian-noise training does not transfer to occlusion: the denoising AE
is a little worse than the plain one at every p, since it never learnt to fill
in a missing block.  Its filters are smooth stroke detectors; the plain AE's
look like noise.

Recipe (full mode): the 60,000 training images, Adam lr 1e-3, batch 100,
20 epochs for both models, seed 0; tested on the 10,000 test images.  Quick
mode: labs.common's 2,000 / 500 image subset and 5 epochs (at 2 epochs on
2,000 images neither network has learnt enough for the comparison to mean
anything: the two are level at sigma = 0.45; same section of RESULTS.md).
"""
import os

import numpy as np

from ..data import gaussian_noise, occlusion
from ..metrics import reconstruction_metrics
from ..plots import _save, plot_filters, plot_image_rows
from .common import LabRecord, errors_row, lab_data, mark_diverged, train_autoencoder, write_results

TITLE = "Plain vs denoising autoencoder: error against corruption level"
TRAIN_SIGMA = 0.45
SIGMAS = tuple(sorted({round(s, 2) for s in np.linspace(0.0, 1.0, 11)} | {TRAIN_SIGMA}))  # 0, 0.1, ..., 1 and 0.45
OCCLUSIONS = tuple(round(p, 2) for p in np.linspace(0.0, 0.7, 8))
SHOW_OCCLUSION = 0.3
EPOCHS, QUICK_EPOCHS = 20, 5
N_SHOW, N_FILTERS = 10, 64


def corruption(kind, level, image_shape):
    """f(x, rng) -> corrupted x for kind "gaussian" (level = sigma) or "occlusion" (level = p)."""
    if kind == "gaussian":
        return lambda x, rng: gaussian_noise(x, level, rng)
    return lambda x, rng: occlusion(x, level, rng, image_shape)


def _plot_curves(rows, names, path, train_sigma):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, kind, xlabel in ((axes[0], "gaussian", "Gaussian noise sigma"), (axes[1], "occlusion", "occluded fraction p")):
        part = [row for row in rows if row["corruption"] == kind]
        levels = [row["level"] for row in part]
        for key, label, marker in names:
            ax.plot(levels, [row[key] for row in part], marker + "-", label=label)
        if kind == "gaussian":
            ax.axvline(train_sigma, color="grey", linestyle=":", label=f"training sigma {train_sigma:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test SSE per image (vs the clean image)")
        ax.legend(fontsize=8)
    fig.suptitle("plain vs denoising autoencoder on corrupted test images")
    return _save(fig, path)


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None,
        train_sigma=TRAIN_SIGMA, engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    width, shape = train.images.shape[1], train.image_shape
    figures = os.path.join(out_dir, "figures")
    record = LabRecord(out_dir, TITLE)
    common = dict(record=record, epochs=epochs, backend=backend, seed=seed, progress=progress, engine=engine,
                  sizes=[width, 256], activation="relu", output_activation="relu", loss="mse")
    models = {"plain": train_autoencoder(train.images, **common),
              "denoising": train_autoencoder(train.images, noise=corruption("gaussian", train_sigma, shape), **common)}
    labels = {"plain": "plain AE", "denoising": f"denoising AE (sigma {train_sigma:g})"}

    sigmas = sorted(set(SIGMAS) | {float(train_sigma)})
    rows = []
    for kind, levels in (("gaussian", sigmas), ("occlusion", OCCLUSIONS)):
        for i, level in enumerate(levels):
            row = {"corruption": kind, "level": float(level)}
            for name, model in models.items():
                # the same seeded noise for both models
                rng = np.random.default_rng([seed, 1 if kind == "gaussian" else 2, i])
                corrupt = None if level == 0 else corruption(kind, level, shape)
                row[f"{name}_sse_per_image"] = reconstruction_metrics(model, test.images, corrupt=corrupt,
                                                                      rng=rng)["sse_per_image"]
            rows.append(row)
    rows = mark_diverged(rows, models.values())
    _plot_curves(rows, [("plain_sse_per_image", labels["plain"], "o"),
                        ("denoising_sse_per_image", labels["denoising"], "s")], os.path.join(figures, "robustness.png"), train_sigma)

    clean = test.images[:N_SHOW]
    for kind, level, figure in (("gaussian", train_sigma, "rows_gaussian.png"),
                                ("occlusion", SHOW_OCCLUSION, "rows_occlusion.png")):
        corrupted = corruption(kind, level, shape)(clean, np.random.default_rng([seed, 3]))
        what = f"sigma {level:g}" if kind == "gaussian" else f"occlusion p {level:g}"
        image_rows = [clean, corrupted] + [m.inverse_transform(m.transform(corrupted)) for m in models.values()]
        plot_image_rows(image_rows, ["clean", f"corrupted ({what})"] + [f"{labels[n]}: reconstruction" for n in models],
                        shape, os.path.join(figures, figure), title=f"clean / corrupted ({what}) / reconstructed")

    summary = []
    for name, model in models.items():
        codes = model.transform(test.images)
        order = np.argsort(-codes.mean(axis=0), kind="stable")[:N_FILTERS]
        plot_filters(model.state_arrays()["layers.0.W"][:, order], shape, os.path.join(figures, f"filters_{name}.png"),
                     n=N_FILTERS, title=f"{labels[name]}: {N_FILTERS} most active units")
        summary.append({**errors_row(labels[name], model, train.images, test.images),
                        "train_seconds": model.train_seconds_})
    recipe = {"hidden": 256, "train_noise": f"gaussian:{train_sigma:g}", "activation": "relu", "output": "relu",
              "loss": "mse", "optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": epochs,
              "sigmas": sigmas, "occlusions": list(OCCLUSIONS),
              "n_train": int(train.images.shape[0]), "n_test": int(test.images.shape[0]), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick}
    notes = (f"Test SSE per image against the clean images, inputs corrupted by Gaussian noise (level = sigma, "
             f"clipped to [0, 1]) or by one occluding square (level = fraction p of the image). Both models are "
             f"{width}-256-{width} ReLU; the denoising one was trained at sigma {train_sigma:g}. Clean-input errors: "
             + "; ".join(f"{r['model']} train {r['train_sse_per_image']:.2f}, test {r['test_sse_per_image']:.2f}"
                         for r in summary) + ".")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe, "models": summary,
                                "histories": {labels[n]: m.history_ for n, m in models.items()}}, notes=notes)
