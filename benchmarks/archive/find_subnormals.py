"""Count subnormal float32 values in every conv layer's inputs, weights and outputs while the stride-2
colored-denoise network trains (why its epochs slow down on its loss plateau; benchmarks/RESULTS.md#2026-12-02-subnormal-weights).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/find_subnormals.py

The lab's network and recipe (128-64-32-16 stride-2 encoder, mirrored transposed convolutions, sigmoid,
MSE, L2 1e-5, Adam 1e-3, batch 128, Gaussian noise 0.3) on the first 12,800 coloured MNIST training
images, 12 epochs of 100 steps; after each epoch it prints the loss, the epoch's seconds and the counts.
"""
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import scratch_ae.layers.conv as convmod  # noqa: E402
from scratch_ae.data import load_dataset, parse_corruption  # noqa: E402
from scratch_ae.models.conv import ConvAutoencoder  # noqa: E402
from scratch_ae.optimizers import make_optimizer  # noqa: E402
from scratch_ae.training import Trainer  # noqa: E402

TINY = np.finfo(np.float32).tiny
hits = collections.Counter()


def count(name, *arrays):
    for k, a in enumerate(arrays):
        if isinstance(a, np.ndarray) and a.dtype == np.float32:
            n = int(np.count_nonzero((a != 0) & (np.abs(a) < TINY)))
            if n:
                hits[f"{name}[{k}]"] += n


def watch(cls_name, method):
    cls = getattr(convmod, cls_name)
    original = getattr(cls, method)

    def wrapped(self, x):
        count(f"{cls_name}.{method} in", x, self.params.get("W"))
        out = original(self, x)
        count(f"{cls_name}.{method} out", out)
        return out
    setattr(cls, method, wrapped)


for cls_name in ("Conv2d", "ConvTranspose2d"):
    for method in ("forward", "backward"):
        watch(cls_name, method)

train = load_dataset("colored-mnist", "train")
X = train.images[:12800]
noise = parse_corruption("gaussian:0.3", train.image_shape)
model = ConvAutoencoder(input_shape=train.image_shape, channels=(128, 64, 32, 16), downsample="stride",
                        decoder="deconv", output_activation="sigmoid", loss="mse", weight_decay=1e-5, lr=1e-3,
                        epochs=12, batch_size=128, noise=noise, seed=0)


def report(trainer, epoch):
    print(epoch + 1, trainer.history["train_loss"][-1], round(trainer.history["epoch_seconds"][-1], 1),
          dict(hits.most_common(6)), flush=True)
    hits.clear()


Trainer(model, make_optimizer("adam", 1e-3), epochs=12, batch_size=128, noise=noise, seed=0,
        callbacks=[report]).fit(X)
