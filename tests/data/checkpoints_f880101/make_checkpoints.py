"""How these files were written: with commit f880101's code, from the repository root:
    PYTHONPATH=/path/to/f880101 python tests/data/checkpoints_f880101/make_checkpoints.py tests/data/checkpoints_f880101
(small trained checkpoints and their outputs, for tests/test_old_checkpoints.py)."""
import sys
import numpy as np
from scratch_ae.data import load_dataset
from scratch_ae.models import load
from scratch_ae.models.dense import Autoencoder
from scratch_ae.models.conv import ConvAutoencoder
from scratch_ae.models.vae import VariationalAutoencoder
out = sys.argv[1]
X = load_dataset("mnist", "test").images
train, probe = X[:600], X[9980:]
models = {
    "dense": Autoencoder(sizes=[784, 32, 8], epochs=2, seed=1),
    "conv": ConvAutoencoder(input_shape=(1, 28, 28), channels=(4, 4), downsample="pool", decoder="deconv+unpool",
                            output_activation="sigmoid", epochs=1, seed=2),
    "conv-stride": ConvAutoencoder(input_shape=(1, 28, 28), channels=(4, 4), downsample="stride", decoder="deconv",
                                   output_activation="sigmoid", epochs=1, seed=3),
    "vae": VariationalAutoencoder(sizes=(784, 32), latent=4, epochs=2, seed=4),
}
expected = {"probe": probe}
for name, model in models.items():
    model.fit(train)
    model.save(f"{out}/{name}.npz")
    twin = load(f"{out}/{name}.npz")
    codes = twin.transform(probe)
    expected[f"{name}.transform"] = codes
    expected[f"{name}.inverse_transform"] = twin.inverse_transform(codes)
    expected[f"{name}.score"] = np.asarray(twin.score(probe))
expected["recipe.transform"] = load("benchmarks/results/vae-recipe-cosine350-model.npz").transform(probe)
np.savez_compressed(f"{out}/expected_outputs.npz", **expected)
