"""What every lab shares: its data, a training helper, and the results table writer."""
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


def train_autoencoder(X_train, *, X_val=None, epochs=8, backend="numpy", seed=0, progress=False, **model_kwargs):
    """Build an Autoencoder from model_kwargs, train it with its own fit(), return it (history_ set)."""
    model = Autoencoder(backend=backend, seed=seed, epochs=epochs, progress=progress, **model_kwargs)
    t0 = time.perf_counter()
    model.fit(X_train, X_val=X_val)
    model.train_seconds_ = time.perf_counter() - t0
    return model


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
