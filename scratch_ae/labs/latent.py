"""The latent space of the standard autoencoder: t-SNE maps, a walk from 4 to 9, outputs during training.

* t-SNE (sklearn.manifold.TSNE, perplexity 30, PCA initialisation) of the
  256-dimensional test codes, in 2-D and 3-D, coloured by digit
  (figures/tsne_2d.png, tsne_3d.png).  Each map is scored by its final KL
  divergence, its trustworthiness (sklearn.manifold.trustworthiness, 10
  neighbours: 1 means every embedding neighbourhood was a code-space one) and
  the fraction of each point's 10 nearest neighbours with the same digit
  (also measured in the 256-D code space itself, for reference).
* A walk between the code centroids of two digits (4 to 9 by default): the
  mean test code of each class, h(a) = (1 - a) h_4 + a h_9 for 10 values of a
  from 0 to 1, decoded; under it, the same blend of the two pixel-space mean
  images (figures/walk.png).
* Outputs during training: a Trainer callback records the reconstructions of
  10 fixed test images after chosen epochs (figures/training_snapshots.png,
  with the error on those images in the results).

What full mode shows (its figures: benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments): most of the fixed images' reconstruction error is
gone after the first epoch.  The t-SNE maps keep the code space's digit
neighbourhoods (about as many same-digit neighbours as in the 256-D codes, high
trustworthiness); 3 and 5, 4 and 9, 7 and 9 touch.  The 3-D map costs several
times the 2-D one.  The decoded walk from the 4 centroid to the 9 centroid
looks much like the pixel-space blend of the mean images (walk_vs_blend_sse in
results.json, small next to the distance between the two mean images): this
wide network's decoder is close to linear between two centroids (the walk
stays near the straight line between its two decoded ends).

Recipe (full mode): the standard 784-256-784 ReLU/ReLU network, MSE, the
60,000 training images, Adam lr 1e-3, batch 100, 20 epochs, seed 0,
snapshots after epochs 1, 2, 5, 10 and 20; t-SNE of the first 5,000 test
codes with max_iter 1000.  Quick mode: labs.common's 2,000 / 500 image subset,
2 epochs (snapshots after 1 and 2), t-SNE of 300 codes with max_iter 500 (the
first 250 iterations are the early-exaggeration phase, so 250, the least
scikit-learn accepts, never starts the real optimisation).
"""
import inspect
import os
import time

import numpy as np

from ..models import Autoencoder
from ..optimizers import make_optimizer
from ..plots import _save, plot_image_rows
from ..training import Trainer
from .common import LabRecord, errors_row, lab_data, write_results

EPOCHS, QUICK_EPOCHS = 20, 2
SNAPSHOT_EPOCHS, QUICK_SNAPSHOT_EPOCHS = (1, 2, 5, 10, 20), (1, 2)
TSNE_POINTS, QUICK_TSNE_POINTS = 5000, 300
TSNE_ITERATIONS, QUICK_TSNE_ITERATIONS = 1000, 500
TITLE = "The latent space: t-SNE, a walk between digits, outputs during training"
PERPLEXITY = 30.0
WALK_FROM, WALK_TO, WALK_STEPS = 4, 9, 10
N_FIXED, NEIGHBOURS = 10, 10


def tsne(codes, n_components, max_iter, seed=0, perplexity=PERPLEXITY):
    """sklearn TSNE of codes (N, K) -> (embedding (N, n_components), kl_divergence).

    The iteration argument is `max_iter` since scikit-learn 1.5 and `n_iter` before; both are handled."""
    from sklearn.manifold import TSNE
    name = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    model = TSNE(n_components=n_components, perplexity=min(perplexity, (len(codes) - 1) / 3), init="pca",
                 learning_rate="auto", random_state=seed, **{name: max_iter})
    embedding = model.fit_transform(np.asarray(codes, dtype=np.float32))
    return embedding, float(model.kl_divergence_)


def same_label_neighbours(points, labels, k=NEIGHBOURS):
    """Mean fraction of each point's k nearest neighbours (itself excluded) that share its label."""
    from sklearn.neighbors import NearestNeighbors
    k = min(k, len(points) - 1)
    index = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)[:, 1:]
    return float((labels[index] == labels[:, None]).mean())


def _plot_tsne(embedding, labels, path, title):
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(6.5, 5.5))
    three_d = embedding.shape[1] == 3
    ax = fig.add_subplot(projection="3d" if three_d else None)
    cmap = plt.get_cmap("tab10")
    for digit in np.unique(labels):
        pts = embedding[labels == digit]
        ax.scatter(*pts.T, s=4, color=cmap(int(digit) % 10), label=str(digit), alpha=0.8)
    ax.legend(markerscale=3, fontsize=7, loc="upper right", title="label", title_fontsize=7)
    ax.set_title(title, fontsize=9)
    if not three_d:
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)


def train_with_snapshots(X_train, fixed, epochs, snapshot_epochs, backend="numpy", seed=0, progress=False, width=None,
                         record=None, engine="auto"):
    """Train the standard network with a Trainer whose callback records decode(encode(fixed)) after the
    chosen epochs; returns (model, {epochs done: reconstructions (n, D)}) with 0 = before training.

    record: the lab's LabRecord (the lab passes it, so that an interrupted lab resumes); None trains
    here and now (the notebooks)."""
    width = width or X_train.shape[1]
    model = Autoencoder(sizes=[width, 256], activation="relu", output_activation="relu", loss="mse",
                        backend=backend, seed=seed, epochs=epochs, progress=progress, engine=engine)
    snapshots = {0: model.inverse_transform(model.transform(fixed))}

    def snapshot(trainer, epoch):
        if epoch + 1 in snapshot_epochs:
            snapshots[epoch + 1] = trainer.model.inverse_transform(trainer.model.transform(fixed))

    trainer = Trainer(model, make_optimizer("adam", 1e-3, engine=engine), epochs=epochs, batch_size=100, seed=seed,
                      progress=progress, callbacks=[snapshot])
    if record is None:
        t0 = time.perf_counter()
        model.history_ = trainer.fit(X_train)
        model.train_seconds_ = time.perf_counter() - t0
    else:
        record.train(trainer, X_train, keep={"snapshots": snapshots})  # sets history_ and train_seconds_ too
    return model, snapshots


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None,
        walk=(WALK_FROM, WALK_TO), engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    snapshot_epochs = tuple(e for e in (QUICK_SNAPSHOT_EPOCHS if quick else SNAPSHOT_EPOCHS) if e <= epochs)
    if epochs not in snapshot_epochs:
        snapshot_epochs += (epochs,)
    n_points = QUICK_TSNE_POINTS if quick else TSNE_POINTS
    max_iter = QUICK_TSNE_ITERATIONS if quick else TSNE_ITERATIONS
    width, shape = train.images.shape[1], train.image_shape
    figures = os.path.join(out_dir, "figures")

    fixed = test.images[:N_FIXED]
    record = LabRecord(out_dir, TITLE)
    model, snapshots = train_with_snapshots(train.images, fixed, epochs, snapshot_epochs, backend, seed, progress,
                                            record=record, engine=engine)
    snapshot_sse = {e: float(((r - fixed) ** 2).sum(axis=1).mean()) for e, r in snapshots.items()}
    plot_image_rows([fixed] + [snapshots[e] for e in sorted(snapshots)],
                    ["input"] + [("before training" if e == 0 else f"after epoch {e}") + f" (SSE {snapshot_sse[e]:.1f})"
                                 for e in sorted(snapshots)],
                    shape, os.path.join(figures, "training_snapshots.png"),
                    title="reconstructions of fixed test images during training")

    codes = model.transform(test.images)
    labels = test.labels
    points, point_labels = codes[:n_points], labels[:n_points]
    rows = record.rows
    record.add({"space": f"code ({codes.shape[1]}-D)", "n_points": int(len(points)),
                "same_label_neighbours": same_label_neighbours(points, point_labels)})
    embeddings = {}
    from sklearn.manifold import trustworthiness
    for dims in (2, 3):
        t0 = time.perf_counter()
        embedding, kl = tsne(points, dims, max_iter, seed)
        seconds = time.perf_counter() - t0
        embeddings[dims] = embedding
        record.add({"space": f"t-SNE {dims}-D", "n_points": int(len(points)),
                     "same_label_neighbours": same_label_neighbours(embedding, point_labels),
                     "trustworthiness": float(trustworthiness(points, embedding, n_neighbors=NEIGHBOURS)),
                     "kl_divergence": kl, "max_iter": max_iter, "perplexity": min(PERPLEXITY, (len(points) - 1) / 3),
                     "seconds": seconds})
        _plot_tsne(embedding, point_labels, os.path.join(figures, f"tsne_{dims}d.png"),
                   f"t-SNE ({dims}-D) of {len(points)} test codes, coloured by label")

    a, b = walk
    centroid_a, centroid_b = codes[labels == a].mean(axis=0), codes[labels == b].mean(axis=0)
    alphas = np.linspace(0.0, 1.0, WALK_STEPS)
    walk_codes = ((1 - alphas)[:, None] * centroid_a + alphas[:, None] * centroid_b).astype(np.float32)
    decoded = model.inverse_transform(walk_codes)
    mean_a, mean_b = test.images[labels == a].mean(axis=0), test.images[labels == b].mean(axis=0)
    blended = (1 - alphas)[:, None] * mean_a + alphas[:, None] * mean_b
    walk_vs_blend = ((decoded - blended) ** 2).sum(axis=1)  # SSE per step between the two rows
    plot_image_rows([decoded, blended], [f"decoded code-centroid walk {a} -> {b}", f"pixel-space mean blend {a} -> {b}"],
                    shape, os.path.join(figures, "walk.png"), title=f"from digit {a} to digit {b} in {WALK_STEPS} steps")

    recipe = {"hidden": 256, "activation": "relu", "output": "relu", "loss": "mse", "optimizer": "adam", "lr": 1e-3,
              "batch_size": 100, "epochs": epochs, "snapshot_epochs": list(snapshot_epochs),
              "tsne_points": int(len(points)), "tsne_max_iter": max_iter, "perplexity": PERPLEXITY,
              "walk": [int(a), int(b)], "walk_steps": WALK_STEPS,
              "n_train": int(train.images.shape[0]), "n_test": int(test.images.shape[0]), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick}
    notes = (f"same_label_neighbours: mean fraction of a point's {NEIGHBOURS} nearest neighbours with its label; "
             f"trustworthiness with {NEIGHBOURS} neighbours (sklearn). Snapshots: SSE per image on the {N_FIXED} fixed "
             "test images after each chosen epoch: "
             + ", ".join(f"epoch {e}: {snapshot_sse[e]:.2f}" for e in sorted(snapshot_sse)) + ".")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe, "snapshot_sse": {str(e): v for e, v in sorted(snapshot_sse.items())},
                                "embedding_shapes": {f"{d}d": list(e.shape) for d, e in embeddings.items()},
                                "walk_alphas": alphas.tolist(), "walk_vs_blend_sse": walk_vs_blend.tolist(),
                                "model": errors_row(f"{width}-256-{width} ReLU", model, train.images, test.images),
                                "history": model.history_}, notes=notes)
