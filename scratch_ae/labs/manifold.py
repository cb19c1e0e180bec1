"""Noise in pixel space against noise of the same norm in code space, decoded: the manifold view.

A trained autoencoder's decoder maps the K-dimensional code space onto a
K-dimensional surface in the D-dimensional pixel space, near which the
training images lie: a proxy for the data manifold.  For each test image x
(code h = encode(x), reconstruction R(x) = decode(h)) and each norm r we draw
a random direction and compare

* pixel space: y = x + n, ||n||_2 = r (not clipped, so the norm is exact);
* code space:  y = decode(h + c), ||c||_2 = r (not clipped at 0 either).

and measure, as SSE per image (squared distance, averaged over images):

* sse_to_clean_image      ||y - x||^2
* sse_to_clean_recon      ||y - R(x)||^2
* manifold_residual       ||y - R(y)||^2, how far y is from the decoder's surface, as the
                          autoencoder sees it (its own reconstruction error on y)
* projected_sse_to_clean  ||R(y) - x||^2, the error after "projecting" y with the autoencoder

Pixel noise leaves the manifold: its residual grows like r^2 and the
autoencoder removes most of it (projected_sse_to_clean stays near the clean
error).  Code noise moves along the manifold: the decoded images are still
digit-like (small residual next to the pixel case) but they are different
images, and the autoencoder cannot undo that.  Two reference rows: the clean
image (y = x) and the clean reconstruction (y = R(x)), whose residual is the
level of a point that is on the surface.  Figures: figures/noise_rows.png
(clean, reconstruction, and for r = 2, 4, 8: pixel noise, its reconstruction,
code noise decoded) and figures/distances.png (the four distances against r).

What full mode shows (its figures: benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments): at r = 4 and r = 8 pixel noise has a residual
several times code noise's, and the autoencoder brings it back much closer to
the clean image; code noise decoded stays near the surface but far from the
clean image, reconstruction or not.  The decoder amplifies code noise: its
gain ||D(h+c) - D(h)||^2 / ||c||^2 (decoder_gain in the results) is above 1.

Recipe (full mode): the standard 784-256-784 ReLU/ReLU network, MSE, the
60,000 training images, Adam lr 1e-3, batch 100, 10 epochs, seed 0; measured
on the 10,000 test images.  Quick mode: labs.common's 2,000 / 500 image
subset and 2 epochs.
"""
import os

import numpy as np

from ..plots import _save, plot_image_rows
from .common import LabRecord, errors_row, lab_data, mark_diverged, train_autoencoder, write_results

TITLE = "The manifold view: pixel-space noise vs same-norm code-space noise"
NORMS = (0.5, 1.0, 2.0, 4.0, 8.0)
FIGURE_NORMS = (2.0, 4.0, 8.0)
EPOCHS, QUICK_EPOCHS = 10, 2
N_SHOW = 8
KEYS = ("sse_to_clean_image", "sse_to_clean_recon", "manifold_residual", "projected_sse_to_clean")


def random_directions(n, dim, norm, rng):
    """n rows of dimension dim, each a uniformly random direction scaled to Euclidean norm `norm`."""
    v = rng.standard_normal((n, dim))
    return (norm * v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _sse(a, b):
    return float(((np.asarray(a, np.float64) - b) ** 2).sum(axis=1).mean())


def distances(model, y, x, recon_x):
    """The four distances of the module docstring for points y (N, D) built from clean x (N, D)."""
    recon_y = model.inverse_transform(model.transform(y))
    return {"sse_to_clean_image": _sse(y, x), "sse_to_clean_recon": _sse(y, recon_x),
            "manifold_residual": _sse(y, recon_y), "projected_sse_to_clean": _sse(recon_y, x)}


def _plot_distances(rows, path):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(KEYS), figsize=(4 * len(KEYS), 3.6))
    references = {row["space"]: row for row in rows if row["noise_norm"] == 0}
    for ax, key in zip(axes, KEYS):
        for space, marker in (("pixel", "o"), ("code", "s")):
            part = [row for row in rows if row["space"] == space]
            ax.plot([r["noise_norm"] for r in part], [r[key] for r in part], marker + "-", label=f"{space} noise")
        for name, style in (("clean image", ":"), ("clean reconstruction", "--")):
            ax.axhline(references[name][key], color="grey", linestyle=style, label=name, linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("noise norm r")
        ax.set_title(key, fontsize=9)
    axes[0].set_ylabel("SSE per image")
    axes[0].legend(fontsize=7)
    fig.suptitle("noise in pixel space vs the same norm in code space")
    return _save(fig, path)


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None, norms=NORMS,
        engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    width, shape = train.images.shape[1], train.image_shape
    record = LabRecord(out_dir, TITLE)
    model = train_autoencoder(train.images, record=record, epochs=epochs, backend=backend, seed=seed,
                              progress=progress, engine=engine, sizes=[width, 256], activation="relu",
                              output_activation="relu", loss="mse")
    x = test.images
    codes = model.transform(x)
    recon = model.inverse_transform(codes)
    n, k = codes.shape

    rows = [{"space": "clean image", "noise_norm": 0.0, **distances(model, x, x, recon)},
            {"space": "clean reconstruction", "noise_norm": 0.0, **distances(model, recon, x, recon)}]
    shown = {}
    for i, r in enumerate(norms):
        rng = np.random.default_rng([seed, 5, i])
        pixel = x + random_directions(n, width, r, rng)
        code = model.inverse_transform(codes + random_directions(n, k, r, rng))
        rows.append({"space": "pixel", "noise_norm": float(r), **distances(model, pixel, x, recon)})
        rows.append({"space": "code", "noise_norm": float(r), **distances(model, code, x, recon)})
        shown[float(r)] = (pixel[:N_SHOW], code[:N_SHOW])
    for row in rows:
        if row["space"] == "code" and row["noise_norm"] > 0:
            row["decoder_gain"] = row["sse_to_clean_recon"] / row["noise_norm"] ** 2  # ||D(h+c) - D(h)||^2 / ||c||^2
    rows = mark_diverged(rows, [model])

    image_rows, labels = [x[:N_SHOW], recon[:N_SHOW]], ["clean", "reconstruction"]
    for r in FIGURE_NORMS:
        if r in shown:
            pixel, code = shown[r]
            image_rows += [pixel, model.inverse_transform(model.transform(pixel)), code]
            labels += [f"pixel noise, norm {r:g}", f"pixel noise {r:g}, reconstructed", f"code noise, norm {r:g}, decoded"]
    figures = os.path.join(out_dir, "figures")
    plot_image_rows(image_rows, labels, shape, os.path.join(figures, "noise_rows.png"),
                    title="noise in pixel space vs the same norm in code space")
    _plot_distances(rows, os.path.join(figures, "distances.png"))

    scales = {"mean_image_norm": float(np.linalg.norm(x, axis=1).mean()),
              "mean_code_norm": float(np.linalg.norm(codes, axis=1).mean()),
              "code_width": int(k), "image_width": int(width)}
    recipe = {"hidden": 256, "activation": "relu", "output": "relu", "loss": "mse", "optimizer": "adam", "lr": 1e-3,
              "batch_size": 100, "epochs": epochs, "norms": [float(r) for r in norms],
              "n_train": int(train.images.shape[0]), "n_test": int(n), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick}
    notes = ("Squared distances (SSE per image, averaged over the test images). y is the noisy point: x + n in pixel "
             "space or decode(h + c) in code space, ||n|| = ||c|| = noise_norm. sse_to_clean_image ||y - x||^2; "
             "sse_to_clean_recon ||y - R(x)||^2; manifold_residual ||y - R(y)||^2 (distance to the data-manifold "
             "proxy, the decoder's surface); projected_sse_to_clean ||R(y) - x||^2. decoder_gain: "
             "||D(h + c) - D(h)||^2 / ||c||^2. For scale: mean image norm "
             f"{scales['mean_image_norm']:.2f}, mean code norm {scales['mean_code_norm']:.2f}.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe, "scales": scales,
                                "model": errors_row(f"{width}-256-{width} ReLU", model, train.images, x),
                                "history": model.history_}, notes=notes)
