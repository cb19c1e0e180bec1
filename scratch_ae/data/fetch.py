"""Find the IDX files of one split of a dataset, downloading the missing ones."""
import os

from .download import download_file
from .errors import DataError, DownloadError
from .paths import DATA_ENV, download_dirs, find_file
from .sources import CHECKSUMS, SPLIT_FILES, mirror_urls


def _writable_dir(name, data_dir):
    """The first directory of download_dirs that can hold ``<dir>/<name>/``."""
    for base in download_dirs(data_dir):
        target = base / name
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(target, os.W_OK):
            return target
    return None


def split_files(name, split, data_dir=None, download=True, mirrors=None):
    """Return the paths (images, labels) of `split` of IDX dataset `name`.

    Missing files are downloaded when `download` is true (see paths.py for
    the search order and download.py for the checks); otherwise, or when
    every mirror fails, DataError says which files to put where.
    """
    wanted = SPLIT_FILES[split]
    found = {f: find_file(name, f, data_dir) for f in wanted}
    missing = [f for f, p in found.items() if p is None]
    if not missing:
        return tuple(found[f] for f in wanted)
    target = _writable_dir(name, data_dir) if download else None
    shown = target or download_dirs(data_dir)[0] / name
    files = ", ".join(f + ".gz" for f in missing)
    hint = f"{name} {split} files not found: {files}; put them in {shown} (or set {DATA_ENV})"
    if not download:
        raise DataError(hint + ", or pass download=True")
    if target is None:
        raise DataError(hint + "; no writable directory to download them into")
    for f in missing:
        urls = mirror_urls(name, f + ".gz", mirrors)
        try:
            found[f] = download_file(urls, target / (f + ".gz"), CHECKSUMS[name][f])
        except DownloadError as exc:
            tried = "; ".join(exc.failures)
            raise DataError(f"{hint}; download of {f}.gz failed, mirrors tried: {tried}") from None
    return tuple(found[f] for f in wanted)
