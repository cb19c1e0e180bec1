"""The training loop: seeded minibatches, history, early stopping, NaN stop, Ctrl-C and resume.

Determinism: epoch e's batch order comes from default_rng([seed, e]), the
input noise of step s of epoch e from default_rng([seed, e, s]) and the
stochastic layers' draws (dropout masks) from default_rng([seed, e, s, 1]), so
a run resumed from any step sees exactly what an uninterrupted run would have
seen.  On CuPy
the data set lives on the device, batches are gathered there, and the loss is
read back to the host once per epoch, never per step.
"""
import math
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np
from tqdm import tqdm  # the plain bar: tqdm.auto warns in notebooks without ipywidgets

from .checkpoint import load_arrays, save_arrays
from .schedules import apply_schedule, make_schedule


DIVERGENCE_FACTOR = 10.0


class DivergenceWarning(RuntimeWarning):
    """Training stopped because the loss became NaN/inf or diverged (see `Trainer`)."""


class TrainingInterrupted(Exception):
    """Training was stopped by Ctrl-C; `resume_path` (if set) holds a resumable checkpoint."""

    def __init__(self, message, resume_path=None):
        super().__init__(message)
        self.resume_path = resume_path


def check_finite_data(X, what="training data", chunk_rows=4096):
    """Raise ValueError naming the first row with NaN or inf, before any training.

    Checked `chunk_rows` rows at a time, so the boolean mask stays small (a mask of
    all of MNIST at once would be a 47 MB transient array).
    """
    from .backend import array_module
    xp = array_module(X)
    for start in range(0, X.shape[0], chunk_rows):
        bad_rows = ~xp.isfinite(X[start:start + chunk_rows]).reshape(-1, X[0].size).all(axis=1)
        if bool(bad_rows.any()):
            raise ValueError(f"{what} contains NaN or inf (first at row {start + int(bad_rows.argmax())}); "
                             "clean or drop those rows before training")


def infer_image_shape(width):
    """The image shape of a flat width: s*s -> (s, s), 3*s*s -> (3, s, s), else (width,)."""
    for channels in (1, 3):
        side = math.isqrt(width // channels)
        if channels * side * side == width:
            return (side, side) if channels == 1 else (3, side, side)
    return (width,)


class Trainer:
    """Minibatch training of an `Autoencoder` with an `Optimizer`.

    epochs, batch_size : the loop.  noise : None, a spec string ("gaussian:0.45",
    "occlusion:0.2") or a callable f(x, rng) -> corrupted x: denoising training
    feeds the corrupted batch and reconstructs the clean one.  patience : stop
    when the validation loss has not improved for this many epochs, and restore
    the best weights.  resume_path : where Ctrl-C (and each epoch end) writes a
    resumable checkpoint.  callbacks : functions f(trainer, epoch) called after
    each epoch; step_callback : f(trainer, epoch, step) after each step.
    lr_schedule : None (a constant rate) or a schedule (scratch_ae.schedules, or its spec
    string such as "cosine" or "warmup-cosine:0.05"): the optimizer's rate before each
    step is the schedule's multiplier times the rate it was built with, a pure function of
    the global step (schedule_per="step") or of the epoch ("epoch"), so a resumed run
    follows the same rates.
    progress : True draws a bar (`epoch 3/8`) when stderr is a terminal and
    prints one line per epoch when it is not (a log file, CI); False is silent.

    Divergence rule: training stops at the end of an epoch whose mean training
    loss is NaN or inf, or exceeds `divergence_factor` (default 10) times the
    initial loss (the untrained model's objective on the first batch, measured
    once before the first step); `divergence_factor=None` keeps only the NaN/inf
    check.  The weights of the best finite epoch (lowest validation loss, or
    training loss without validation data) are then restored; when no epoch
    ended finite the initial weights are.  `history["stop_reason"]` says which,
    `history["diverged"]` is True, and a `DivergenceWarning` is issued.
    """

    def __init__(self, model, optimizer, epochs=8, batch_size=100, noise=None, patience=None, seed=0,
                 progress=True, resume_path=None, callbacks=(), step_callback=None, image_shape=None,
                 eval_batch_size=2000, divergence_factor=DIVERGENCE_FACTOR, lr_schedule=None, schedule_per="step"):
        if not (isinstance(epochs, (int, np.integer)) and epochs > 0):
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if patience is not None and not (isinstance(patience, (int, np.integer)) and patience > 0):
            raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
        self.model, self.optimizer = model, optimizer
        self.epochs, self.batch_size, self.patience, self.seed = epochs, batch_size, patience, seed
        self.noise = self._noise_fn(noise, image_shape or infer_image_shape(model.input_size))
        self.progress, self.resume_path = progress, resume_path
        self.callbacks, self.step_callback = list(callbacks), step_callback
        self.eval_batch_size = eval_batch_size
        if divergence_factor is not None and not divergence_factor > 1:
            raise ValueError(f"divergence_factor must be a number > 1 or None, got {divergence_factor!r}")
        self.divergence_factor = divergence_factor
        self.lr_schedule = None if lr_schedule is None else make_schedule(lr_schedule)
        if schedule_per not in ("step", "epoch"):
            raise ValueError(f"schedule_per must be 'step' or 'epoch', got {schedule_per!r}")
        self.schedule_per, self.base_lr = schedule_per, optimizer.lr
        self.history = {"train_loss": [], "val_loss": [], "epoch_seconds": [], "stop_reason": None, "best_epoch": None,
                        "diverged": False, "initial_loss": None}
        self._stop_requested = False
        self._start = (0, 0, 0.0)  # epoch, step, loss sum so far (set by resume)
        # (score, copy of the parameters, epoch): the best epoch so far by validation loss (by training loss
        # without validation data), or the initial weights with epoch None; early stopping restores it
        # at the end, a diverging run falls back to it.
        self._best = None
        self._wait = 0
        self.resume_extra = {}  # JSON-able extras saved with a resumable checkpoint (the CLI stores its config)

    @staticmethod
    def _noise_fn(noise, image_shape):
        if noise is None or callable(noise):
            return noise
        from .data import parse_corruption
        return parse_corruption(noise, image_shape)

    # ------------------------------------------------------------------ the loop
    def fit(self, X_train, X_val=None):
        """Train; returns the history dict (train_loss, val_loss, epoch_seconds, stop_reason, best_epoch, diverged)."""
        model, backend = self.model, self.model.backend_
        X_train = self._prepare(X_train, "training data")
        X_val = self._prepare(X_val, "validation data") if X_val is not None and len(X_val) else None
        if self.patience is not None and X_val is None:
            raise ValueError("patience (early stopping) needs validation data; pass X_val or a --val-fraction > 0")
        n = X_train.shape[0]
        steps = math.ceil(n / self.batch_size)
        params = model.parameters()
        stochastic = model.stochastic_
        start_epoch, start_step, start_sum = self._start
        if start_epoch == 0 and start_step == 0:
            self._best = (None, self._snapshot(), None)  # the initial weights, until an epoch ends finite
        if self.history["initial_loss"] is None and self.divergence_factor is not None:
            self.history["initial_loss"] = self._initial_loss(X_train, n)
        bar = _Progress(self.progress, self.epochs, steps, start_epoch, start_step)
        # Overflow inside a diverging epoch is caught below by the divergence check, which says so clearly.
        with _sigint_sets_flag(self), np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(start_epoch, self.epochs):
                t0 = time.perf_counter()
                bar.start_epoch(epoch)
                if hasattr(model, "start_epoch"):  # per-epoch settings of a model (a VAE's KL warm-up)
                    model.start_epoch(epoch)
                order = backend.asarray(np.random.default_rng([self.seed, epoch]).permutation(n))
                loss_sum = backend.xp.zeros((), dtype=np.float64) + (start_sum if epoch == start_epoch else 0.0)
                first = start_step if epoch == start_epoch else 0
                for step in range(first, steps):
                    batch = X_train[order[step * self.batch_size:(step + 1) * self.batch_size]]
                    inputs = batch
                    if self.noise is not None:
                        inputs = self.noise(batch, np.random.default_rng([self.seed, epoch, step]))
                    layer_rng = np.random.default_rng([self.seed, epoch, step, 1]) if stochastic else None
                    loss, grads = model.loss_and_grads(inputs, target=batch, rng=layer_rng)
                    if self.lr_schedule is not None:
                        self._schedule(epoch, step, steps)
                    self.optimizer.step(params, grads)
                    loss_sum += loss * batch.shape[0]  # stays on the device: no per-step sync
                    bar.update()
                    if self.step_callback is not None:
                        self.step_callback(self, epoch, step)
                    if self._stop_requested:
                        bar.close()
                        self._interrupt(epoch, step + 1, float(loss_sum))
                train_loss = float(loss_sum) / n  # the one host read of the epoch
                if self._diverged(train_loss, epoch):
                    break
                val_loss = self.evaluate(X_val) if X_val is not None else None
                self.history["train_loss"].append(train_loss)
                self.history["val_loss"].append(val_loss)
                self.history["epoch_seconds"].append(time.perf_counter() - t0)
                bar.end_epoch(epoch, train_loss, val_loss, self.history["epoch_seconds"][-1])
                improved = self._track_best(train_loss if X_val is None else val_loss, epoch)
                stop = self._early_stopping(epoch, val_loss, improved)
                for callback in self.callbacks:
                    callback(self, epoch)
                if self.resume_path is not None and epoch + 1 < self.epochs and not stop:
                    self.save_resume(epoch + 1, 0, 0.0)
                if stop:
                    break
        bar.close()
        if self.history["stop_reason"] and self.history["diverged"]:
            warnings.warn(self.history["stop_reason"], DivergenceWarning, stacklevel=2)
        elif self.patience is not None and self._best[2] is not None:
            self._restore(self._best[1])
        if self.resume_path is not None and os.path.exists(self.resume_path):
            os.remove(self.resume_path)
        self.history["epochs_run"] = len(self.history["train_loss"])
        return self.history

    def _schedule(self, epoch, step, steps):
        """Set the optimizer's rate for the step about to be taken (derivations/optimizers.md#lr-schedules)."""
        if self.schedule_per == "step":
            apply_schedule(self.optimizer, self.base_lr, self.lr_schedule, epoch * steps + step, self.epochs * steps, steps)
        else:
            apply_schedule(self.optimizer, self.base_lr, self.lr_schedule, epoch, self.epochs)

    def _initial_loss(self, X_train, n):
        """The untrained model's objective on epoch 0's first batch (with its noise): the divergence yardstick.

        Read once, before the first step, so the loop itself still reads the device once per epoch.
        """
        order = np.random.default_rng([self.seed, 0]).permutation(n)[:self.batch_size]
        batch = X_train[self.model.backend_.asarray(order)]
        inputs = batch if self.noise is None else self.noise(batch, np.random.default_rng([self.seed, 0, 0]))
        return float(self.model.objective(inputs, target=batch))

    def _diverged(self, train_loss, epoch):
        """Apply the divergence rule (class docstring) to one epoch's loss; on divergence restore and record."""
        initial = self.history["initial_loss"]
        if math.isfinite(train_loss):
            if self.divergence_factor is None or initial is None or not math.isfinite(initial):
                return False
            if not train_loss > self.divergence_factor * initial:
                return False
            what = (f"the training loss diverged in epoch {epoch + 1}: {train_loss:.4g}, more than "
                    f"{self.divergence_factor:g} times the initial loss {initial:.4g}")
        else:
            what = f"the training loss became {train_loss} in epoch {epoch + 1}"
        _, snapshot, best_epoch = self._best
        self._restore(snapshot)
        self.history["diverged"] = True
        self.history["best_epoch"] = best_epoch
        if best_epoch is None:
            self.history["stop_reason"] = (f"{what}; no epoch ended without diverging, so the model was reset to "
                                           "the weights it started from (the initial ones)")
        else:
            self.history["stop_reason"] = f"{what}; stopped and restored the weights of epoch {best_epoch}, the best finite one"
        return True

    def _prepare(self, X, what):
        """Validate on the host (shape, finiteness), then copy to the device once."""
        model = self.model
        X = model._as_samples(X, model.input_size, what)
        if X.shape[0] == 0:
            raise ValueError(f"{what} is empty")
        check_finite_data(X, what)
        model.check_data_range(X, what)
        return model.backend_.asarray(X, dtype=model.dtype)

    def evaluate(self, X):
        """Mean reconstruction loss (no penalties) over X on the device, read back once."""
        model, xp = self.model, self.model.xp
        total = xp.zeros((), dtype=np.float64)
        for i in range(0, X.shape[0], self.eval_batch_size):
            batch = X[i:i + self.eval_batch_size]
            total += model.reconstruction_loss(batch) * batch.shape[0]
        return float(total) / X.shape[0]

    # ------------------------------------------------------------------ early stopping and snapshots
    def _track_best(self, score, epoch):
        """Keep a copy of the weights when this epoch's finite `score` is the best so far; True if it is."""
        if not math.isfinite(score) or (self._best[0] is not None and not score < self._best[0]):
            return False
        self._best = (score, self._snapshot(), epoch + 1)
        return True

    def _early_stopping(self, epoch, val_loss, improved):
        if self.patience is None or val_loss is None or not math.isfinite(val_loss):
            return False
        if improved:
            self.history["best_epoch"] = epoch + 1
            self._wait = 0
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.history["stop_reason"] = (f"early stopping: validation loss did not improve for {self.patience} "
                                           f"epochs; restored the weights of epoch {self.history['best_epoch']}")
            return True
        return False

    def _snapshot(self):
        return {name: arr.copy() for name, arr in self.model.parameters().items()}

    def _restore(self, snapshot):
        for name, param in self.model.parameters().items():
            param[...] = self.model.xp.asarray(snapshot[name])

    # ------------------------------------------------------------------ Ctrl-C and resume
    def request_stop(self):
        """Ask the loop to stop cleanly after the current step (what Ctrl-C does)."""
        self._stop_requested = True

    def _interrupt(self, epoch, step, loss_sum):
        if self.resume_path is not None:
            self.save_resume(epoch, step, loss_sum)
            raise TrainingInterrupted(f"training interrupted at epoch {epoch + 1}, step {step}; "
                                      f"resumable checkpoint written to {self.resume_path}", self.resume_path)
        raise TrainingInterrupted(f"training interrupted at epoch {epoch + 1}, step {step}")

    def save_resume(self, epoch, step, loss_sum):
        """Write model, optimizer state and loop position to `resume_path` (atomically)."""
        arrays = {f"model.{k}": v for k, v in self.model.state_arrays().items()}
        arrays.update({f"optimizer.{k}": self.model.backend_.to_numpy(v) for k, v in self.optimizer.state_arrays().items()})
        score, snapshot, best_epoch = self._best
        arrays.update({f"best.{k}": self.model.backend_.to_numpy(v) for k, v in snapshot.items()})
        config = {"model": self.model.config(), "epoch": epoch, "step": step, "loss_sum": loss_sum,
                  "optimizer_t": self.optimizer.t, "history": self.history, "wait": self._wait,
                  "best": [score, best_epoch], **self.resume_extra}
        save_arrays(self.resume_path, arrays, config)

    def load_resume(self, path):
        """Restore a state written by `save_resume`; the next `fit` continues from there."""
        arrays, config = load_arrays(path)
        group = lambda prefix: {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        self.model.load_state_arrays(group("model."), source=f"resume checkpoint {str(path)!r}")
        self.optimizer.load_state_arrays(group("optimizer."), config["optimizer_t"], self.model.parameters())
        self._wait = config["wait"]
        # Files written before the best epoch was kept in one place say "best_val_loss" instead.
        score, best_epoch = config.get("best", [config.get("best_val_loss"), config["history"].get("best_epoch")])
        self._best = (score, group("best.") or self._snapshot(), best_epoch)
        self.history = {"diverged": False, "initial_loss": None, **config["history"]}
        self._start = (config["epoch"], config["step"], config["loss_sum"])
        return config


class _Progress:
    """A tqdm bar (`epoch 3/8`) on a terminal; one line per epoch on stderr otherwise; nothing when disabled.

    A log file or CI gets readable lines instead of a redrawn bar's carriage returns.
    """

    def __init__(self, enabled, epochs, steps, start_epoch, start_step):
        self.enabled, self.epochs = bool(enabled), epochs
        isatty = getattr(sys.stderr, "isatty", None)
        self.tty = self.enabled and callable(isatty) and isatty()
        self.bar = tqdm(total=epochs * steps, initial=start_epoch * steps + start_step, disable=not self.tty,
                        unit="step", leave=False, file=sys.stderr)

    def start_epoch(self, epoch):
        if self.tty:
            self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}")

    def update(self):
        self.bar.update(1)

    def end_epoch(self, epoch, train_loss, val_loss, seconds):
        val = "-" if val_loss is None else f"{val_loss:.4g}"
        if self.tty:
            self.bar.set_postfix(train=f"{train_loss:.4g}", val=val)
        elif self.enabled:
            print(f"epoch {epoch + 1}/{self.epochs}: training loss {train_loss:.4g}, validation loss {val}, "
                  f"{seconds:.1f} s", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


class _sigint_sets_flag:
    """While training, the first Ctrl-C asks for a clean stop after the current step; a second one kills."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.trainer._stop_requested:
                    signal.default_int_handler(signum, frame)
                self.trainer.request_stop()

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
