"""PCA against three autoencoders with the same 30-unit code: linear, ReLU, and sigmoid with cross-entropy.

All four compress an MNIST image to 30 numbers.  PCA is the best any linear
(rank-30 affine) map can do on its training set (Eckart-Young); the linear
autoencoder trained with MSE converges to the same error (see
derivations/pca-and-linear-autoencoders.md); the nonlinear ones can, but need
not, do better.

What full mode shows (its figures: benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments): the linear autoencoder ends just above PCA after
20 epochs, as Eckart-Young says it must on the training set; the ReLU one does
better than both; sigmoid/BCE does worst by far (the saturating sigmoid code
learns slowest at this budget).

Recipe (full mode): the 60,000 training images, Adam lr 1e-3, batch 100,
20 epochs, seed 0; errors on the 10,000 test images.  Quick mode: labs.common's
2,000 / 500 image subset and 2 epochs.

    linear      784 -30-> 784, identity code and output, MSE
    relu        784 -30-> 784, ReLU code, ReLU output, MSE
    sigmoid-bce 784 -30-> 784, sigmoid code, sigmoid output, binary cross-entropy
"""
import os

from ..pca import PCA
from ..plots import plot_image_rows
from .common import LabRecord, errors_row, lab_data, train_autoencoder, write_results

CODE_SIZE = 30
EPOCHS, QUICK_EPOCHS = 20, 2
TITLE = f"PCA vs autoencoders with a {CODE_SIZE}-unit code"
AUTOENCODERS = {
    "linear autoencoder": dict(activation="identity", output_activation="identity", loss="mse"),
    "ReLU autoencoder": dict(activation="relu", output_activation="relu", loss="mse"),
    "sigmoid/BCE autoencoder": dict(activation="sigmoid", output_activation="sigmoid", loss="bce"),
}


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None, engine="auto"):
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    width = train.images.shape[1]
    pca = PCA(CODE_SIZE, backend=backend).fit(train.images)
    record = LabRecord(out_dir, TITLE)
    rows = record.rows
    record.add({**errors_row(f"PCA ({CODE_SIZE} components)", pca, train.images, test.images), "train_seconds": 0.0})
    models = {}
    for name, kwargs in AUTOENCODERS.items():
        model = train_autoencoder(train.images, record=record, epochs=epochs, backend=backend, seed=seed,
                                  progress=progress, engine=engine, sizes=[width, CODE_SIZE], **kwargs)
        models[name] = model
        record.add({**errors_row(name, model, train.images, test.images), "train_seconds": model.train_seconds_})

    x = test.images[:10]
    images = [x, pca.inverse_transform(pca.transform(x))] + [m.inverse_transform(m.transform(x)) for m in models.values()]
    labels = ["test images", f"PCA ({CODE_SIZE})"] + list(models)
    plot_image_rows(images, labels, train.image_shape, os.path.join(out_dir, "figures", "reconstructions.png"),
                    title=f"{CODE_SIZE}-number codes: reconstructions of test images")
    recipe = {"code_size": CODE_SIZE, "optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": epochs,
              "n_train": int(train.images.shape[0]), "n_test": int(test.images.shape[0]), "dataset": dataset,
              "seed": seed, "backend": backend, "quick": quick,
              "models": {name: {"sizes": [width, CODE_SIZE], **kw} for name, kw in AUTOENCODERS.items()}}
    notes = ("Squared error summed over the pixels, averaged over images (SSE per image). PCA's training error "
             "is the Eckart-Young minimum for any rank-30 linear reconstruction; the linear autoencoder approaches "
             f"it from above as it trains. {epochs} epochs of Adam (lr 1e-3, batch 100) on "
             f"{train.images.shape[0]} images.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": recipe,
                                "histories": {name: m.history_ for name, m in models.items()}},
                         notes=notes)
