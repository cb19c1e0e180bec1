"""The variational autoencoder lab: likelihoods in nats, samples, the 2-D latent plane, t-SNE, interpolation, denoising.

(a) The IWAE paper's one-stochastic-layer MNIST VAE (Burda, Grosse and Salakhutdinov 2016):
    784-200-200-50 with the mirrored decoder, a Bernoulli likelihood, k = 1 training
    (`scratch_ae.models.vae.VariationalAutoencoder`, ReLU hidden units, its default; the paper
    used tanh).  Training images are binarised dynamically (every step binarises its batch anew,
    so each image is re-sampled every epoch); the last 5,000 training images are held out for
    validation; the 10,000 test images are binarised ONCE with numpy.random.default_rng(0)
    (`TEST_BINARIZATION_SEED`), whatever the lab's seed.  Reported per test image, in nats:
    the negative ELBO with one sampled z per image and the importance-sampled negative
    log-likelihood with k = 5000 samples from q(z|x), beside the published 86.76 (the paper's
    VAE, k = 1, one stochastic layer, trained 3,280 epochs at batch 20); the number of active
    units (Var_x mu_k(x) > 0.01); the learning curve (negative ELBO per epoch, training and
    validation).  Both figures are compared on the same test images (the first `is_images`).
(b) 100 samples from the prior, decoded (pixel probabilities, not binarised).
(c) A second, small model with a 2-D latent (784-200-200-2): its decoder over a 20 x 20 grid of
    z whose coordinates are the standard normal's quantiles at 0.05 ... 0.95 (Kingma and
    Welling's figure 4), and its test means scattered over the plane, coloured by digit.
(d) t-SNE of the 50-D test means mu(x) coloured by digit (labs.latent's helpers).
(e) Linear interpolations between test images of different digits: the line from mu(x_a) to
    mu(x_b) decoded in 10 steps (ends included), the two binarised images beside it.
(f) Coloured MNIST with Gaussian noise (sigma 0.3, clipped, fresh every step; one fixed draw for
    the test set), as in the colored-denoise lab: a convolutional VAE (stride-2 4x4 convolutions,
    Gaussian likelihood with a fixed sigma) trained with the NOISY image in and the CLEAN image as
    the likelihood's target (`loss_and_grads(noisy, target=clean)`, which the Trainer's noise=
    does), beside that lab's plain stride-2 conv autoencoder trained the same way.  Both are
    evaluated on the noisy test images against the clean ones: MSE per pixel and SNR
    (metrics.snr_db); the VAE's output is its decoder's mean at z = mu.  Image rows.

Recipe (full mode): Adam 1e-3 with a cosine decay to 0 applied per step (scratch_ae.schedules.Cosine),
batch 100, 40 epochs (the 2-D model: 20), no KL warm-up; the coloured models 5 epochs each, batch 128,
Adam 1e-3 (the conv autoencoder with the colored-denoise lab's weight decay 1e-5).  Chosen to fit a
lab budget of about half an hour on 2 cores (measured times: benchmarks/RESULTS.md, and `seconds` in
results.json); the k = 5000 importance sampling is the costliest evaluation (5000 decoder passes per
image), hence 2,000 test images by default (`is_images=10000` for all of them).
benchmarks/vae_recipe_search.py is the long run toward 86.76 (benchmarks/RESULTS.md).

Quick mode (< 60 s): labs.common's 2,000 / 500 image subsets (200 of the training images held out),
2 epochs, k = 50, small coloured networks for 1 epoch, t-SNE of 300 means.
"""
import os
import time

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..data import parse_corruption
from ..metrics import snr_db
from ..models.conv import ConvAutoencoder
from ..models.vae import VariationalAutoencoder, binarize
from ..optimizers import make_optimizer
from ..plots import _footnote, _save, per_image_squared_error, plot_image_rows, plt, to_image
from ..schedules import Cosine
from ..training import Trainer
from .common import LabRecord, lab_data, write_results
from .latent import _plot_tsne, same_label_neighbours, tsne

TITLE = "The variational autoencoder: nats, samples, latent plane, denoising"
PUBLISHED = {"burda_2016_vae_k1_one_layer_nll": 86.76}
SIZES, LATENT = (784, 200, 200), 50
TEST_BINARIZATION_SEED = 0          # the test set's one binarisation, the same for every seed and run
VAL_BINARIZATION_SEED = 1
LR, BATCH = 1e-3, 100
EPOCHS, QUICK_EPOCHS = 40, 2
EPOCHS_2D, QUICK_EPOCHS_2D = 20, 2
VAL_IMAGES, QUICK_VAL_IMAGES = 5000, 200
IS_SAMPLES, QUICK_IS_SAMPLES = 5000, 50
IS_SAMPLES_2D = 1000                # the 2-D model's k (at most is_samples): a 2-D posterior needs far fewer
IS_IMAGES, QUICK_IS_IMAGES = 2000, 500
GRID_2D, GRID_QUANTILES = 20, (0.05, 0.95)
PRIOR_SAMPLES = 100
TSNE_POINTS, QUICK_TSNE_POINTS = 3000, 300
TSNE_ITERATIONS, QUICK_TSNE_ITERATIONS = 1000, 500
PAIRS, STEPS = ((4, 9), (1, 7), (3, 8), (0, 6)), 10
# (f) coloured MNIST
NOISE_SIGMA = 0.3
COLORED_EPOCHS, QUICK_COLORED_EPOCHS = 5, 1
COLORED_BATCH = 128
VAE_CHANNELS, QUICK_VAE_CHANNELS = (32, 64), (8, 16)
VAE_LATENT, QUICK_VAE_LATENT = 64, 16
VAE_SIGMA = 0.1                     # the Gaussian likelihood's fixed sigma (pixels in [0, 1])
AE_CHANNELS, QUICK_AE_CHANNELS = (128, 64, 32, 16), (16, 8, 8, 4)  # the colored-denoise lab's network
N_ROW_IMAGES = 10


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None, is_samples=None,
        is_images=None, colored=True, engine="auto"):
    """Run the lab; writes results.json, results.md and figures/*.png under out_dir and returns the results.

    epochs : the 50-D model's epochs (default 40, quick 2); the 2-D model trains half as many (at least 1)
    unless that is the default.  is_samples : k of the importance-sampled NLL (default 5000, quick 50).
    is_images : how many (first) binarised test images the IS estimate uses (default 2000, quick all 500).
    colored : False skips part (f).
    """
    if dataset != "mnist":
        raise ValueError(f"argument --dataset: the vae lab runs on binarised mnist (its coloured part loads "
                         f"colored-mnist itself), got {dataset!r}")
    t_lab = time.perf_counter()
    seconds, clock = {}, [time.perf_counter()]

    def lap(name):  # wall seconds of each part, for results.json
        now = time.perf_counter()
        seconds[name] = now - clock[0]
        clock[0] = now
    train, test = lab_data(dataset, quick)
    shape = train.image_shape
    epochs_2d = (QUICK_EPOCHS_2D if quick else EPOCHS_2D) if epochs is None else max(1, epochs // 2)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    k = int(is_samples or (QUICK_IS_SAMPLES if quick else IS_SAMPLES))
    n_val = QUICK_VAL_IMAGES if quick else VAL_IMAGES
    X_train, X_val = train.images[:-n_val], binarize(train.images[-n_val:], np.random.default_rng(VAL_BINARIZATION_SEED))
    X_test = binarize(test.images, np.random.default_rng(TEST_BINARIZATION_SEED))
    labels = test.labels
    n_is = min(int(is_images or (QUICK_IS_IMAGES if quick else IS_IMAGES)), X_test.shape[0])
    figures = os.path.join(out_dir, "figures")

    lap("data")
    record = LabRecord(out_dir, TITLE)
    rows = record.rows
    # (a) the 784-200-200-50 VAE: train, then nats per test image
    model, history = _train_dense(X_train, X_val, LATENT, epochs, backend, seed, progress, record, engine)
    main_row = _likelihood_row(f"VAE {'-'.join(map(str, SIZES))}-{LATENT} (this run)", model, X_test, n_is, k,
                               history, epochs)
    main_row = record.add(dict(part="(a) binarised MNIST", **main_row))
    lap("(a) 50-D model: training and evaluation")
    # (c) the 2-D latent model
    model_2d, history_2d = _train_dense(X_train, X_val, 2, epochs_2d, backend, seed, progress, record, engine)
    row_2d = _likelihood_row(f"VAE {'-'.join(map(str, SIZES))}-2 (2-D latent)", model_2d, X_test, n_is,
                             min(k, IS_SAMPLES_2D), history_2d, epochs_2d)
    record.add(dict(part="(c) binarised MNIST", **row_2d))
    lap("(c) 2-D model: training and evaluation")
    record.add({"part": "(a) binarised MNIST", "model": f"VAE {'-'.join(map(str, SIZES))}-{LATENT}, k = 1, Burda et al. "
             "2016 (published)", "test_images": 10000, "nll_is": PUBLISHED["burda_2016_vae_k1_one_layer_nll"],
             "is_samples": 5000, "epochs": 3280})

    _plot_learning_curve(history, main_row, os.path.join(figures, "learning_curve.png"), X_val.shape[0])
    # (b) samples from the prior
    samples = model.sample(PRIOR_SAMPLES, rng=np.random.default_rng([seed, 7]))
    _plot_mosaic(samples, 10, 10, shape, os.path.join(figures, "prior_samples.png"),
                 f"{PRIOR_SAMPLES} samples from the prior: z ~ N(0, I), decoded",
                 note="Each image is the decoder's pixel probabilities p(x = 1 | z) for one z drawn from N(0, I) "
                      "(not a binarised sample). 50-D latent model.")
    # (c) the 2-D plane: decoded grid and the test means
    quantiles = np.linspace(*GRID_QUANTILES, GRID_2D)
    from scipy.stats import norm
    z_values = norm.ppf(quantiles)
    z1, z2 = np.meshgrid(z_values, z_values[::-1])  # rows: z2 from high (top) to low
    grid = model_2d.inverse_transform(np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32))
    _plot_mosaic(grid, GRID_2D, GRID_2D, shape, os.path.join(figures, "latent_grid_2d.png"),
                 "2-D latent VAE: the decoder over the latent plane", axis_values=z_values,
                 note=f"z = (z1, z2) on a {GRID_2D} x {GRID_2D} grid of the standard normal's quantiles "
                      f"{GRID_QUANTILES[0]:g} ... {GRID_QUANTILES[1]:g} (Kingma & Welling 2014, fig. 4); each image is "
                      "the decoded pixel probabilities.")
    means_2d = model_2d.transform(X_test)
    _plot_scatter_2d(means_2d, labels, os.path.join(figures, "latent_means_2d.png"),
                     f"2-D latent VAE: posterior means mu(x) of the {len(labels)} binarised test images")
    lap("figures (a)-(c)")
    # (d) t-SNE of the 50-D test means
    n_points = QUICK_TSNE_POINTS if quick else TSNE_POINTS
    means = model.transform(X_test)
    points, point_labels = means[:n_points], labels[:n_points]
    t0 = time.perf_counter()
    embedding, kl = tsne(points, 2, QUICK_TSNE_ITERATIONS if quick else TSNE_ITERATIONS, seed)
    tsne_info = {"n_points": int(len(points)), "kl_divergence": kl, "seconds": time.perf_counter() - t0,
                 "same_label_neighbours_tsne": same_label_neighbours(embedding, point_labels),
                 "same_label_neighbours_means": same_label_neighbours(points, point_labels),
                 "same_label_neighbours_2d_means": same_label_neighbours(means_2d[:n_points], point_labels)}
    _plot_tsne(embedding, point_labels, os.path.join(figures, "tsne_means.png"),
               f"t-SNE of {len(points)} test images' 50-D posterior means mu(x), coloured by digit")
    lap("(d) t-SNE")
    # (e) interpolation between test images of different digits; and reconstructions
    interp_rows, interp_labels, pairs_used = [], [], []
    for a, b in PAIRS:
        ia, ib = np.flatnonzero(labels == a), np.flatnonzero(labels == b)
        if not len(ia) or not len(ib):
            continue
        xa, xb = X_test[ia[0]], X_test[ib[0]]
        line = model.interpolate(xa, xb, steps=STEPS)
        interp_rows.append(np.concatenate([xa[None], line, xb[None]]))
        interp_labels.append(f"test image {int(ia[0])} (a {a}) | mu(x_a) -> mu(x_b) decoded in {STEPS} steps | "
                             f"test image {int(ib[0])} (a {b})")
        pairs_used.append([int(a), int(b), int(ia[0]), int(ib[0])])
    plot_image_rows(interp_rows, interp_labels, shape, os.path.join(figures, "interpolation.png"),
                    title="linear interpolation in the 50-D latent space between two binarised test images")
    fixed = X_test[:N_ROW_IMAGES]
    plot_image_rows([fixed, model.backend_.to_numpy(model.reconstruct(fixed)),
                     model_2d.backend_.to_numpy(model_2d.reconstruct(fixed))],
                    ["binarised test images", "50-D VAE: p(x | z = mu(x))", "2-D VAE: p(x | z = mu(x))"], shape,
                    os.path.join(figures, "reconstructions.png"))

    # (f) coloured MNIST denoising
    colored_results = {}
    if colored:
        colored_results = _colored(quick, backend, seed, progress, figures, record, engine)
    lap("(e) interpolation and (f) coloured MNIST")

    recipe = {"sizes": list(SIZES), "latent": LATENT, "activation": "relu", "likelihood": "bernoulli",
              "binarize": "dynamic (training), once with default_rng(0) (test)", "optimizer": "adam", "lr": LR,
              "lr_schedule": "cosine per step, to 0", "batch_size": BATCH, "epochs": epochs, "epochs_2d": epochs_2d,
              "kl_warmup": 0, "beta": 1.0, "n_train": int(X_train.shape[0]), "n_val": int(X_val.shape[0]),
              "n_test": int(X_test.shape[0]), "is_samples": k, "is_samples_2d": min(k, IS_SAMPLES_2D),
              "is_images": n_is, "test_binarization_seed": TEST_BINARIZATION_SEED, "dataset": dataset,
              "quick": quick, "backend": backend, "seed": seed,
              "colored": None if not colored else {
                  "noise": f"gaussian:{NOISE_SIGMA} (clipped)", "epochs": QUICK_COLORED_EPOCHS if quick else COLORED_EPOCHS,
                  "batch_size": COLORED_BATCH, "vae_channels": list(QUICK_VAE_CHANNELS if quick else VAE_CHANNELS),
                  "vae_latent": QUICK_VAE_LATENT if quick else VAE_LATENT, "vae_sigma": VAE_SIGMA,
                  "ae_channels": list(QUICK_AE_CHANNELS if quick else AE_CHANNELS), "ae_weight_decay": 1e-5,
                  "target": "clean image (noisy input)"}}
    notes = (f"Nats per test image. neg_elbo: -ELBO with one sampled z per image; nll_is: -log p(x) estimated "
             f"with is_samples importance samples from q(z|x) (Burda et al.), both on the same first test_images "
             f"of the 10,000 test images binarised once (default_rng({TEST_BINARIZATION_SEED})); neg_elbo_all_test: "
             f"-ELBO on all of them. active_units: latent units with Var_x mu_k(x) > 0.01. "
             f"Coloured MNIST (f): MSE per pixel and SNR in dB (10 log10(sum clean^2 / sum (estimate - clean)^2)) "
             f"of the output for the noisy test images (sigma {NOISE_SIGMA}) against the clean ones; both models "
             f"were trained noisy in, clean out.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe, "published": PUBLISHED, "history": history,
                                "history_2d": history_2d, "tsne": tsne_info, "interpolation_pairs": pairs_used,
                                "grid_2d_z_values": z_values.tolist(), "colored": colored_results,
                                "seconds": seconds, "lab_seconds": time.perf_counter() - t_lab}, notes=notes)


# ---------------------------------------------------------------------------------------------- training
def _train_dense(X_train, X_val, latent, epochs, backend, seed, progress, record, engine="auto"):
    """The 784-200-200-latent VAE trained as VariationalAutoencoder.fit does, with a per-step cosine decay."""
    model = VariationalAutoencoder(sizes=SIZES, latent=latent, lr=LR, batch_size=BATCH, epochs=epochs,
                                   backend=backend, seed=seed, progress=progress, engine=engine)
    trainer = Trainer(model, make_optimizer("adam", LR, engine=engine), epochs=epochs, batch_size=BATCH, seed=seed,
                      progress=progress, lr_schedule=Cosine(), schedule_per="step",
                      callbacks=[model.kl_warmup_callback])
    model.start_epoch(0)
    history = record.train(trainer, X_train, X_val)  # sets history_, train_seconds_ and n_features_in_
    return model, history


def _likelihood_row(name, model, X_test, n_is, k, history, epochs):
    subset = X_test[:n_is]
    t0 = time.perf_counter()
    nll = model.nll_importance_sampled(subset, k=k, rng=np.random.default_rng(2), per_image=True)
    is_seconds = time.perf_counter() - t0
    parts = model.kl_and_reconstruction(X_test, rng=np.random.default_rng(1))
    return {"model": name, "test_images": int(n_is),
            "neg_elbo": model.negative_elbo(subset, rng=np.random.default_rng(1)),
            "nll_is": float(nll.mean()), "nll_is_standard_error": float(nll.std(ddof=1) / np.sqrt(len(nll)))
            if len(nll) > 1 else None, "is_samples": int(k),
            "neg_elbo_all_test": parts["negative_elbo"], "kl_all_test": parts["kl"],
            "reconstruction_all_test": parts["reconstruction"], "active_units": model.active_units(X_test),
            "epochs": int(history["epochs_run"]), "train_seconds": float(model.train_seconds_),
            "is_seconds": is_seconds}


# ---------------------------------------------------------------------------------------------- (f)
def _colored(quick, backend, seed, progress, figures, record, engine="auto"):
    from .colored_denoise import _reconstruct
    train, test = lab_data("colored-mnist", quick)
    shape = train.image_shape
    epochs = QUICK_COLORED_EPOCHS if quick else COLORED_EPOCHS
    noise = parse_corruption(f"gaussian:{NOISE_SIGMA}", shape)
    noisy_test = noise(test.images, np.random.default_rng([seed, 99]))  # as the colored-denoise lab draws it
    clean = test.images
    record.add({"part": "(f) coloured MNIST", "model": f"noisy input (Gaussian sigma {NOISE_SIGMA}, clipped)",
                "test_mse_per_pixel": float(((noisy_test - clean) ** 2).mean()), "test_snr_db": snr_db(noisy_test, clean)})
    ae = ConvAutoencoder(input_shape=shape, channels=QUICK_AE_CHANNELS if quick else AE_CHANNELS, downsample="stride",
                         decoder="deconv", output_activation="sigmoid", loss="mse", weight_decay=1e-5, backend=backend,
                         seed=seed, engine=engine)
    vae = VariationalAutoencoder(encoder="conv", channels=QUICK_VAE_CHANNELS if quick else VAE_CHANNELS,
                                 input_shape=shape, latent=QUICK_VAE_LATENT if quick else VAE_LATENT,
                                 likelihood="gaussian", sigma=VAE_SIGMA, backend=backend, seed=seed, engine=engine)
    results, outputs = {}, {}
    for slug, name, model in (("conv_ae", f"conv autoencoder, stride-2 {'-'.join(map(str, ae.channels))} "
                                          f"(the colored-denoise lab's), noisy in, clean target", ae),
                              ("conv_vae", f"conv VAE {'-'.join(map(str, vae.channels))}, latent {vae.latent}, "
                                           f"Gaussian likelihood sigma {VAE_SIGMA}, noisy in, clean target", vae)):
        callbacks = [model.kl_warmup_callback] if slug == "conv_vae" else []
        if slug == "conv_vae":
            model.start_epoch(0)
        trainer = Trainer(model, make_optimizer("adam", 1e-3, engine=engine), epochs=epochs, batch_size=COLORED_BATCH, noise=noise,
                          seed=seed, progress=progress, callbacks=callbacks)
        history = record.train(trainer, train.images)
        out = _reconstruct(model, noisy_test)
        out_clean = _reconstruct(model, clean)
        outputs[slug] = out
        row = {"part": "(f) coloured MNIST", "model": name, "test_mse_per_pixel": float(((out - clean) ** 2).mean()),
               "test_snr_db": snr_db(out, clean), "clean_input_test_mse_per_pixel": float(((out_clean - clean) ** 2).mean()),
               "code_size": int(model.code_size), "epochs": int(history["epochs_run"]),
               "train_seconds": float(sum(history["epoch_seconds"]))}
        if slug == "conv_vae":
            parts = model.kl_and_reconstruction(noisy_test[:2000], rng=np.random.default_rng(1))
            row.update({"kl_noisy_test": parts["kl"], "active_units": model.active_units(noisy_test)})
        record.add(row)
        results[slug] = {"history": history}
    fixed = slice(0, N_ROW_IMAGES)
    samples = vae.sample(N_ROW_IMAGES, rng=np.random.default_rng([seed, 7]))
    plot_image_rows([clean[fixed], noisy_test[fixed], outputs["conv_ae"][fixed], outputs["conv_vae"][fixed], samples],
                    ["clean test images", f"noisy input (sigma {NOISE_SIGMA})", "conv autoencoder: output",
                     "conv VAE: decoder mean at z = mu(noisy x)", "conv VAE: decoder means of z ~ N(0, I) (prior samples)"],
                    shape, os.path.join(figures, "colored_denoising_rows.png"),
                    errors=[None, per_image_squared_error(noisy_test[fixed], clean[fixed]),
                            per_image_squared_error(outputs["conv_ae"][fixed], clean[fixed]),
                            per_image_squared_error(outputs["conv_vae"][fixed], clean[fixed]), None],
                    error_label="SE to the clean image")
    return results


# ---------------------------------------------------------------------------------------------- figures
def _plot_learning_curve(history, row, path, n_val):
    train = [float(v) for v in history["train_loss"]]
    val = [float(v) for v in history["val_loss"]]
    epochs = np.arange(1, len(train) + 1)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(epochs, train, "o-", ms=3, label="train (mean over the epoch's batches, dynamic binarisation)")
    ax.plot(epochs, val, "s-", ms=3, label=f"validation (end of epoch, {n_val:,} held-out images binarised once)")
    ax.axhline(row["neg_elbo_all_test"], color="0.3", linestyle=":", label=f"test -ELBO: {row['neg_elbo_all_test']:.2f}")
    ax.axhline(row["nll_is"], color="tab:green", linestyle="--",
               label=f"test NLL, IS k={row['is_samples']} ({row['test_images']} images): {row['nll_is']:.2f}")
    ax.axhline(PUBLISHED["burda_2016_vae_k1_one_layer_nll"], color="black", linewidth=1,
               label=f"published NLL (Burda et al. 2016, VAE k=1): {PUBLISHED['burda_2016_vae_k1_one_layer_nll']}")
    values = train[1:] + val[1:] if len(train) > 2 else train + val
    top = max(values + [row["neg_elbo_all_test"]]) + 5
    ax.set_ylim(min(PUBLISHED["burda_2016_vae_k1_one_layer_nll"], row["nll_is"]) - 3, top)
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.set_title("784-200-200-50 VAE on binarised MNIST: negative ELBO per epoch")
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper right")
    _footnote(fig, "Lower is better. The -ELBO bounds -log p(x) from above; the importance-sampled NLL is a tighter "
                   "bound. The y axis starts at epoch 2's values when there are more than two epochs (epoch 1 runs higher).")
    return _save(fig, path)


def _plot_mosaic(images, n_rows, n_cols, image_shape, path, title, axis_values=None, note=None):
    """n_rows x n_cols images tiled into one picture; axis_values label the columns (z1) and rows (z2, top high)."""
    images = np.asarray(images)
    tiles = [to_image(img, image_shape) for img in images[:n_rows * n_cols]]
    h, w = tiles[0].shape[:2]
    colour = tiles[0].ndim == 3
    h, w = h + 1, w + 1  # a one-pixel grey line after each tile
    canvas = np.full((n_rows * h - 1, n_cols * w - 1) + ((3,) if colour else ()), 0.4, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, n_cols)
        canvas[r * h:r * h + h - 1, c * w:c * w + w - 1] = tile
    size = 7.0 if n_cols > 10 else 5.5
    fig, ax = plt.subplots(figsize=(size, size * n_rows / n_cols))
    ax.imshow(canvas, cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest")
    if axis_values is None:
        ax.axis("off")
    else:
        ticks = list(range(0, n_cols, max(1, n_cols // 5))) + [n_cols - 1]
        ax.set_xticks([(t + 0.5) * w for t in ticks])
        ax.set_xticklabels([f"{axis_values[t]:.2f}" for t in ticks], fontsize=7)
        ax.set_yticks([(t + 0.5) * h for t in ticks])
        ax.set_yticklabels([f"{axis_values[::-1][t]:.2f}" for t in ticks], fontsize=7)
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    ax.set_title(title, fontsize=9)
    if note:
        _footnote(fig, note, width=90)
    return _save(fig, path)


def _plot_scatter_2d(points, labels, path, title):
    fig, ax = plt.subplots(figsize=(6.0, 5.2))
    cmap = plt.get_cmap("tab10")
    for digit in np.unique(labels):
        pts = points[labels == digit]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, color=cmap(int(digit) % 10), label=str(digit), alpha=0.6)
    ax.legend(markerscale=4, fontsize=7, loc="upper right", title="label", title_fontsize=7)
    ax.set_xlabel("mu_1(x)")
    ax.set_ylabel("mu_2(x)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)
