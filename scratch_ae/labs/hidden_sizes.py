"""The standard 784-H-784 ReLU/ReLU autoencoder at H = 64, 128 and 256 hidden units.

More hidden units reconstruct better (full mode's test errors per H:
benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments), but
the network has not learnt the identity: a uniform-noise image comes back as a
few bright blobs in the middle of the frame, where digits have ink, and black
elsewhere.  Its error is about as bad as answering with an all-black image
(784/3 = 261 expected), because the decoder can only produce images near the
training data.  Both are shown: the error table, and one test image and one
noise image through each network (figures/inputs_through_each.png).

Recipe (full mode): the 60,000 training images, Adam lr 1e-3, batch 100,
10 epochs, seed 0, MSE loss; errors on the 10,000 test images.  Quick mode:
labs.common's 2,000 / 500 image subset and 2 epochs.
"""
import os

import numpy as np

from ..metrics import sse_per_image
from ..plots import plot_image_rows
from .common import LabRecord, errors_row, lab_data, train_autoencoder, write_results

TITLE = "784-H-784 ReLU autoencoders: hidden sizes"
HIDDEN_SIZES = (64, 128, 256)
EPOCHS, QUICK_EPOCHS = 10, 2


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None,
        hidden_sizes=HIDDEN_SIZES, engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    width = train.images.shape[1]
    probe = test.images[:1]
    noise = np.random.default_rng([seed, 1]).uniform(0.0, 1.0, size=(1, width)).astype(np.float32)
    record = LabRecord(out_dir, TITLE)
    rows, recon_rows, labels = record.rows, [np.concatenate([probe, noise])], ["inputs: a test image, uniform noise"]
    for hidden in hidden_sizes:
        model = train_autoencoder(train.images, record=record, epochs=epochs, backend=backend, seed=seed,
                                  progress=progress, engine=engine, sizes=[width, hidden], activation="relu",
                                  output_activation="relu", loss="mse")
        both = model.inverse_transform(model.transform(np.concatenate([probe, noise])))
        record.add({**errors_row(f"{width}-{hidden}-{width} ReLU", model, train.images, test.images), "hidden": hidden,
                     "probe_sse": sse_per_image(both[:1], probe), "noise_sse": sse_per_image(both[1:], noise),
                     "train_seconds": model.train_seconds_})
        recon_rows.append(both)
        labels.append(f"H = {hidden}")
    plot_image_rows(recon_rows, labels, train.image_shape, os.path.join(out_dir, "figures", "inputs_through_each.png"),
                    title="a test image and a noise image through 784-H-784 ReLU autoencoders")
    recipe = {"hidden_sizes": list(hidden_sizes), "activation": "relu", "output": "relu", "loss": "mse",
              "optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": epochs,
              "n_train": int(train.images.shape[0]), "n_test": int(test.images.shape[0]), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick}
    notes = ("SSE per image (squared error summed over pixels, averaged over images). probe_sse / noise_sse: the "
             "error on the one test image and on the uniform-noise image shown in the figure; the noise is not "
             "reproduced. For reference, on uniform noise a constant 0.5 image scores D/12 = "
             f"{width / 12:.0f} on average and an all-black image D/3 = {width / 3:.0f}.")
    return write_results(out_dir, TITLE, rows, extra={"recipe": recipe}, notes=notes)
