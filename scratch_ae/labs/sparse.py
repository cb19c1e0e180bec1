"""An overcomplete 784-1296-784 network with L1 activity sparsity against the standard 784-256-784 one.

Both are ReLU/ReLU with MSE.  The sparse network adds P = l1 * (1/B) sum |h|
to the loss (derivations/sparsity.md#l1-activity), l1 = 1e-4 (the CLI's
`--model sparse` default).  A third row, the same 1296-unit network without
the penalty, separates what the width does from what the penalty does.

Measured on the 10,000 test codes: the average L1 norm of the code per image
(sum_j |h_j|, mean over images) and per unit (that divided by the code width),
the fraction of near-zero activations |h| < NEAR_ZERO = 0.01 (with a ReLU code
nearly all of them are exactly 0, reported too), and the units that are never
active on the test set (dead).  Figures: the first-layer filters of each
network (the 64 most active units, most active first) and the histogram of
code activations.

What full mode shows (its figures: benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments): the penalty, far more than the width, makes the
code sparse.  The L1-sparse 1296-unit network has far more near-zero activations
and a far smaller L1 norm per unit than the standard one, with many dead
units, at a slightly lower test error; without the penalty the 1296-unit
network is less sparse than the sparse one, has a larger L1 norm per image
than the standard one and a much higher test error.  The sparse network's
filters are pen strokes; the standard network's look like noise.

Recipe (full mode): the 60,000 training images, Adam lr 1e-3, batch 100,
10 epochs, seed 0; codes and errors on the 10,000 test images.  Quick mode:
labs.common's 2,000 / 500 image subset and 2 epochs.
"""
import os

import numpy as np

from ..plots import _save, plot_filters
from .common import LabRecord, errors_row, lab_data, train_autoencoder, write_results

STANDARD_HIDDEN, OVERCOMPLETE_HIDDEN = 256, 1296
L1 = 1e-4
TITLE = "Sparse overcomplete autoencoder (L1 activity) vs the standard one"
NEAR_ZERO = 1e-2
EPOCHS, QUICK_EPOCHS = 10, 2
N_FILTERS = 64


def code_statistics(codes, threshold=NEAR_ZERO):
    """Sparsity statistics of codes (N, K): L1 per image and per unit, near-zero / zero fractions, dead units."""
    codes = np.asarray(codes, dtype=np.float64)
    absolute = np.abs(codes)
    l1_per_image = float(absolute.sum(axis=1).mean())
    return {"l1_per_image": l1_per_image,
            "l1_per_unit": l1_per_image / codes.shape[1],
            "near_zero_fraction": float((absolute < threshold).mean()),
            "zero_fraction": float((codes == 0).mean()),
            "active_units_per_image": float((absolute >= threshold).sum(axis=1).mean()),
            "dead_units": int((absolute.max(axis=0) < threshold).sum())}


def _plot_activation_histograms(codes_by_name, path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.8))
    top = max(float(np.max(c)) for c in codes_by_name.values())
    bins = np.linspace(0.0, max(top, 1e-6), 60)
    for name, codes in codes_by_name.items():
        ax.hist(np.ravel(codes), bins=bins, histtype="step", linewidth=1.5, label=name)
    ax.set_yscale("log")
    ax.axvline(NEAR_ZERO, color="grey", linestyle=":", label=f"near-zero threshold {NEAR_ZERO:g}")
    ax.set_xlabel("code activation h")
    ax.set_ylabel("count (test images x units)")
    ax.set_title("code activations on the test set")
    ax.legend(fontsize=7)
    return _save(fig, path)


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None, l1=L1,
        engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    width = train.images.shape[1]
    figures = os.path.join(out_dir, "figures")
    configs = [(f"standard {width}-{STANDARD_HIDDEN}-{width}", STANDARD_HIDDEN, 0.0, "filters_standard.png"),
               (f"overcomplete {width}-{OVERCOMPLETE_HIDDEN}-{width}, no penalty", OVERCOMPLETE_HIDDEN, 0.0,
                "filters_overcomplete_plain.png"),
               (f"overcomplete {width}-{OVERCOMPLETE_HIDDEN}-{width}, L1 {l1:g}", OVERCOMPLETE_HIDDEN, l1,
                "filters_sparse.png")]
    record = LabRecord(out_dir, TITLE)
    rows, histories, codes_by_name = record.rows, {}, {}
    for name, hidden, penalty, figure in configs:
        model = train_autoencoder(train.images, record=record, epochs=epochs, backend=backend, seed=seed,
                                  progress=progress, engine=engine, sizes=[width, hidden], activation="relu",
                                  output_activation="relu", loss="mse", l1=penalty)
        codes = model.transform(test.images)
        codes_by_name[name] = codes
        record.add({**errors_row(name, model, train.images, test.images), "hidden": hidden, "l1": penalty,
                     **code_statistics(codes), "train_seconds": model.train_seconds_})
        histories[name] = model.history_
        W = model.state_arrays()["layers.0.W"]
        order = np.argsort(-codes.mean(axis=0), kind="stable")[:N_FILTERS]
        plot_filters(W[:, order], train.image_shape, os.path.join(figures, figure), n=N_FILTERS,
                     title=f"{name}: {N_FILTERS} most active units")
    _plot_activation_histograms(codes_by_name, os.path.join(figures, "code_activations.png"))
    recipe = {"standard_hidden": STANDARD_HIDDEN, "overcomplete_hidden": OVERCOMPLETE_HIDDEN, "l1": l1,
              "near_zero_threshold": NEAR_ZERO, "activation": "relu", "output": "relu", "loss": "mse",
              "optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": epochs,
              "n_train": int(train.images.shape[0]), "n_test": int(test.images.shape[0]), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick}
    notes = (f"Code statistics on the test set. l1_per_image: sum_j |h_j| averaged over images; l1_per_unit: that "
             f"divided by the code width. near_zero_fraction: the fraction of activations with |h| < {NEAR_ZERO:g} "
             f"(zero_fraction: exactly 0, as a ReLU gives). active_units_per_image: units with |h| >= {NEAR_ZERO:g} "
             f"per image. dead_units: never >= {NEAR_ZERO:g} on the test set. Errors are SSE per image. Filters: "
             f"figures/filters_*.png, {N_FILTERS} most active units each; activations: figures/code_activations.png.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe, "histories": histories}, notes=notes)
