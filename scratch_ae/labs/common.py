"""What every lab shares: its data, a training helper, the results table writer, and LabRecord:
the rows and trained models a lab keeps as it goes, so that Ctrl-C loses nothing."""
import hashlib
import json
import os
import time

import numpy as np

from ..metrics import reconstruction_metrics
from ..models import Autoencoder

QUICK_TRAIN, QUICK_TEST = 2000, 500


def lab_data(dataset="mnist", quick=False, n_train=None, n_test=None):
    """(train, test) Datasets; quick mode keeps the first 2000 / 500 images."""
    from ..data import load_dataset
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    n_train = n_train or (QUICK_TRAIN if quick else None)
    n_test = n_test or (QUICK_TEST if quick else None)
    return _head(train, n_train), _head(test, n_test)


def _head(ds, n):
    if n is None or n >= ds.images.shape[0]:
        return ds
    import dataclasses
    return dataclasses.replace(ds, images=ds.images[:n], labels=ds.labels[:n])


def train_autoencoder(X_train, *, record, X_val=None, epochs=8, backend="numpy", seed=0, progress=False,
                      **model_kwargs):
    """Build an Autoencoder from model_kwargs, train it with its own fit() through `record` (a LabRecord),
    return it (history_ and train_seconds_ set)."""
    model = Autoencoder(backend=backend, seed=seed, epochs=epochs, progress=progress, **model_kwargs)
    return record.fit(model, X_train, X_val=X_val)


class LabRecord:
    """One lab run's finished rows and trained models, kept in out_dir as the lab goes.

    `add(row)` appends a finished row and rewrites results.json / results.md at once, marked
    "partial": true (the lab's final write_results replaces them, unmarked): Ctrl-C keeps every
    row finished before it.  `fit(model, X)` and `train(trainer, X)` train a model and save it to
    out_dir/checkpoints/fit-K.npz (K: the lab's K-th training), with its history, its fitted
    scalars (train_seconds_, a VAE's beta_, ...) and `keep`, what the trainer's callbacks
    recorded (snapshots); when that file is already there, left by an interrupted run of the same
    lab in the same folder (`scratch-ae lab NAME --resume DIR`), they load it instead of training,
    so a resumed lab skips the rows it finished and re-runs the one it was in.  A checkpoint is
    used only if it was written for a model with the same parameters and data of the same shape
    (its fingerprint); otherwise the model is trained afresh.

    A row added after a training that diverged (model.history_["diverged"]) is marked
    "diverged": true; `scratch-ae lab` exits with status 3 when a row is.
    """

    def __init__(self, out_dir, title):
        self.out_dir, self.title = out_dir, title
        self.rows = []
        self._trainings = 0
        self._diverged = False

    def add(self, row, models=None):
        """Append a finished row (marked diverged if `models`, default: those trained since the last
        row, include one that diverged) and rewrite the partial results."""
        diverged = self._diverged if models is None else any(_diverged(m) for m in models)
        if diverged:
            row = {**row, "diverged": True}
        self._diverged = False
        self.rows.append(row)
        write_results(self.out_dir, self.title, self.rows, extra={"partial": True},
                      notes="Partial: the rows finished so far (the lab was interrupted, or is still running).")
        return row

    def fit(self, model, X, X_val=None):
        """model.fit(X, X_val=X_val) (or its saved result); returns the model, history_ and train_seconds_ set."""
        def train():
            t0 = time.perf_counter()
            model.fit(X, X_val=X_val)
            model.train_seconds_ = time.perf_counter() - t0
            return model.history_
        self._run(model, X, train, {})
        return model

    def train(self, trainer, X, X_val=None, keep=None):
        """trainer.fit(X, X_val) (or its saved result); returns the history, model.train_seconds_ set.

        keep: a dict the trainer's callbacks fill while it trains (name -> array, dict of int -> array,
        or JSON-able values); saved with the model and filled back in when the training is skipped."""
        model = trainer.model

        def train():
            t0 = time.perf_counter()
            history = trainer.fit(X, X_val)
            model.train_seconds_ = time.perf_counter() - t0
            return history
        self._run(model, X, train, keep if keep is not None else {})
        return model.history_

    # ------------------------------------------------------------------ the checkpoints
    def _run(self, model, X, train, keep):
        from ..checkpoint import CheckpointError, load_arrays, save_arrays
        self._trainings += 1
        path = os.path.join(self.out_dir, "checkpoints", f"fit-{self._trainings}.npz")
        fingerprint = _fingerprint(model, X)
        try:
            arrays, config = load_arrays(path) if os.path.exists(path) else (None, None)
        except CheckpointError:
            arrays, config = None, None
        if config is not None and config.get("fingerprint") == fingerprint:
            model._build_for_fit(X)
            model.load_state_arrays({k[6:]: v for k, v in arrays.items() if k.startswith("model.")},
                                    source=f"lab checkpoint {path!r}")
            for name, value in config["fitted"].items():
                setattr(model, name, value)
            model.history_ = config["history"]
            model.n_features_in_ = model.input_size
            _restore_keep(keep, arrays, config["keep"])
        else:
            history = train()
            model.history_ = history
            model.n_features_in_ = model.input_size
            fitted = {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")
                      and k not in UNSAVED and isinstance(v, (bool, int, float, str))}
            keep_arrays, keep_json = _split_keep(keep)
            save_arrays(path, {**{f"model.{k}": v for k, v in model.state_arrays().items()}, **keep_arrays},
                        _plain({"fingerprint": fingerprint, "history": history, "fitted": fitted, "keep": keep_json}))
        self._diverged = self._diverged or _diverged(model)


def _diverged(model):
    return bool(getattr(model, "history_", {}).get("diverged"))


def mark_diverged(rows, models):
    """`rows` computed from all of `models` at once: each marked diverged when one of them diverged."""
    return [{**row, "diverged": True} if any(_diverged(m) for m in models) else row for row in rows]


UNSAVED = ("engine_",)  # set by the build from this run's --engine, which a resume may change
UNFINGERPRINTED = ("engine", "progress", "backend")  # how a model runs, not what it learns


def _plain(value):
    """JSON-able: numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fingerprint(model, X):
    """The model's class and parameters (objects by their type's name) and the data's shape, hashed."""
    params = {k: v for k, v in model.get_params().items() if k not in UNFINGERPRINTED}
    params = json.dumps(params, sort_keys=True,
                        default=lambda v: v.tolist() if isinstance(v, np.ndarray) else type(v).__name__)
    text = f"{type(model).__name__}|{params}|{tuple(np.shape(X))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _split_keep(keep):
    """keep -> (arrays "keep.NAME" / "keep.NAME.KEY", JSON {NAME: value or {"arrays": [KEY, ...]}})."""
    arrays, plain = {}, {}
    for name, value in keep.items():
        if isinstance(value, np.ndarray):
            arrays[f"keep.{name}"] = value
            plain[name] = {"array": True}
        elif isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            for key, arr in value.items():
                arrays[f"keep.{name}.{key}"] = arr
            plain[name] = {"arrays": [str(key) for key in value]}
        else:
            plain[name] = {"value": _plain(value)}
    return arrays, plain


def _restore_keep(keep, arrays, plain):
    """Fill `keep` in place from a checkpoint, as the callbacks had filled it (dicts and lists updated)."""
    for name, spec in plain.items():
        if "array" in spec:
            value = arrays[f"keep.{name}"]
        elif "arrays" in spec:
            value = {_key(key): arrays[f"keep.{name}.{key}"] for key in spec["arrays"]}
        else:
            value = spec["value"]
        current = keep.get(name)
        if isinstance(current, dict) and isinstance(value, dict):
            current.clear()
            current.update(value)
        elif isinstance(current, list) and isinstance(value, list):
            current[:] = value
        else:
            keep[name] = value


def _key(text):
    return int(text) if text.lstrip("-").isdigit() else text


def errors_row(name, model_or_pca, train_X, test_X):
    """{"model": name, "train_sse_per_image", "test_sse_per_image"} for an Autoencoder or a PCA."""
    def sse(X):
        if isinstance(model_or_pca, Autoencoder):
            return reconstruction_metrics(model_or_pca, X)["sse_per_image"]
        return float(model_or_pca.reconstruction_error(X))
    return {"model": name, "train_sse_per_image": sse(train_X), "test_sse_per_image": sse(test_X)}


def write_results(out_dir, title, rows, extra=None, notes=None):
    """Write results.json ({"title", "rows", **extra}) and results.md (a Markdown table) in out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    payload = {"title": title, "rows": rows, **(extra or {})}
    _atomic_write(os.path.join(out_dir, "results.json"), json.dumps(payload, indent=2, default=_jsonable))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = [f"# {title}", ""]
    if notes:
        lines += [notes, ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    _atomic_write(os.path.join(out_dir, "results.md"), "\n".join(lines) + "\n")
    return payload


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
