"""The library's own training path (model.fit -> Trainer -> loss_and_grads) of the conv models with
im2col.LOOP_THREADS = "blas" (the default) against 1, interleaved A B B A A B, one epoch on the first N
training images each, at whatever BLAS thread count the environment gives (2 on a 2-core machine).

    python benchmarks/conv_fit_loop_threads.py stride2 12800    # coloured MNIST, batch 128
    python benchmarks/conv_fit_loop_threads.py pooled 20000     # MNIST, batch 100
    python benchmarks/conv_fit_loop_threads.py vae 12000        # VariationalAutoencoder(encoder="conv")
"""
import sys, time, json
from scratch_ae.data import load_dataset
from scratch_ae.layers import im2col
from scratch_ae.models.conv import ConvAutoencoder
from scratch_ae.models.vae import VariationalAutoencoder
net, n = sys.argv[1], int(sys.argv[2])
if net == "stride2":
    X = load_dataset("colored-mnist", "train").images[:n]
    model, kw = ConvAutoencoder, dict(input_shape=(3, 28, 28), channels=(128, 64, 32, 16), downsample="stride",
                                      decoder="deconv", batch_size=128)
elif net == "pooled":
    X = load_dataset("mnist", "train").images[:n]
    model, kw = ConvAutoencoder, dict(input_shape=(1, 28, 28), channels=(16, 8), decoder="deconv+unpool", batch_size=100)
else:
    X = load_dataset("mnist", "train").images[:n]
    model, kw = VariationalAutoencoder, dict(encoder="conv", input_shape=(1, 28, 28))
out = {"blas": [], "1": []}
for setting in ("blas", 1, 1, "blas", "blas", 1):
    im2col.LOOP_THREADS = setting
    m = model(epochs=1, seed=0, **kw)
    t = time.perf_counter(); m.fit(X); out[str(setting)].append(time.perf_counter() - t)
    print(setting, round(out[str(setting)][-1], 2), m.history_["train_loss"][-1], flush=True)
print(json.dumps({k: [round(x, 2) for x in v] for k, v in out.items()}))
