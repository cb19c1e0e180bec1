"""Reconstruction error against code size: the 784-k-784 ReLU autoencoder next to PCA with k components.

Code sizes 2, 4, 6, 8, 10 and 5 to 95 in steps of 15 (5, 20, ..., 95).  PCA's
curve comes from one fit: the components are nested, so PCA(k) is the first k
rows of PCA(95) (`PCA.truncate`).  PCA's training curve is the Eckart-Young
floor for every linear code of that size; the autoencoder's is not bound by it.

What full mode shows (test SSE per image, autoencoder vs PCA; its figures:
benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments): the
ReLU network wins from k = 35 but loses badly below, and its curve is not even
monotone.  The cause is dead ReLU code units, zero on every test image: at
k = 6 all of them (the output is then a constant image, whose error is the
total variance of the test images), at k = 2 and k = 10 some.  Above k = 65 it
flattens while PCA keeps improving (10 epochs are not enough there).

Recipe (full mode): the 60,000 training images, Adam lr 1e-3, batch 100,
10 epochs per code size, ReLU code and ReLU output, MSE, seed 0; errors on the
10,000 test images.  Quick mode: labs.common's 2,000 / 500 image subset and
2 epochs (all twelve code sizes), quick enough for a test.
"""
import os

from ..pca import PCA
from ..plots import plt  # the headless (Agg) pyplot
from .common import LabRecord, errors_row, lab_data, train_autoencoder, write_results

TITLE = "Reconstruction error against code size"
CODE_SIZES = (2, 4, 5, 6, 8, 10, 20, 35, 50, 65, 80, 95)  # 2..10 by 2, and range(5, 96, 15)
EPOCHS, QUICK_EPOCHS = 10, 2


def plot_error_curves(rows, path, title):
    """Train and test SSE per image against code size, autoencoder and PCA on the same axes."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, color in (("ReLU autoencoder", "C0"), ("PCA", "C1")):
        sel = sorted((r for r in rows if r["model"] == model), key=lambda r: r["code_size"])
        sizes = [r["code_size"] for r in sel]
        ax.plot(sizes, [r["train_sse_per_image"] for r in sel], "o-", color=color, label=f"{model}, train")
        ax.plot(sizes, [r["test_sse_per_image"] for r in sel], "s--", color=color, label=f"{model}, test")
    ax.set_xlabel("code size k")
    ax.set_ylabel("squared error per image")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None,
        code_sizes=None, engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    code_sizes = sorted(code_sizes or CODE_SIZES)
    width = train.images.shape[1]
    pca = PCA(max(code_sizes), backend=backend).fit(train.images)
    record = LabRecord(out_dir, TITLE)
    rows = record.rows
    for k in code_sizes:
        record.add({**errors_row("PCA", pca.truncate(k), train.images, test.images), "code_size": k,
                     "explained_variance_ratio": float(pca.explained_variance_ratio_[:k].sum())})
    for k in code_sizes:
        model = train_autoencoder(train.images, record=record, epochs=epochs, backend=backend, seed=seed,
                                  progress=progress, engine=engine, sizes=[width, k], activation="relu",
                                  output_activation="relu", loss="mse")
        record.add({**errors_row("ReLU autoencoder", model, train.images, test.images), "code_size": k,
                     "train_seconds": model.train_seconds_})
    plot_error_curves(rows, os.path.join(out_dir, "figures", "error_vs_code_size.png"),
                      f"{dataset}: error against code size")
    recipe = {"code_sizes": code_sizes, "activation": "relu", "output": "relu", "loss": "mse", "optimizer": "adam",
              "lr": 1e-3, "batch_size": 100, "epochs": epochs, "n_train": int(train.images.shape[0]),
              "n_test": int(test.images.shape[0]), "dataset": dataset, "seed": seed, "backend": backend, "quick": quick}
    notes = ("SSE per image (squared error summed over pixels, averaged over images). PCA rows: the first k "
             "principal components of the training images; its training error is the minimum over all rank-k "
             f"linear reconstructions. Autoencoder rows: {width}-k-{width} ReLU/ReLU, {epochs} epochs of Adam; at small "
             "k some ReLU code units die (are zero on every image), which is why it can lose to PCA there.")
    return write_results(out_dir, TITLE, rows, extra={"recipe": recipe}, notes=notes)
