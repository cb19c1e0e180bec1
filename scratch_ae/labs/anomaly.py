"""Anomaly detection by reconstruction error: train without one digit, then try to find it.

The autoencoders are trained on the training images of every class but one
(the held-out digit, 2 by default) and score each test image by its
reconstruction error, SSE summed over the pixels.  The held-out digit is the
positive class: the ROC-AUC (sklearn.metrics.roc_auc_score) is the chance that
a random held-out test image scores higher than a random test image of the
other classes (0.5: no better than chance).  Figures: the score histograms of
the two groups (figures/score_histograms.png) and the ROC curves (roc.png).

Two networks, both ReLU/ReLU with MSE: a narrow 784-32-784 bottleneck (the
detector) and the standard 784-256-784 one.  The wide network reconstructs
everything well, shapes it never saw included, so its errors separate the
held-out class less cleanly (see the AUCs below).

Why 2: a typical digit, neither degenerate nor a near-duplicate of another
class.  Digit 1 has the least ink and is reconstructed best by any model (AUC
well below 0.5); 9 is nearly a 4 or a 7 to the network (AUC near chance with
the 32-unit code).  With the same 784-32-784 recipe, holding out 0, 2, 6 or 8
gave AUCs well above chance, 2 the highest of them (the AUCs per held-out
digit: benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments).  Pass held_out=... to run(...) for another digit.

What full mode shows (same section of RESULTS.md): the 32-unit code separates
the held-out 2s better than the 256-unit one, as the paragraph above says of
wide networks; both score the held-out 2s about twice as high as the other
digits on average.

Recipe (full mode): the training images minus the held-out class (about
54,000), Adam lr 1e-3, batch 100, 10 epochs, seed 0; scored on all 10,000
test images.  Quick mode: labs.common's 2,000 / 500 image subset (minus the
held-out class) and 2 epochs.
"""
import os

import numpy as np

from ..metrics import reconstruction_metrics
from ..plots import _save
from .common import LabRecord, lab_data, train_autoencoder, write_results

HELD_OUT = 2
CODE_SIZES = (32, 256)
EPOCHS, QUICK_EPOCHS = 10, 2


def reconstruction_scores(model, X):
    """Anomaly score per image: squared reconstruction error summed over its pixels, (N, D) -> (N,)."""
    recon = model.inverse_transform(model.transform(X))
    return ((recon.astype(np.float64) - X) ** 2).sum(axis=1)


def _plot_histograms(results, held_out, path):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for ax, (name, (scores, positive, auc)) in zip(axes[0], results.items()):
        bins = np.linspace(0.0, np.quantile(scores, 0.995), 50)
        ax.hist(scores[~positive], bins=bins, density=True, alpha=0.6, label="other digits (normal)")
        ax.hist(scores[positive], bins=bins, density=True, alpha=0.6, label=f"digit {held_out} (held out)")
        ax.set_xlabel("reconstruction SSE per image")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: ROC-AUC {auc:.3f}", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(f"anomaly scores on the test set, digit {held_out} never seen in training")
    return _save(fig, path)


def _plot_roc(results, path):
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for name, (scores, positive, auc) in results.items():
        fpr, tpr, _ = roc_curve(positive, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8)
    return _save(fig, path)


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None,
        held_out=HELD_OUT, code_sizes=CODE_SIZES, engine="auto"):
    from sklearn.metrics import roc_auc_score
    train, test = lab_data(dataset, quick)
    if held_out not in set(train.labels.tolist()):
        raise ValueError(f"held_out must be one of the dataset's labels {sorted(set(train.labels.tolist()))}, got {held_out!r}")
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    width = train.images.shape[1]
    X_train = train.images[train.labels != held_out]
    positive = test.labels == held_out
    title = f"Anomaly detection: digit {held_out} held out, scored by reconstruction error"
    record = LabRecord(out_dir, title)
    rows, plotted, histories, scores_by_digit = record.rows, {}, {}, {}
    for code in code_sizes:
        name = f"{width}-{code}-{width} ReLU"
        model = train_autoencoder(X_train, record=record, epochs=epochs, backend=backend, seed=seed,
                                  progress=progress, engine=engine, sizes=[width, code], activation="relu",
                                  output_activation="relu", loss="mse")
        scores = reconstruction_scores(model, test.images)
        auc = float(roc_auc_score(positive, scores))
        by_digit = {str(int(d)): float(scores[test.labels == d].mean()) for d in np.unique(test.labels)}
        record.add({"model": name, "code": code, "held_out": int(held_out), "roc_auc": auc,
                     "mean_score_normal": float(scores[~positive].mean()),
                     "mean_score_held_out": float(scores[positive].mean()),
                     "n_normal": int((~positive).sum()), "n_held_out": int(positive.sum()),
                     "train_sse_per_image": reconstruction_metrics(model, X_train)["sse_per_image"],
                     "train_seconds": model.train_seconds_})
        scores_by_digit[name] = by_digit
        plotted[name] = (scores, positive, auc)
        histories[name] = model.history_
    figures = os.path.join(out_dir, "figures")
    _plot_histograms(plotted, held_out, os.path.join(figures, "score_histograms.png"))
    _plot_roc(plotted, os.path.join(figures, "roc.png"))
    recipe = {"held_out": int(held_out), "code_sizes": list(code_sizes), "activation": "relu", "output": "relu",
              "loss": "mse", "optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": epochs,
              "score": "reconstruction SSE per image", "n_train": int(X_train.shape[0]),
              "n_test": int(test.images.shape[0]), "dataset": dataset, "seed": seed, "backend": backend, "quick": quick}
    notes = (f"Trained without digit {held_out}; each test image scored by its reconstruction SSE; ROC-AUC for "
             f"detecting digit {held_out} among all test images (sklearn.metrics.roc_auc_score). mean_score_by_digit "
             "(in results.json): the mean score of each test class.")
    return write_results(out_dir, title, rows,
                         extra={"recipe": recipe, "mean_score_by_digit": scores_by_digit,
                                "histories": histories}, notes=notes)
