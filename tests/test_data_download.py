"""The download path against a local HTTP server on 127.0.0.1 serving small IDX
files made with write_idx, with a test-only checksum table."""
import gzip
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from scratch_ae.data import DataError, download_file, load_dataset, read_idx, write_idx
from scratch_ae.data import sources

FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files[path] = (body, mode); mode "truncate" announces more bytes than it sends."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path not in self.server.files:
            self.send_error(404)
            return
        body, mode = self.server.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (1000 if mode == "truncate" else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests = {}, []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_mirror():
    """A URL on a port nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def gz_files(tmp_path):
    """{file: .gz bytes} of a tiny Fashion-MNIST-like test split (6 images)."""
    src = tmp_path / "src"
    src.mkdir()
    images = np.arange(6 * 784, dtype=np.uint64).reshape(6, 28, 28) % 256
    write_idx(src / "images.gz", images.astype(np.uint8))
    write_idx(src / "labels.gz", np.arange(6, dtype=np.uint8))
    return {FILES[0]: (src / "images.gz").read_bytes(), FILES[1]: (src / "labels.gz").read_bytes()}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, gz_files):
    """Empty cache and no env overrides; a test checksum table holding the .gz MD5s."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCH_AE_DATA", raising=False)
    monkeypatch.delenv("SCRATCH_AE_MIRROR", raising=False)
    table = {f: (hashlib.md5(body).hexdigest(),) for f, body in gz_files.items()}
    monkeypatch.setitem(sources.CHECKSUMS, "fashion-mnist", table)


def serve(server, gz_files, prefix="/", mode="ok"):
    for f, body in gz_files.items():
        server.files[f"{prefix}{f}.gz"] = (body, mode)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_success(tmp_path, server, gz_files, dead_mirror):
    serve(server, gz_files)
    ds = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data", mirrors=[dead_mirror, server.base])
    assert ds.images.shape == (6, 784) and np.array_equal(ds.labels, np.arange(6))
    folder = tmp_path / "data" / "fashion-mnist"
    assert leftovers(folder) == sorted(f + ".gz" for f in FILES)        # no temporary files
    assert (folder / "t10k-labels-idx1-ubyte.gz").read_bytes() == gz_files[FILES[1]]
    load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data", mirrors=[server.base])
    assert len(server.requests) == 2                                     # found, not fetched again


def test_env_mirror_and_cache_dir(tmp_path, server, gz_files, monkeypatch):
    serve(server, gz_files, prefix="/fashion-mnist/")
    monkeypatch.setenv("SCRATCH_AE_MIRROR", server.base + "{name}/")
    ds = load_dataset("fashion-mnist", "test")
    assert len(ds) == 6
    assert leftovers(tmp_path / "cache" / "scratch-ae" / "fashion-mnist") == sorted(f + ".gz" for f in FILES)


def test_checksum_mismatch_leaves_nothing(tmp_path, server, gz_files, monkeypatch):
    serve(server, gz_files)
    monkeypatch.setitem(sources.CHECKSUMS, "fashion-mnist", {f: ("0" * 32,) for f in FILES})
    with pytest.raises(DataError, match="download of t10k-images-idx3-ubyte.gz failed.*checksum mismatch"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data", mirrors=[server.base])
    assert leftovers(tmp_path / "data") == ["fashion-mnist"]


def test_truncated_transfer_leaves_nothing(tmp_path, server, gz_files):
    serve(server, gz_files, mode="truncate")
    size = len(gz_files[FILES[0]])
    with pytest.raises(DataError, match=f"truncated transfer: got {size} of {size + 1000} bytes"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data", mirrors=[server.base])
    assert leftovers(tmp_path / "data") == ["fashion-mnist"]


def test_all_mirrors_down_names_files_directory_and_mirrors(tmp_path, server, dead_mirror):
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data", mirrors=[dead_mirror, server.base])
    message = str(info.value)
    assert "\n" not in message
    assert "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in message
    assert f"put them in {tmp_path / 'data' / 'fashion-mnist'}" in message
    assert f"{dead_mirror}t10k-images-idx3-ubyte.gz (" in message
    assert f"{server.base}t10k-images-idx3-ubyte.gz (HTTP 404)" in message
    assert leftovers(tmp_path / "data") == ["fashion-mnist"]


def test_download_file_accepts_md5_of_gunzipped_bytes(tmp_path, server, gz_files):
    body = gz_files[FILES[1]]
    server.files["/labels.gz"] = (body, "ok")
    unzipped_md5 = hashlib.md5(gzip.decompress(body)).hexdigest()
    dest = download_file([server.base + "labels.gz"], tmp_path / "labels.gz", [unzipped_md5.upper()])
    assert np.array_equal(read_idx(dest), np.arange(6))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.gz", "src"]   # no .part file


def test_download_file_needs_a_url(tmp_path):
    with pytest.raises(DataError, match="url_list is empty"):
        download_file([], tmp_path / "x.gz", ["0" * 32])
