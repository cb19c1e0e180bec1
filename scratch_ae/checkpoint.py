"""Checkpoints: one .npz of named arrays plus a JSON `config`, read without pickle.

Written atomically: the arrays go to a temporary file in the target directory,
which is flushed to disk and then renamed over the target, so a crash never
leaves a half-written checkpoint under the real name.  The file gets the
permissions any new file of the user gets (0666 less the umask, normally 0644),
not the private 0600 of a temporary file, so others on a shared lab machine can
read it as they can read metrics.json beside it.
"""
import json
import os
import tempfile
import zipfile

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or does not match its config."""


def save_arrays(path, arrays, config):
    """Write host arrays (dict name -> ndarray) and a JSON-able `config` to `path` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    payload = {name: np.ascontiguousarray(arr) for name, arr in arrays.items()}
    payload["config"] = np.array(json.dumps(config))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _current_umask():
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def load_arrays(path):
    """Read a checkpoint written by `save_arrays`: returns (arrays, config)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    if not zipfile.is_zipfile(path):  # before np.load, whose advice for other files is to unpickle them
        with open(path, "rb") as f:
            starts_like_a_zip = f.read(4) == b"PK\x03\x04"
        if starts_like_a_zip:  # a zip whose end (its central directory) is missing
            raise CheckpointError(f"checkpoint {path!r} is corrupt or truncated (the end of the .npz archive is missing)")
        raise CheckpointError(f"{path!r} is not a scratch-ae checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path!r} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if "config" not in arrays:
        raise CheckpointError(f"checkpoint {path!r} has no 'config' entry; it was not written by scratch-ae")
    try:
        config = json.loads(str(arrays.pop("config")))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path!r} has an unreadable config ({exc})") from None
    return arrays, config
