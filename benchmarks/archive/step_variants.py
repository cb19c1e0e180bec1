"""Arrangements of one CPU training step, tried against the library's own step and dropped.

    python benchmarks/step_variants.py --network deep --chunks 120
    python benchmarks/step_variants.py --network standard --variants library,sparse-input --chunks 300

Every variant computes the step `Trainer` runs (loss_and_grads, then Adam(fused=True)), arranged
differently.  None of them is in the library; each was measured here and dropped (RESULTS.md):

  library           model.loss_and_grads, then Adam(fused=True).step: what Trainer does
  interleaved-adam  each layer's Adam update right after its backward, while its gradient is in cache
                    (bit-identical: a layer's weights are not needed once its backward has run)
  reordered-adam    the compiled Adam loop in the reordered form eta_t m / (sqrt(v) + eps_t)
                    (derivations/optimizers.md#adam-fused): one division and one sqrt per
                    element instead of three and one; equal to rounding, not bit for bit
  two-workers       two Python threads, each with one BLAS thread, each runs half of the batch on
                    its own copy of the layers (shared weights); then each updates half of every
                    parameter with the two halves' gradients combined (equal to rounding)
  sparse-input      the first layer skips the input columns that are zero in every image of the
                    batch (about 29% of MNIST's pixels per batch of 256): x[:, nz] @ W[nz] and
                    grad_W[nz] = x[:, nz]^T delta (equal to rounding)

The variants take turns in chunks of 10 steps (the order rotates each chunk), each on its own
model from the same seed and the same batch sequence, so the machine's slow spells hit them
alike.  Prints JSON: per variant the median, 10th and 25th percentile of the step time (ms),
the 10th percentile scaled to an epoch, and how far one step from the same start lands from the
library's step: max |difference| over max |parameter|.  (Adam's first step moves each weight by
about lr either way, so a near-zero gradient element whose sign rounding flips shows as 2 lr.)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LR = 1e-3
CHUNK = 10


def _reordered_adam_loop(p, g, m, v, eta_t, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_t):
    for i in range(p.shape[0]):
        gi = g[i]
        mi = m[i] * beta1 + gi * one_minus_beta1
        vi = v[i] * beta2 + (gi * gi) * one_minus_beta2
        p[i] = p[i] - eta_t * mi / (np.sqrt(vi) + eps_t)
        m[i] = mi
        v[i] = vi


def _combine_loop(g1, g2, w1, w2):
    """g1 <- w1 g1 + w2 g2: the batch's mean gradient from its two halves' means."""
    for i in range(g1.shape[0]):
        g1[i] = g1[i] * w1 + g2[i] * w2


class Library:
    """The step Trainer runs."""
    blas_threads = None  # None: the run's --threads

    def __init__(self, make_model):
        from scratch_ae.optimizers import Adam
        self.model, self.opt = make_model(), Adam(LR, fused=True)

    def step(self, x):
        loss, grads = self.model.loss_and_grads(x)
        self.opt.step(self.model.parameters(), grads)


class InterleavedAdam(Library):
    def __init__(self, make_model):
        super().__init__(make_model)
        self.moments = {}

    def step(self, x):
        from scratch_ae.layers.fused import relu_dense_backward
        from scratch_ae.optimizers.fused_cpu import adam_update_compiled
        model, opt = self.model, self.opt
        model._objective(x, x)
        opt.t += 1
        c1, c2 = 1 - opt.beta1 ** opt.t, 1 - opt.beta2 ** opt.t
        grad = model.loss_fn_.backward()
        layers = model.layers_
        for i in range(len(layers) - 1, 0, -2):  # (Dense, ReLU) pairs, the last first
            dense = layers[i - 1]
            grad = relu_dense_backward(layers[i], dense, grad)
            for name in ("W", "b"):
                m, v = self.moments.setdefault((i, name), (np.zeros_like(dense.params[name]),
                                                           np.zeros_like(dense.params[name])))
                adam_update_compiled(dense.params[name], dense.grads[name], m, v, opt.lr, opt.beta1,
                                     opt.beta2, opt.eps, c1, c2)


class ReorderedAdam(Library):
    def __init__(self, make_model):
        super().__init__(make_model)
        from scratch_ae.jit import CompiledLoop
        self.loop = CompiledLoop(_reordered_adam_loop)
        self.moments = {}

    def step(self, x):
        from scratch_ae.optimizers.fused import reordered_scalars
        opt = self.opt
        loss, grads = self.model.loss_and_grads(x)
        opt.t += 1
        eta_t, eps_t = reordered_scalars(opt.lr, opt.eps, 1 - opt.beta1 ** opt.t, 1 - opt.beta2 ** opt.t)
        for name, p in self.model.parameters().items():
            m, v = self.moments.setdefault(name, (np.zeros(p.size, p.dtype), np.zeros(p.size, p.dtype)))
            f = p.dtype.type
            self.loop(p.reshape(-1), grads[name].reshape(-1), m, v, f(eta_t), f(opt.beta1), f(1 - opt.beta1),
                      f(opt.beta2), f(1 - opt.beta2), f(eps_t))


class TwoWorkers(Library):
    blas_threads = 1

    def __init__(self, make_model):
        super().__init__(make_model)
        from scratch_ae.jit import CompiledLoop
        from scratch_ae.optimizers.fused_cpu import ADAM_LOOP
        self.combine, self.adam_loop = CompiledLoop(_combine_loop), ADAM_LOOP
        self.replica = make_model()
        for mine, theirs in zip(self.model.dense_layers_, self.replica.dense_layers_):
            theirs.params = mine.params  # shared weights; own caches and gradients
        self.moments = {k: (np.zeros(p.size, p.dtype), np.zeros(p.size, p.dtype))
                        for k, p in self.model.parameters().items()}
        self.barrier = threading.Barrier(2)
        self.job = None
        threading.Thread(target=self._helper, daemon=True).start()

    def _update_half(self, part, grads, replica_grads, w1, w2):
        opt = self.opt
        c1, c2 = 1 - opt.beta1 ** opt.t, 1 - opt.beta2 ** opt.t
        for name, p in self.model.parameters().items():
            f = p.dtype.type
            lo, hi = (0, p.size // 2) if part == 0 else (p.size // 2, p.size)
            g = grads[name].reshape(-1)[lo:hi]
            self.combine(g, replica_grads[name].reshape(-1)[lo:hi], f(w1), f(w2))
            m, v = self.moments[name]
            self.adam_loop(p.reshape(-1)[lo:hi], g, m[lo:hi], v[lo:hi], f(opt.lr), f(opt.beta1),
                           f(1 - opt.beta1), f(opt.beta2), f(1 - opt.beta2), f(opt.eps), f(c1), f(c2), f(1.0))

    def _helper(self):
        while True:
            self.barrier.wait()
            x_half = self.job
            self.replica_grads = self.replica.loss_and_grads(x_half)[1]
            self.barrier.wait()
            self._update_half(1, self.grads, self.replica_grads, *self.weights)
            self.barrier.wait()

    def step(self, x):
        half = x.shape[0] // 2
        self.weights = (half / x.shape[0], (x.shape[0] - half) / x.shape[0])
        self.job = x[half:]
        self.opt.t += 1
        self.barrier.wait()
        self.grads = self.model.loss_and_grads(x[:half])[1]
        self.barrier.wait()
        self._update_half(0, self.grads, self.replica_grads, *self.weights)
        self.barrier.wait()


class SparseInput(Library):
    def step(self, x):
        from scratch_ae.layers import fused
        plain_forward, plain_backward = fused.dense_relu_forward, fused.relu_dense_backward

        def forward(dense, relu, x):
            if dense.need_input_grad:  # only the first layer, whose input is the data
                return plain_forward(dense, relu, x)
            dense.x = x
            dense.columns = np.flatnonzero(x.any(axis=0))
            dense.x_columns = np.take(x, dense.columns, axis=1)
            out = dense.x_columns @ np.take(dense.params["W"], dense.columns, axis=0)
            s = out.dtype.type
            fused.BIAS_RELU_LOOP(out, dense.params["b"], s(1), s(0))
            relu.out = out
            return out

        def backward(relu, dense, grad_out):
            if dense.need_input_grad:
                return plain_backward(relu, dense, grad_out)
            grad_out = np.ascontiguousarray(grad_out)
            delta = np.empty_like(grad_out)
            s = delta.dtype.type
            fused.RELU_GRAD_BIAS_LOOP(grad_out, relu.out, delta, dense.grads["b"], s(1), s(0))
            dense.grads["W"][:] = 0
            dense.grads["W"][dense.columns] = dense.x_columns.T @ delta
            return None

        fused.dense_relu_forward, fused.relu_dense_backward = forward, backward
        try:
            super().step(x)
        finally:
            fused.dense_relu_forward, fused.relu_dense_backward = plain_forward, plain_backward


VARIANTS = {"library": Library, "interleaved-adam": InterleavedAdam, "reordered-adam": ReorderedAdam,
            "two-workers": TwoWorkers, "sparse-input": SparseInput}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", choices=list(common.NETWORKS), default="deep")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--chunks", type=int, default=120, help="chunks of 10 steps per variant")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; expected some of {', '.join(VARIANTS)}")
    from threadpoolctl import threadpool_limits
    from scratch_ae import Autoencoder
    net = common.NETWORKS[args.network]
    sizes, batch = net["sizes"], net["batch"]
    X = common.load_mnist_train()

    def make_model():
        return Autoencoder(sizes=sizes, activation="relu", output_activation="relu", loss="mse", seed=0)

    # One step from the same start: how far each variant's parameters land from the library's.
    after_one = {}
    for name in names:
        variant = VARIANTS[name](make_model)
        with threadpool_limits(variant.blas_threads or args.threads, "blas"):
            variant.step(X[:batch])
        after_one[name] = {k: v.copy() for k, v in variant.model.parameters().items()}
    reference = after_one.get("library")

    variants = {name: VARIANTS[name](make_model) for name in names}
    times = {name: [] for name in names}
    order = np.random.default_rng([0, 1]).permutation(len(X))
    steps = len(X) // batch
    load = [os.getloadavg()]
    for chunk in range(args.chunks):
        turn = names[chunk % len(names):] + names[:chunk % len(names)]
        for name in turn:
            variant = variants[name]
            with threadpool_limits(variant.blas_threads or args.threads, "blas"):
                for _ in range(CHUNK):
                    s = len(times[name]) % steps
                    x = X[order[s * batch:(s + 1) * batch]]
                    t0 = time.perf_counter()
                    variant.step(x)
                    times[name].append(time.perf_counter() - t0)
    load.append(os.getloadavg())
    result = {}
    for name in names:
        t = np.asarray(times[name][2 * CHUNK:]) * 1e3  # the first two chunks warm up (compilation, caches)
        p10 = float(np.percentile(t, 10))
        result[name] = {"median_ms": float(np.median(t)), "p10_ms": p10, "p25_ms": float(np.percentile(t, 25)),
                        "epoch_s_at_p10": p10 * math.ceil(60000 / batch) / 1e3}
        if reference is not None:
            result[name]["one_step_max_rel_diff"] = max(
                float(np.abs(after_one[name][k] - reference[k]).max() / np.abs(reference[k]).max()) for k in reference)
    out = {"what": "step_variants", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "network": args.network,
           "batch": batch, "threads": args.threads, "chunks": args.chunks, "load_average": load,
           "machine": common.machine(), "variants": result}
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
