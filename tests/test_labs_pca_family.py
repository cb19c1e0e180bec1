"""The PCA-family labs (pca-vs-ae, hidden-sizes, code-sizes) run end to end in quick mode.

Quick mode trains on 2,000 images for 2 epochs, so the autoencoders are barely trained: the checks
are on what must hold anyway (files, rows, PCA's monotone curve, Eckart-Young) and on sane ranges.
"""
import json
import math

import numpy as np
import pytest

from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.labs import LABS, run_lab


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: small matrices, and 2-thread OpenBLAS crawls when the cores are shared."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def check_outputs(out_dir, results, figure):
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    assert saved["recipe"]["quick"] is True
    md = (out_dir / "results.md").read_text()
    assert md.startswith("# ") and md.count("\n|") >= len(results["rows"]) + 1
    png = out_dir / "figures" / figure
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row in results["rows"]:
        for key in ("train_sse_per_image", "test_sse_per_image"):
            assert math.isfinite(row[key]) and 0 < row[key] < 200, row


def test_the_labs_are_registered():
    assert {name: LABS[name] for name in ("pca-vs-ae", "hidden-sizes", "code-sizes")} == {
        "pca-vs-ae": "pca_vs_ae", "hidden-sizes": "hidden_sizes", "code-sizes": "code_sizes"}


def test_pca_vs_ae_quick(tmp_path):
    results = run_lab("pca-vs-ae", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, "reconstructions.png")
    rows = {row["model"]: row for row in results["rows"]}
    assert list(rows) == ["PCA (30 components)", "linear autoencoder", "ReLU autoencoder", "sigmoid/BCE autoencoder"]
    pca = rows["PCA (30 components)"]
    assert 12 < pca["test_sse_per_image"] < 17  # measured 14.70 on the 500 quick test images
    # Eckart-Young: no rank-30 linear map beats PCA on the images it was fitted to
    assert rows["linear autoencoder"]["train_sse_per_image"] >= pca["train_sse_per_image"]
    assert set(results["histories"]) == {"linear autoencoder", "ReLU autoencoder", "sigmoid/BCE autoencoder"}
    assert results["recipe"]["epochs"] == 2 and results["recipe"]["code_size"] == 30


def test_hidden_sizes_quick(tmp_path):
    results = run_lab("hidden-sizes", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, "inputs_through_each.png")
    rows = results["rows"]
    assert [row["hidden"] for row in rows] == [64, 128, 256]
    test_errors = [row["test_sse_per_image"] for row in rows]
    assert test_errors == sorted(test_errors, reverse=True)  # measured 63.5 > 52.5 > 38.6
    for row in rows:  # noise is not reproduced: measured noise_sse 218-226 vs probe_sse 31-50
        assert row["noise_sse"] > 2 * row["probe_sse"]


def test_code_sizes_quick(tmp_path):
    results = run_lab("code-sizes", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, "error_vs_code_size.png")
    expected = [2, 4, 5, 6, 8, 10, 20, 35, 50, 65, 80, 95]
    pca = sorted((r for r in results["rows"] if r["model"] == "PCA"), key=lambda r: r["code_size"])
    ae = [r for r in results["rows"] if r["model"] == "ReLU autoencoder"]
    assert [r["code_size"] for r in pca] == expected and sorted(r["code_size"] for r in ae) == expected
    train = np.array([r["train_sse_per_image"] for r in pca])
    test = np.array([r["test_sse_per_image"] for r in pca])
    ratio = np.array([r["explained_variance_ratio"] for r in pca])
    assert np.all(np.diff(train) < 0) and np.all(np.diff(test) < 0) and np.all(np.diff(ratio) > 0)
    assert 40 < train[0] < 46 and 3 < train[-1] < 6  # measured 42.99 (k=2) and 4.34 (k=95)


GPU_REASON = cupy_unavailable_reason()


@pytest.mark.gpu
@pytest.mark.skipif(GPU_REASON is not None, reason=f"needs CuPy and a CUDA GPU: {GPU_REASON}")
@pytest.mark.parametrize("name", ["pca-vs-ae", "hidden-sizes", "code-sizes"])
def test_labs_run_on_cupy(tmp_path, name):
    results = run_lab(name, str(tmp_path), quick=True, backend="cupy")
    assert results["recipe"]["backend"] == "cupy"
    assert (tmp_path / "results.json").exists()
