"""The VAE's Bernoulli loss, reference (`BernoulliNLL`) against its fast path (`SharedExpBernoulliNLL`).

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 python benchmarks/vae_bce_kernel.py --rounds 3

Two parts, each interleaved (reference, shared-exp, reference, ...) in one warm process:
1. the loss's forward + backward alone on (100, 784) logits, as the decoder hands them over;
2. one 600-step epoch of the 784-200-200-50 VAE (batch 100, Adam 1e-3, dynamic binarisation, the
   model's own Trainer), built afresh with `vae_terms_fast.KERNEL` set to each in turn.
Prints one JSON document: medians in ms per call and s per epoch, their ratio, and each epoch's loss
(the two agree to rounding).  The machine's SIMD level matters: NumPy's log1p has a SIMD loop only with
AVX-512 (`np.show_runtime()`).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scratch_ae import vae_terms, vae_terms_fast  # noqa: E402
from scratch_ae.data import load_dataset  # noqa: E402
from scratch_ae.models.vae import VariationalAutoencoder  # noqa: E402
from scratch_ae.optimizers import make_optimizer  # noqa: E402
from scratch_ae.training import Trainer  # noqa: E402

KERNELS = ("reference", "shared-exp")
p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--calls", type=int, default=2000, help="loss calls per round in part 1")
p.add_argument("--limit", type=int, default=60000)
args = p.parse_args()

rng = np.random.default_rng(0)
logits = (rng.standard_normal((100, 784)) * 4).astype(np.float32)
target = (rng.random((100, 784)) < 0.15).astype(np.float32)
classes = {"reference": vae_terms.BernoulliNLL, "shared-exp": vae_terms_fast.SharedExpBernoulliNLL}
loss_ms = {k: [] for k in KERNELS}
for _ in range(args.rounds):
    for k in KERNELS:
        nll = classes[k]()
        t0 = time.perf_counter()
        for _ in range(args.calls):
            nll.forward(logits, target)
            nll.backward()
        loss_ms[k].append((time.perf_counter() - t0) / args.calls * 1e3)

X = load_dataset("mnist", "train").images[:args.limit]
epoch_s = {k: [] for k in KERNELS}
losses = {k: [] for k in KERNELS}
for r in range(args.rounds + 1):  # round 0 warms Numba's cache and BLAS threads, and is not counted
    for k in KERNELS:
        vae_terms_fast.KERNEL = k
        model = VariationalAutoencoder(seed=0)
        model._build()
        history = Trainer(model, make_optimizer("adam", 1e-3), epochs=1, batch_size=100, seed=0).fit(X)
        if r:
            epoch_s[k].append(history["epoch_seconds"][0])
            losses[k].append(history["train_loss"][0])
med = {k: float(np.median(v)) for k, v in epoch_s.items()}
out = {"loss_forward_backward_ms": loss_ms, "epoch_s": epoch_s, "epoch_loss": losses,
       "median_loss_ms": {k: float(np.median(v)) for k, v in loss_ms.items()},
       "median_epoch_s": med, "ratio_epoch_shared_exp_over_reference": med["shared-exp"] / med["reference"],
       "command": "python benchmarks/vae_bce_kernel.py " + " ".join(sys.argv[1:])}
print(json.dumps(out, indent=1))
