"""Shared pieces of the benchmarks: data, networks, GEMM work, memory, subprocess runs.

Kept free of both scratch_ae and torch at import time, so a PyTorch worker
process never imports scratch_ae (and its scikit-learn dependency) and a
scratch-ae worker never imports torch: each process's peak memory is its own.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIRS = (ROOT / "scratch_ae" / "data" / "mnist", Path("/work/shared/datasets/mnist"))

# The two networks of issue 5.  Encoder widths; the decoder mirrors them.
NETWORKS = {
    "standard": {"sizes": [784, 256], "batch": 100},
    "deep": {"sizes": [784, 1000, 500, 250, 30], "batch": 256},
}


# ---------------------------------------------------------------------------- data
def load_mnist_train(limit=None):
    """The 60,000 MNIST training images as (N, 784) float32 in [0, 1].

    Read straight from the IDX .gz file (the same bytes `scratch_ae.data.load_dataset`
    reads), so the PyTorch worker loads exactly the same array without importing
    scratch_ae.  uint8 -> float32 / 255, like load_dataset.
    """
    for d in MNIST_DIRS:
        path = d / "train-images-idx3-ubyte.gz"
        if path.exists():
            break
    else:
        raise FileNotFoundError(f"train-images-idx3-ubyte.gz not found in {', '.join(map(str, MNIST_DIRS))}")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: bad IDX magic {magic}")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    if limit is not None:
        images = images[:limit]
    out = images.astype(np.float32)
    out /= 255.0
    return out


def he_weights(sizes, seed):
    """The initial weights scratch-ae's Autoencoder draws for an all-ReLU network.

    Same generator, same order, same formula as scratch_ae.layers.init_weights("he"):
    W_i ~ N(0, 2 / fan_in), drawn (fan_in, fan_out), biases zero.  Used to start the
    PyTorch network from exactly scratch-ae's weights (checked by the first loss).
    """
    widths = list(sizes) + list(sizes)[-2::-1]
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((a, b)) * math.sqrt(2.0 / a)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]


# ---------------------------------------------------------------------------- GEMM work
def layer_widths(sizes):
    widths = list(sizes) + list(sizes)[-2::-1]
    return list(zip(widths[:-1], widths[1:]))


def epoch_gemm_flops(sizes, n_images):
    """Floating-point operations in one epoch's matrix products (2 per multiply-add).

    Per image and Dense layer (fan_in a, fan_out b): forward x W (2ab), grad_W = x^T g
    (2ab), grad_x = g W^T (2ab) except for the first layer, whose input is the data.
    Independent of the batch size (the last, smaller batch included).
    """
    per_image = 0
    for i, (a, b) in enumerate(layer_widths(sizes)):
        per_image += 2 * a * b * (2 if i == 0 else 3)
    return per_image * n_images


# ---------------------------------------------------------------------------- memory
def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_report(rss_before_kib, hwm_reset):
    """Peak memory of this worker process, in MiB.

    peak_rss_mib : getrusage(RUSAGE_SELF).ru_maxrss, the whole process (interpreter,
        libraries, the data set, the training), what `/usr/bin/time -v` would report.
    epoch_extra_mib : the peak resident size during the epoch (VmHWM, reset just
        before it) minus the resident size just before it: the memory the training
        itself needed on top of the loaded libraries and data.
    """
    rep = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_epoch_mib": rss_before_kib / 1024}
    if hwm_reset:
        rep["epoch_peak_rss_mib"] = _status_kib("VmHWM") / 1024
        rep["epoch_extra_mib"] = rep["epoch_peak_rss_mib"] - rep["rss_before_epoch_mib"]
    return rep


def current_rss_kib():
    return _status_kib("VmRSS")


# ---------------------------------------------------------------------------- processes
def thread_env(threads):
    """Environment that pins OpenBLAS, MKL and OpenMP to `threads` threads."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(script, spec, threads, timeout=900):
    """Run `python script --worker JSON` in a fresh process; returns its last stdout line as JSON."""
    cmd = [sys.executable, str(script), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_has_cuda():
    """Whether PyTorch here can run on CUDA, asked in a child process (this one never imports torch)."""
    code = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def numba_version():
    """Numba's version, or None: with Numba, scratch-ae's fused Adam on the CPU is one compiled loop."""
    try:
        import numba
        return numba.__version__
    except ImportError:
        return None


def blas_info():
    """Which BLAS NumPy uses here and with how many threads (threadpoolctl, if installed)."""
    try:
        from threadpoolctl import threadpool_info
        return [{k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")} for d in threadpool_info()]
    except ImportError:
        return None


def machine():
    """A short description of the machine: CPU model, cores, Python, NumPy."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()}


def median(values):
    return float(np.median(np.asarray(values, dtype=np.float64)))


class Stopwatch:
    """Accumulates wall time per named phase: with sw("gemm"): ..."""

    def __init__(self, sync=None):
        self.totals = {}
        self.sync = sync or (lambda: None)
        self._name = None

    def __call__(self, name):
        self._name = name
        return self

    def __enter__(self):
        self.sync()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.totals[self._name] = self.totals.get(self._name, 0.0) + time.perf_counter() - self._t0
        return False


# ---------------------------------------------------------------------------- where the time goes
def leaf_layers(network):
    """The layers a network runs, nested Sequentials opened (anything with a `.layers` list)."""
    for layer in getattr(network, "layers", [network]):
        if hasattr(layer, "layers") and layer is not network:
            yield from leaf_layers(layer)
        else:
            yield layer


class Breakdown:
    """Wall time per layer class and pass, by timing each layer's own forward/backward.

    `Breakdown().attach(network, ...)` replaces, on each layer object (not its class, not a module
    setting), `forward` and `backward` by timed calls of the originals; `attach_call(obj, "step",
    "optimizer")` does the same for any other call (the loss, the optimizer step).  The totals are
    inclusive of nothing else: a layer's time is its own call.  The rest of a step (batch slicing,
    the Trainer's bookkeeping) is the step time minus their sum.  Only for benchmarks: the timer's
    own cost is about a microsecond a call.
    """

    def __init__(self):
        self.totals = {}
        self.calls = {}
        self._seen = set()

    def _wrap(self, obj, method, name):
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - t0
                self.calls[name] = self.calls.get(name, 0) + 1
        setattr(obj, method, timed)

    def attach(self, *networks):
        for network in networks:
            for layer in leaf_layers(network):
                if id(layer) in self._seen:
                    continue
                self._seen.add(id(layer))
                for method in ("forward", "backward"):
                    self._wrap(layer, method, f"{type(layer).__module__.rsplit('.', 1)[-1]}.{type(layer).__name__}.{method}")
        return self

    def attach_call(self, obj, method, name):
        if (id(obj), method) not in self._seen:
            self._seen.add((id(obj), method))
            self._wrap(obj, method, name)
        return self

    def attach_model(self, model):
        """Time whatever networks a scratch-ae model runs (its `_run` hands them out, reference or
        fast, built on first use) and its loss, as they come."""
        run = model._run

        def timed_run(network):
            running = run(network)
            self.attach(running)
            if getattr(model, "loss_fn_", None) is not None:
                self.attach_call(model.loss_fn_, "forward", "loss.forward")
                self.attach_call(model.loss_fn_, "backward", "loss.backward")
            return running
        model._run = timed_run
        return self

    def report(self, total_s, per=1):
        """{phase: seconds / per} plus 'other' (total minus the phases), largest first."""
        rows = {k: v / per for k, v in sorted(self.totals.items(), key=lambda kv: -kv[1])}
        rows["other (batching, loop, bookkeeping)"] = (total_s - sum(self.totals.values())) / per
        return rows
