"""The conv VAE's training path (VariationalAutoencoder(encoder="conv").fit) with im2col.LOOP_THREADS =
"blas" (the default: the step inside loop_threads_held) against 1, interleaved A B B A A B, one epoch on the
first N MNIST training images each, at whatever BLAS thread count the environment gives.

    python benchmarks/vae_fit_loop_threads.py 12000
"""
import json, sys, time
from scratch_ae.data import load_dataset
from scratch_ae.layers import im2col
from scratch_ae.models.vae import VariationalAutoencoder
X = load_dataset("mnist", "train").images[:int(sys.argv[1])]
out = {"blas": [], "1": []}
for setting in ("blas", 1, 1, "blas", "blas", 1):
    im2col.LOOP_THREADS = setting
    m = VariationalAutoencoder(encoder="conv", input_shape=(1, 28, 28), epochs=1, seed=0)
    t = time.perf_counter(); m.fit(X); out[str(setting)].append(round(time.perf_counter() - t, 2))
    print(setting, out[str(setting)][-1], m.history_["train_loss"][-1], flush=True)
print(json.dumps(out))
