"""Download dataset files from a list of mirrors, verified by MD5, atomically.

Each mirror is tried in turn.  The body is streamed into a temporary file in
the destination directory; it is accepted only if its length matches the
Content-Length header (when given) and the MD5 of its bytes, or of their
gunzipped bytes, is one of the accepted checksums.  Only then is it renamed
into place (os.replace, atomic).  A partial or rejected file never stays behind.
"""
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from .errors import DataError, DownloadError

CHUNK = 1 << 20
USER_AGENT = "scratch-ae (python urllib)"


def _gunzip_md5(path):
    """MD5 of the decompressed content of gzip file `path`, or None if it is not valid gzip."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def _fetch(url, tmp, timeout):
    """Stream `url` into the open file `tmp`; return the MD5 of the bytes written."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        expected = response.headers.get("Content-Length")
        for chunk in iter(lambda: response.read(CHUNK), b""):
            tmp.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    if expected is not None and expected.isdigit() and size != int(expected):
        raise DataError(f"truncated transfer: got {size} of {expected} bytes")
    return digest.hexdigest()


def _try_mirror(url, dest, md5s, timeout):
    """Download `url` to `dest`; return None on success, else the reason it failed."""
    tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part",
                                      delete=False)
    try:
        try:
            with tmp:
                md5 = _fetch(url, tmp, timeout)
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            return str(exc.reason)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # incl. DataError
            return str(exc) or type(exc).__name__
        if md5 not in md5s and _gunzip_md5(tmp.name) not in md5s:
            return f"checksum mismatch (MD5 {md5})"
        os.replace(tmp.name, dest)
        return None
    finally:
        if os.path.exists(tmp.name):
            os.remove(tmp.name)


def download_file(url_list, dest_path, md5s, timeout=30):
    """Download the first good copy among `url_list` to `dest_path`.

    md5s : accepted MD5 hex digests, of the downloaded bytes or of their
        gunzipped bytes.
    Returns the Path written; raises DownloadError (a DataError) naming the
    file, the directory and every mirror tried, with why it failed.
    """
    dest = Path(dest_path)
    md5s = {m.lower() for m in md5s}
    if not url_list:
        raise DataError(f"download_file: url_list is empty; expected at least one mirror URL for {dest.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in url_list:
        reason = _try_mirror(url, dest, md5s, timeout)
        if reason is None:
            return dest
        failures.append(f"{url} ({reason})")
    raise DownloadError(f"could not download {dest.name} into {dest.parent}; tried: {'; '.join(failures)}",
                        failures)
