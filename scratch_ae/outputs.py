"""Output folders: checked before any work starts, and never silently reused.

Every command that writes (`train`, `evaluate`, `reconstruct`, `lab`) calls
`check_writable` on its output folder before it loads data or trains, so a
path that is a file, lies under a file, or sits on a read-only or forbidden
filesystem costs one line and no training.  The check writes a probe file in
the nearest existing folder and removes it at once: the only test that is
right for root, read-only mounts and ACLs alike (`os.access` is not).
"""
import os
import tempfile


class OutputError(ValueError):
    """An output folder cannot be written, or would overwrite a finished run."""


FINISHED_RUN_FILES = ("metrics.json", "model.npz")
INTERRUPTED_RUN_FILE = "resume.npz"


def check_writable(path, argument="--out"):
    """Raise OutputError (one line naming `argument`, the path and the reason) unless files can be
    written into folder `path`; creates nothing (the folder itself is made later, by the writer)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"argument {argument}: {path} is an existing file, not a folder")
    existing = path
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise OutputError(f"argument {argument}: cannot create {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".scratch-ae-probe-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"argument {argument}: cannot write in {existing} ({reason})") from None
    return path


def fresh_run_dir(base):
    """`base` if it does not exist yet, else the first of base-2, base-3, ... that does not."""
    if not os.path.exists(base):
        return base
    k = 2
    while os.path.exists(f"{base}-{k}"):
        k += 1
    return f"{base}-{k}"


def check_not_a_finished_run(path, overwrite, argument="--out"):
    """Refuse (one line) a folder that already holds a finished or interrupted run, unless `overwrite`."""
    if overwrite or not os.path.isdir(path):
        return
    finished = [name for name in FINISHED_RUN_FILES if os.path.exists(os.path.join(path, name))]
    if finished:
        raise OutputError(f"argument {argument}: {path} already holds a finished run ({finished[0]}); "
                          f"pass --overwrite to replace it, or choose another --out")
    if os.path.exists(os.path.join(path, INTERRUPTED_RUN_FILE)):
        raise OutputError(f"argument {argument}: {path} holds an interrupted run; continue it with "
                          f"`scratch-ae train --resume {path}`, or pass --overwrite to start afresh")
