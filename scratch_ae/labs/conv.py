"""Convolutional autoencoders on MNIST: three decoders for one pooled encoder, with the same budget.

The encoder is conv(1->16, 3x3, 'same') + ReLU + 2x2 max-pool, conv(16->8) + ReLU + max-pool
(28 -> 14 -> 7: 8x7x7 = 392 pooled values).  The decoders undo it three ways
(scratch_ae/models/conv.py):

* deconv+unpool: max-unpooling through the encoder's pool positions, then a 3x3 transposed conv;
* unpool: max-unpooling, then an ordinary 3x3 convolution (no transposed convolution anywhere);
* deconv: stride-2 3x3 transposed convolutions, no unpooling.

The unpooling decoders also receive every pool's argmax positions (16x14x14 + 8x7x7 window
indices), so their code is larger than the pooled maps: the table's `code_size` counts what each
decoder reads.  A fourth row, the small-code network, pools three times (channels 16, 8, 8:
8x3x3 = 72 values, deconv decoder) to ask what a code of at most 128 values can do.  It is
trained with BCE, as the tutorial that reports this size trains it: with MSE through the sigmoid
it settled on an all-black output in the first epoch and stayed there, its loss constant to four
digits for seven epochs (benchmarks/RESULTS.md#2026-12-02-lab-conv-five-rows).  Near an
output of 0 the sigmoid's slope scales MSE's gradient down to almost nothing, while BCE's gradient
with respect to the logits stays (output - target).

A fifth row, the dense code, gets its small code the other way: two wider pooled stages
(channels 32, 16: 16x7x7 maps) and a linear Dense code of 128 values after them
(ConvAutoencoder's dense_code), also trained with BCE.  PCA with as many components is the
yardstick at this size: it beats the MSE of the all-convolutional 72- and 126-value codes, and a
linear code on top of wider maps is the network that meets the small-code target (test MSE <=
0.005 and BCE <= 0.094 per pixel; benchmarks/RESULTS.md#2026-12-02-small-code-dense).

Budget as in the report: 8 epochs, Adam lr 1e-3, batch 100, MSE, sigmoid output, seed 0.
Quick mode: labs.common's 2,000 / 500 image subset, 1 epoch.
"""
import os

import numpy as np

from ..metrics import reconstruction_metrics
from ..models.conv import ConvAutoencoder
from ..plots import per_image_squared_error, plot_image_rows, plot_loss_curves
from ..train_job import write_conv_filters
from .common import LabRecord, lab_data, write_results

EPOCHS, QUICK_EPOCHS = 8, 1
TITLE = "Convolutional autoencoders: three decoders and two small codes"
VARIANTS = (("deconv+unpool", dict(channels=(16, 8), decoder="deconv+unpool")),
            ("unpool", dict(channels=(16, 8), decoder="unpool")),
            ("deconv", dict(channels=(16, 8), decoder="deconv")),
            ("small code, deconv", dict(channels=(16, 8, 8), decoder="deconv", loss="bce")),
            ("dense code, deconv", dict(channels=(32, 16), decoder="deconv", dense_code=128, loss="bce")))


def run(out_dir, quick=False, backend="numpy", seed=0, progress=False, dataset="mnist", epochs=None, variants=None,
        engine="auto"):
    """variants: names from VARIANTS to train (default all), e.g. ["unpool"] for one full-size row."""
    chosen = [(name, kwargs) for name, kwargs in VARIANTS if variants is None or name in variants]
    if not chosen:
        raise ValueError(f"unknown variants {variants!r}; expected some of: {', '.join(n for n, _ in VARIANTS)}")
    train, test = lab_data(dataset, quick)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    shape = tuple(train.image_shape) if len(train.image_shape) == 3 else (1, *train.image_shape)
    figures = os.path.join(out_dir, "figures")
    record = LabRecord(out_dir, TITLE)
    rows, image_rows, labels, histories = record.rows, [test.images[:10]], ["test images"], {}
    errors = [None]
    for name, kwargs in chosen:
        model = ConvAutoencoder(input_shape=shape, output_activation="sigmoid", epochs=epochs, batch_size=100,
                                lr=1e-3, backend=backend, seed=seed, progress=progress, engine=engine,
                                **{"loss": "mse", **kwargs})
        record.fit(model, train.images)
        test_metrics = reconstruction_metrics(model, test.images)
        record.add({"decoder": name, "channels": "-".join(map(str, model.channels)), "loss": model.loss,
                     "code_size": model.code_size, "pooled_values": int(np.prod(model.code_shape_)),
                     "train_sse_per_image": reconstruction_metrics(model, train.images)["sse_per_image"],
                     "test_sse_per_image": test_metrics["sse_per_image"],
                     "test_mse_per_pixel": test_metrics["mse_per_pixel"],
                     "test_bce_per_pixel": _bce_per_pixel(model, test.images),
                     "epochs_run": model.history_["epochs_run"],
                     "train_seconds": sum(model.history_["epoch_seconds"])})
        histories[name] = model.history_
        slug = name.replace("+", "-").replace(", ", "-").replace(" ", "-")
        unit, test_value = (("BCE", rows[-1]["test_bce_per_pixel"]) if model.loss == "bce"
                            else ("MSE", test_metrics["mse_per_pixel"]))
        plot_loss_curves(model.history_, os.path.join(figures, f"loss_{slug}.png"), title=f"{name} decoder",
                         ylabel=f"{unit} per pixel", test_value=test_value, test_label=f"test {unit}")
        write_conv_filters(model, os.path.join(figures, slug))
        recon = model.inverse_transform(model.transform(test.images[:10]))
        image_rows.append(recon)
        labels.append(f"{name} (code {model.code_size} values)")
        errors.append(per_image_squared_error(recon, test.images[:10]))
    plot_image_rows(image_rows, labels, train.image_shape, os.path.join(figures, "reconstructions.png"),
                    errors=errors)
    return _write(out_dir, rows, epochs, quick, backend, seed, histories)


def _write(out_dir, rows, epochs, quick, backend, seed, histories):
    notes = ("Squared error summed over an image's pixels, averaged over images; MSE and BCE per pixel. "
             "code_size counts every value the decoder reads: the unpooling decoders also receive the "
             "pools' argmax positions, so their code is larger than the pooled maps (pooled_values). "
             f"Recipe: {epochs} epochs, Adam 1e-3, batch 100, sigmoid output, seed {seed}; the loss column says "
             "what each model was trained on (MSE; BCE for the small codes, as the tutorial trains its own). "
             "The dense code row's code is a linear Dense layer of code_size values after its pooled maps.")
    return write_results(out_dir, TITLE, rows,
                         extra={"recipe": {"epochs": epochs, "optimizer": "adam", "lr": 1e-3, "batch_size": 100,
                                           "loss": {name: kw.get("loss", "mse") for name, kw in VARIANTS},
                                           "output": "sigmoid", "quick": quick, "backend": backend,
                                           "seed": seed},
                                "histories": histories, "published": {"unpool_decoder_test_sse_8_epochs": 1.89}},
                         notes=notes)


def _bce_per_pixel(model, X, batch_size=2000):
    """Binary cross-entropy per pixel of the model's sigmoid outputs against X (the tutorials' unit)."""
    import numpy as np
    total = 0.0
    for i in range(0, X.shape[0], batch_size):
        x = X[i:i + batch_size].astype(np.float64)
        p = np.clip(model.backend_.to_numpy(model.reconstruct(X[i:i + batch_size])).astype(np.float64), 1e-7, 1 - 1e-7)
        total += float(-(x * np.log(p) + (1 - x) * np.log(1 - p)).sum())
    return total / X.size
