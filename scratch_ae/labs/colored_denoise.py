"""Denoising coloured MNIST with the four-layer stride-2 convolutional autoencoder, scored by MSE and SNR.

Network (scratch_ae/models/conv.py, downsample="stride"): conv 3->128->64->32->16, 3x3, stride 2,
padding 1, ReLU (28 -> 14 -> 7 -> 4 -> 2, a code of 16x2x2 = 64 values), mirrored 3x3 stride-2
transposed convolutions back to 3x28x28, sigmoid output, MSE.  Trained to map Gaussian-noised
images (sigma = 0.3, clipped to [0, 1], fresh noise every step) to the clean ones.  Recipe as in
the report: 20 epochs, Adam lr 1e-3, weight decay 1e-5 (L2 in the loss, as torch's Adam applies
it), batch 128, seed 0.

Reported on the test set, with one fixed draw of the noise: MSE per pixel and SNR in dB,
SNR = 10 log10(sum x^2 / sum (y - x)^2) over the whole set (metrics.snr_db), of the noisy input
(y = noisy) and of the denoised output (y = output).  Figures: rows of clean, noisy and denoised
test images; the outputs for fixed noisy images during training; the t-SNE of the 64-value test
codes in 2-D and 3-D coloured by digit.

A second network, the same with dropout 0.1 after every hidden activation, is trained the same
way for the plain-vs-dropout comparison (MSE, SNR, its own t-SNE).

Quick mode: labs.common's 2,000 / 500 image subset, 1 epoch, channels 16-8-8-4.
"""
import os

import numpy as np

from ..data import parse_corruption
from ..metrics import reconstruction_metrics, snr_db
from ..models.conv import ConvAutoencoder
from ..optimizers import make_optimizer
from ..plots import per_image_squared_error, plot_image_rows, plot_loss_curves
from ..training import Trainer
from .common import LabRecord, lab_data, write_results
from .latent import _plot_tsne, same_label_neighbours, tsne

SIGMA = 0.3
EPOCHS, QUICK_EPOCHS = 20, 1
CHANNELS, QUICK_CHANNELS = (128, 64, 32, 16), (16, 8, 8, 4)
SNAPSHOTS, QUICK_SNAPSHOTS = (1, 2, 5, 10, 20), (1,)
TSNE_POINTS, QUICK_TSNE_POINTS = 3000, 300
DROPOUT = 0.1


TITLE = "Denoising coloured MNIST with the stride-2 convolutional autoencoder"


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="colored-mnist", epochs=None,
        engine="auto"):
    if dataset != "colored-mnist":
        raise ValueError(f"argument --dataset: the colored-denoise lab runs on colored-mnist, got {dataset!r}")
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    channels = QUICK_CHANNELS if quick else CHANNELS
    noise = parse_corruption(f"gaussian:{SIGMA}", train.image_shape)
    noisy_test = noise(test.images, np.random.default_rng([seed, 99]))  # one fixed draw for every model
    figures = os.path.join(out_dir, "figures")
    fixed = slice(0, 10)
    record = LabRecord(out_dir, TITLE)
    rows = record.rows
    record.add({"model": f"noisy input (Gaussian sigma {SIGMA}, clipped)",
                "test_mse_per_pixel": float(((noisy_test - test.images) ** 2).mean()),
                "test_snr_db": snr_db(noisy_test, test.images)})
    image_rows, labels, errors = [test.images[fixed], noisy_test[fixed]], ["clean", f"noisy (sigma {SIGMA})"], \
        [None, per_image_squared_error(noisy_test[fixed], test.images[fixed])]
    results = {}
    for name, dropout in (("stride-2 denoiser", 0.0), (f"stride-2 denoiser, dropout {DROPOUT}", DROPOUT)):
        model = ConvAutoencoder(input_shape=train.image_shape, channels=channels, downsample="stride",
                                decoder="deconv", output_activation="sigmoid", loss="mse", weight_decay=1e-5,
                                dropout=dropout, backend=backend, seed=seed, engine=engine)
        snapshots = {}
        snapshot_epochs = tuple(e for e in (QUICK_SNAPSHOTS if quick else SNAPSHOTS) if e <= epochs)

        def snapshot(trainer, epoch, model=model, snapshots=snapshots):
            if epoch + 1 in snapshot_epochs:
                snapshots[epoch + 1] = model.inverse_transform(model.transform(noisy_test[fixed]))
        trainer = Trainer(model, make_optimizer("adam", 1e-3, engine=engine), epochs=epochs, batch_size=128, noise=noise,
                          seed=seed, progress=progress, callbacks=[snapshot])
        history = record.train(trainer, train.images, keep={"snapshots": snapshots})
        denoised = _reconstruct(model, noisy_test)
        codes = model.transform(noisy_test[:QUICK_TSNE_POINTS if quick else TSNE_POINTS])
        record.add({"model": name, "test_mse_per_pixel": float(((denoised - test.images) ** 2).mean()),
                     "test_snr_db": snr_db(denoised, test.images),
                     "clean_input_test_mse_per_pixel": reconstruction_metrics(model, test.images)["mse_per_pixel"],
                     "code_size": model.code_size, "epochs_run": history["epochs_run"],
                     "train_seconds": sum(history["epoch_seconds"])})
        slug = "dropout" if dropout else "plain"
        plot_loss_curves(history, os.path.join(figures, f"loss_{slug}.png"), title=name,
                         ylabel="MSE per pixel (noisy input, clean target)", test_value=rows[-1]["test_mse_per_pixel"],
                         test_label="test MSE")
        image_rows.append(denoised[fixed])
        labels.append(f"{name}: output")
        errors.append(per_image_squared_error(denoised[fixed], test.images[fixed]))
        if snapshots:
            plot_image_rows([noisy_test[fixed]] + [snapshots[e] for e in sorted(snapshots)],
                            ["noisy input"] + [f"output after epoch {e}" for e in sorted(snapshots)],
                            train.image_shape, os.path.join(figures, f"training_outputs_{slug}.png"),
                            errors=[None] + [per_image_squared_error(snapshots[e], test.images[fixed])
                                             for e in sorted(snapshots)], error_label="SE to the clean image")
        labels_t = test.labels[:codes.shape[0]]
        maps = {}
        for dims in (2, 3):
            embedding, kl = tsne(codes, dims, 500 if quick else 1000, seed=seed)
            maps[f"{dims}d"] = {"kl_divergence": kl, "same_digit_neighbours": same_label_neighbours(embedding, labels_t)}
            _plot_tsne(embedding, labels_t, os.path.join(figures, f"tsne_{dims}d_{slug}.png"),
                       f"{name}: t-SNE of {codes.shape[0]} noisy test images' {model.code_size}-value codes")
        maps["code_space_same_digit_neighbours"] = same_label_neighbours(codes, labels_t)
        results[slug] = {"history": history, "tsne": maps}
    plot_image_rows(image_rows, labels, train.image_shape, os.path.join(figures, "denoising_rows.png"), errors=errors,
                    error_label="SE to the clean image")
    notes = (f"Test set, one fixed draw of Gaussian noise (sigma {SIGMA}, clipped to [0, 1]). "
             "SNR = 10 log10(sum clean^2 / sum (estimate - clean)^2) over the whole test set, in dB (higher is better). "
             f"Recipe: {epochs} epochs, Adam 1e-3, weight decay 1e-5, batch 128, channels {'-'.join(map(str, channels))}.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": {"epochs": epochs, "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-5,
                                           "batch_size": 128, "sigma": SIGMA, "channels": list(channels),
                                           "dropout": DROPOUT, "quick": quick, "backend": backend, "seed": seed},
                                **results}, notes=notes)


def _reconstruct(model, X, batch_size=1000):
    return np.concatenate([model.backend_.to_numpy(model.reconstruct(X[i:i + batch_size]))
                           for i in range(0, X.shape[0], batch_size)])
