"""The encoded space of a small, tuned dense autoencoder: error against code size, a 6-D model's
robustness, its t-SNE map and walks between digit centroids.

The configuration is a `scratch-ae search` result (`config=`: a search.json or its dict; its best
lr, weight_decay and dropout, and its network's hidden widths and code activation) or, by
default, the report's: Adam lr 1.2e-3, L2 weight decay 8.8e-5, dropout 0.15.

The network is search.py's: 784-256-K-256-784, ReLU hidden layers and ReLU output, a linear
(identity) code, MSE, Adam, batch 100; dropout (the drop probability) after the encoder's hidden
layer and on the code as the decoder reads it.  The code is linear because a ReLU code of 2-10
units loses units for good (see labs/code_sizes.py, which uses a ReLU code).

1. Code sizes K = 2, 3, ..., 10, each trained with early stopping the scikit-learn way
   (`early_stopping=True`: 10% of the training images held out, seeded, patience 5, at most
   45 epochs, the best epoch's weights kept): train and test SSE per image against K, with PCA's
   curve for the same K beside it (one PCA fit, truncated: labs/code_sizes.py's recipe and
   figure, figures/error_vs_code_size.png).  The rows of results.md are this table.
2. The 6-D model of that sweep is the final model: its test error ("final_6d" in results.json)
   and its loss curves (figures/loss_curves_6d.png).
3. Robustness: test SSE per image against the clean image under Gaussian noise (sigma 0 to 1)
   and square occlusion (fraction p 0 to 0.7), for the 6-D model and for a 6-D denoiser trained
   the same way on Gaussian noise at sigma = 0.45 (labs/denoising.py's levels, seeds and figure,
   figures/robustness.png; "robustness" in results.json).  The denoiser's early stopping watches
   its clean validation loss (the Trainer's validation loss has no noise).
4. t-SNE (labs/latent.py's: perplexity 30, PCA initialisation) of the 6-D codes of the first
   5,000 test images, coloured by digit (figures/tsne_6d.png), scored by trustworthiness and the
   share of same-digit neighbours, in the 6-D code space and in the map.
5. Walks between class centroids of the 6-D test codes, 4 -> 9 and 6 -> 9 in 10 steps, decoded,
   each above the pixel-space blend of the two mean images (figures/walks.png; walk_vs_blend_sse
   per step in results.json).

Quick mode: labs.common's 2,000 / 500 image subset, K = 2, 6, 10, at most 3 epochs with patience 2,
t-SNE of 200 codes with max_iter 300 (50 iterations past the early exaggeration: a smoke test, not
a map); under 40 s on 2 cores.  `epochs=` changes the epoch cap.
"""
import json
import os

import numpy as np

from ..data import DataError
from ..metrics import reconstruction_metrics
from ..pca import PCA
from ..plots import plot_image_rows, plot_loss_curves
from .code_sizes import plot_error_curves
from .common import LabRecord, errors_row, lab_data, train_autoencoder, write_results
from .denoising import OCCLUSIONS, SIGMAS, TRAIN_SIGMA, _plot_curves, corruption
from .latent import NEIGHBOURS, PERPLEXITY, WALK_STEPS, _plot_tsne, same_label_neighbours, tsne

TITLE = "The encoded space: error against code size, a 6-D model's robustness, t-SNE and centroid walks"
REPORT_CONFIG = {"lr": 1.2e-3, "weight_decay": 8.8e-5, "dropout": 0.15}
HIDDEN, CODE_ACTIVATION = (256,), "identity"
CODE_SIZES, QUICK_CODE_SIZES = tuple(range(2, 11)), (2, 6, 10)
FINAL_CODE = 6
EPOCHS, QUICK_EPOCHS = 45, 3
PATIENCE, QUICK_PATIENCE = 5, 2
VALIDATION_FRACTION = 0.1
TSNE_POINTS, QUICK_TSNE_POINTS = 5000, 200
TSNE_ITERATIONS, QUICK_TSNE_ITERATIONS = 1000, 300
WALKS = ((4, 9), (6, 9))
AE_NAME = "ReLU autoencoder"  # the name labs/code_sizes.plot_error_curves draws (ReLU hidden layers and output)


def resolve_config(config=None):
    """(training settings, where they came from): the report's defaults, a search.json path or its dict."""
    settings = {**REPORT_CONFIG, "hidden": list(HIDDEN), "code_activation": CODE_ACTIVATION, "batch_size": 100}
    if config is None:
        return settings, "the report's configuration (lr 1.2e-3, L2 8.8e-5, dropout 0.15)"
    source = "a search result"
    if not isinstance(config, dict):
        source = str(config)
        try:
            with open(config) as f:
                config = json.load(f)
        except FileNotFoundError:
            raise DataError(f"argument --config: no such file: {source}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"argument --config: {source} is not a readable search.json ({type(exc).__name__})") from None
    best = config.get("best", {}).get("params") if isinstance(config, dict) else None
    if not isinstance(best, dict):
        raise DataError(f"argument --config: {source} has no 'best' parameters; give the search.json written by "
                        f"`scratch-ae search`")
    for name in ("lr", "weight_decay", "dropout", "l1", "batch_size"):
        if name in best:
            settings[name] = best[name]
    found = config.get("settings", {})
    settings["hidden"] = [int(best["hidden"])] if "hidden" in best else list(found.get("hidden", HIDDEN))
    settings["code_activation"] = found.get("code_activation", CODE_ACTIVATION)
    return settings, f"the best trial of {source}"


def model_kwargs(settings, code, epochs, patience, noise=None):
    kwargs = dict(sizes=(None, *settings["hidden"], code), activation="relu", output_activation="relu", loss="mse",
                  code_activation=settings["code_activation"], lr=settings["lr"], weight_decay=settings["weight_decay"],
                  dropout=settings["dropout"], batch_size=int(settings["batch_size"]), early_stopping=True,
                  validation_fraction=VALIDATION_FRACTION, patience=patience, noise=noise)
    if "l1" in settings:
        kwargs["l1"] = settings["l1"]
    return kwargs


def robustness_rows(models, images, shape, seed, sigmas=SIGMAS, occlusions=OCCLUSIONS):
    """labs/denoising.py's table: one row per corruption level, "<name>_sse_per_image" per model,
    the same seeded noise for every model."""
    rows = []
    for kind, levels in (("gaussian", sigmas), ("occlusion", occlusions)):
        for i, level in enumerate(levels):
            row = {"corruption": kind, "level": float(level)}
            for name, model in models.items():
                rng = np.random.default_rng([seed, 1 if kind == "gaussian" else 2, i])
                corrupt = None if level == 0 else corruption(kind, level, shape)
                row[f"{name}_sse_per_image"] = reconstruction_metrics(model, images, corrupt=corrupt,
                                                                      rng=rng)["sse_per_image"]
            rows.append(row)
    return rows


def centroid_walk(model, codes, labels, images, a, b, steps=WALK_STEPS):
    """labs/latent.py's walk: decode (1 - t) h_a + t h_b for `steps` values of t in [0, 1], h_d the
    mean code of digit d; returns (decoded, the same blend of the two mean images, SSE per step)."""
    alphas = np.linspace(0.0, 1.0, steps)
    h_a, h_b = codes[labels == a].mean(axis=0), codes[labels == b].mean(axis=0)
    decoded = model.inverse_transform(((1 - alphas)[:, None] * h_a + alphas[:, None] * h_b).astype(np.float32))
    m_a, m_b = images[labels == a].mean(axis=0), images[labels == b].mean(axis=0)
    blended = (1 - alphas)[:, None] * m_a + alphas[:, None] * m_b
    return decoded, blended, ((decoded - blended) ** 2).sum(axis=1)


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", config=None, epochs=None,
        engine="auto"):
    settings, source = resolve_config(config)
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    patience = QUICK_PATIENCE if quick else PATIENCE
    code_sizes = QUICK_CODE_SIZES if quick else CODE_SIZES
    width, shape = train.images.shape[1], train.image_shape
    for a, b in WALKS:
        if not (np.any(test.labels == a) and np.any(test.labels == b)):
            raise DataError(f"argument --dataset: {dataset} has no test images of class {a} or {b} for the walks")
    figures = os.path.join(out_dir, "figures")
    record = LabRecord(out_dir, TITLE)
    common = dict(record=record, epochs=epochs, backend=backend, seed=seed, progress=progress, engine=engine)

    # 1. error against code size, PCA beside
    pca = PCA(max(code_sizes), backend=backend).fit(train.images)
    rows, models = record.rows, {}
    for k in code_sizes:
        record.add({**errors_row("PCA", pca.truncate(k), train.images, test.images), "code_size": k,
                     "explained_variance_ratio": float(pca.explained_variance_ratio_[:k].sum())})
    for k in code_sizes:
        model = train_autoencoder(train.images, **common, **model_kwargs(settings, k, epochs, patience))
        models[k] = model
        h = model.history_
        record.add({**errors_row(AE_NAME, model, train.images, test.images), "code_size": k,
                     "epochs_run": h["epochs_run"], "best_epoch": h["best_epoch"],
                     "early_stopped": bool(h["stop_reason"]) and not h["diverged"], "diverged": h["diverged"],
                     "train_seconds": model.train_seconds_})
    net = "-".join(map(str, [width, *settings["hidden"], "k", *settings["hidden"][::-1], width]))
    plot_error_curves(rows, os.path.join(figures, "error_vs_code_size.png"),
                      f"{dataset}: error against code size ({net}, {settings['code_activation']} code)")

    # 2. the final 6-D model
    final = models[FINAL_CODE] if FINAL_CODE in models else train_autoencoder(
        train.images, **common, **model_kwargs(settings, FINAL_CODE, epochs, patience))
    final_test = reconstruction_metrics(final, test.images)
    plot_loss_curves(final.history_, os.path.join(figures, "loss_curves_6d.png"),
                     title=f"the {FINAL_CODE}-D model: loss curves (MSE per pixel; training adds the penalties)",
                     ylabel="MSE per pixel", test_value=final_test["mse_per_pixel"], test_label="test MSE per pixel")

    # 3. robustness of the 6-D model and of a 6-D denoiser
    denoiser = train_autoencoder(train.images, **common,
                                 **model_kwargs(settings, FINAL_CODE, epochs, patience, noise=f"gaussian:{TRAIN_SIGMA}"))
    labels = {"final": f"{FINAL_CODE}-D model", "denoising": f"{FINAL_CODE}-D denoiser (sigma {TRAIN_SIGMA:g})"}
    robustness = robustness_rows({"final": final, "denoising": denoiser}, test.images, shape, seed)
    _plot_curves(robustness, [("final_sse_per_image", labels["final"], "o"),
                              ("denoising_sse_per_image", labels["denoising"], "s")],
                 os.path.join(figures, "robustness.png"), TRAIN_SIGMA)

    # 4. t-SNE of the 6-D test codes
    from sklearn.manifold import trustworthiness
    codes = final.transform(test.images)
    n_points = QUICK_TSNE_POINTS if quick else TSNE_POINTS
    max_iter = QUICK_TSNE_ITERATIONS if quick else TSNE_ITERATIONS
    points, point_labels = codes[:n_points], test.labels[:n_points]
    embedding, kl = tsne(points, 2, max_iter, seed)
    tsne_result = {"n_points": int(len(points)), "max_iter": max_iter,
                   "perplexity": min(PERPLEXITY, (len(points) - 1) / 3), "kl_divergence": kl,
                   "same_label_neighbours_code": same_label_neighbours(points, point_labels),
                   "same_label_neighbours_tsne": same_label_neighbours(embedding, point_labels),
                   "trustworthiness": float(trustworthiness(points, embedding, n_neighbors=NEIGHBOURS))}
    _plot_tsne(embedding, point_labels, os.path.join(figures, "tsne_6d.png"),
               f"t-SNE of {len(points)} test codes of the {FINAL_CODE}-D model, coloured by digit")

    # 5. centroid walks
    walk_rows, walk_labels, walks = [], [], {}
    for a, b in WALKS:
        decoded, blended, sse = centroid_walk(final, codes, test.labels, test.images, a, b)
        walk_rows += [decoded, blended]
        walk_labels += [f"decoded code-centroid walk {a} -> {b}", f"pixel-space mean blend {a} -> {b}"]
        walks[f"{a}->{b}"] = {"walk_vs_blend_sse": sse.tolist(),
                              "mean_images_sse": float(((blended[0] - blended[-1]) ** 2).sum())}
    plot_image_rows(walk_rows, walk_labels, shape, os.path.join(figures, "walks.png"),
                    title=f"walks between digit centroids of the {FINAL_CODE}-D codes, {WALK_STEPS} steps")

    final_row = {**errors_row(f"{FINAL_CODE}-D model", final, train.images, test.images),
                 "test_mse_per_pixel": final_test["mse_per_pixel"], "epochs_run": final.history_["epochs_run"],
                 "best_epoch": final.history_["best_epoch"]}
    denoiser_row = {**errors_row(labels["denoising"], denoiser, train.images, test.images),
                    "epochs_run": denoiser.history_["epochs_run"], "best_epoch": denoiser.history_["best_epoch"]}
    at = {r["level"]: r for r in robustness if r["corruption"] == "gaussian"}[float(TRAIN_SIGMA)]
    recipe = {"config_source": source, **{k: settings[k] for k in ("lr", "weight_decay", "dropout", "batch_size")},
              "hidden": settings["hidden"], "code_activation": settings["code_activation"], "activation": "relu",
              "output": "relu", "loss": "mse", "optimizer": "adam", "max_epochs": epochs, "patience": patience,
              "validation_fraction": VALIDATION_FRACTION, "code_sizes": list(code_sizes), "final_code": FINAL_CODE,
              "denoiser_noise": f"gaussian:{TRAIN_SIGMA:g}", "sigmas": list(SIGMAS), "occlusions": list(OCCLUSIONS),
              "tsne_points": int(len(points)), "walks": [list(w) for w in WALKS], "walk_steps": WALK_STEPS,
              "n_train": int(train.images.shape[0]), "n_test": int(test.images.shape[0]), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick}
    notes = (f"Configuration: {source}; network {net} (ReLU, {settings['code_activation']} code), MSE, Adam lr "
             f"{settings['lr']:.3g}, L2 weight decay {settings['weight_decay']:.3g}, dropout {settings['dropout']:.3g}; "
             f"each code size trained with early stopping (validation {VALIDATION_FRACTION:g} of the training "
             f"images, patience {patience}, at most {epochs} epochs). SSE per image = squared error summed over "
             f"pixels. Final {FINAL_CODE}-D model: test SSE per image {final_row['test_sse_per_image']:.2f}; at "
             f"sigma {TRAIN_SIGMA:g} it scores {at['final_sse_per_image']:.2f} against the denoiser's "
             f"{at['denoising_sse_per_image']:.2f}. t-SNE: trustworthiness {tsne_result['trustworthiness']:.3f}, "
             f"same-digit neighbours {tsne_result['same_label_neighbours_tsne']:.2f} in the map, "
             f"{tsne_result['same_label_neighbours_code']:.2f} in the 6-D codes.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe, "final_6d": final_row, "denoiser_6d": denoiser_row,
                                "robustness": robustness, "tsne": tsne_result, "walks": walks,
                                "histories": {f"code {k}": m.history_ for k, m in models.items()}
                                | {"denoiser": denoiser.history_}}, notes=notes)
