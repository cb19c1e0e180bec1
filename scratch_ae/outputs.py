"""Output folders: checked before any work starts, claimed atomically, and never silently reused.

Every command that writes (`train`, `evaluate`, `reconstruct`, `search`, `lab`) calls
`check_writable` on its output folder before it loads data or trains, so a
path that is a file, lies under a file, or sits on a read-only or forbidden
filesystem costs one line and no training.  The check writes a probe file in
the nearest existing folder and removes it at once: the only test that is
right for root, read-only mounts and ACLs alike (`os.access` is not).

The commands that write a folder of results (`train`, `search`, `lab`) hold it while they run:
`claim_fresh_folder` creates the first free one of `runs/NAME`, `runs/NAME-2`, ... (os.mkdir is
atomic, so runs started at once get different folders) and `claim_folder` takes an explicit one;
both lock `DIR/.scratch-ae.lock` (`FolderClaim`), so a second run cannot write into a folder a live
run holds, while a folder whose run was killed outright is free at once.
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


LOCK_FILE = ".scratch-ae.lock"


class FolderClaim:
    """An output folder this process holds: an exclusive flock on DIR/.scratch-ae.lock.

    The kernel drops the lock when the process ends, however it ends, so a folder left by a run
    that was killed outright (SIGKILL, a crash, a reboot) is free again at once: its lock file is
    just a file then, and the next claim takes it over.  `release` removes the lock file (a claim
    checks, once locked, that the file it locked is still the one at the path, so a run that
    opened it a moment before the removal tries again instead of holding a deleted file), and
    `release(discard=True)`, for bad input, also removes the folders the claim created when they
    hold nothing else.
    """

    def __init__(self, path, created, handle):
        self.path, self.created, self.handle = path, created, handle

    def release(self, discard=False):
        if self.handle is not None:
            try:
                os.remove(os.path.join(self.path, LOCK_FILE))
            except OSError:
                pass
            self.handle.close()
            self.handle = None
        if discard:
            for folder in reversed(self.created):  # innermost first; a folder with files in it stays
                try:
                    os.rmdir(folder)
                except OSError:
                    break

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def _make_folders(path):
    """os.makedirs(path) that returns the folders it created, outermost first (FileExistsError if path exists)."""
    missing = []
    folder = path
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for i, folder in enumerate(reversed(missing)):
        try:
            os.mkdir(folder)
        except FileExistsError:
            if i == len(missing) - 1:
                raise  # another process made `path` first: the atomic step of the claim
    return list(reversed(missing))


def _lock(path, created, argument):
    lock_path = os.path.join(path, LOCK_FILE)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the folder is claimed by its atomic creation only
        return FolderClaim(path, created, open(lock_path, "a+"))
    while True:
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            other = ", or choose another --out" if argument == "--out" else ""
            raise OutputError(f"argument {argument}: {path} is in use by another scratch-ae run (pid {holder}); "
                              f"wait for it to finish{other}") from None
        try:
            same = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # the holder released it and removed the file between our open and our lock
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return FolderClaim(path, created, handle)


def claim_folder(path, argument="--out"):
    """Hold folder `path` (created if missing) for this run; OutputError if a live run holds it."""
    check_writable(path, argument)
    try:
        created = [] if os.path.isdir(path) else _make_folders(path)
    except FileExistsError:  # made a moment ago by another run: the lock below decides
        created = []
    try:
        return _lock(path, created, argument)
    except OutputError:
        FolderClaim(path, created, None).release(discard=True)
        raise


def claim_fresh_folder(base, argument="--out"):
    """Claim the first of base, base-2, base-3, ... that does not exist, by creating it (os.mkdir is
    atomic: of several runs started at once, each gets its own folder)."""
    check_writable(base, argument)
    k = 1
    while True:
        path = base if k == 1 else f"{base}-{k}"
        if not os.path.exists(path):
            try:
                created = _make_folders(path)
            except FileExistsError:
                created = None
            if created is not None:
                return _lock(path, created, argument)
        k += 1
