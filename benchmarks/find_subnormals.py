import numpy as np, time, collections
from scratch_ae.data import load_dataset, parse_corruption
from scratch_ae.models.conv import ConvAutoencoder
from scratch_ae.sequential import Sequential
import scratch_ae.layers.conv as convmod
tiny = np.finfo(np.float32).tiny
hits = collections.Counter()
def count(name, *arrays):
    for k, a in enumerate(arrays):
        if isinstance(a, np.ndarray) and a.dtype == np.float32:
            n = int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))
            if n: hits[f"{name}[{k}]"] += n
orig_f = {}
for cls in ("Conv2d", "ConvTranspose2d"):
    C = getattr(convmod, cls)
    for meth in ("forward", "backward"):
        f = getattr(C, meth)
        def wrap(self, x, _f=f, _n=f"{cls}.{meth}"):
            count(_n + " in", x, self.params.get("W"))
            out = _f(self, x)
            count(_n + " out", out)
            return out
        setattr(C, meth, wrap)
train = load_dataset("colored-mnist", "train")
X = train.images[:12800]
noise = parse_corruption("gaussian:0.3", train.image_shape)
m = ConvAutoencoder(input_shape=train.image_shape, channels=(128, 64, 32, 16), downsample="stride", decoder="deconv",
                    output_activation="sigmoid", loss="mse", weight_decay=1e-5, lr=1e-3, epochs=12, batch_size=128,
                    noise=noise, seed=0, progress=False)
from scratch_ae.training import Trainer
def cb(trainer, epoch):
    print(epoch, trainer.history["train_loss"][-1], round(trainer.history["epoch_seconds"][-1], 1), dict(hits.most_common(6)), flush=True)
    hits.clear()
m.fit(X) if False else None
from scratch_ae.optimizers import make_optimizer
t = Trainer(m, make_optimizer("adam", 1e-3, 1e-5) if False else make_optimizer("adam", 1e-3), epochs=12, batch_size=128, noise=noise, seed=0, callbacks=[cb])
t.fit(X)
