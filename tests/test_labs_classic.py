"""The classic labs (sparse, denoising, manifold, latent, anomaly) run end to end in quick mode.

Quick mode trains on labs.common's 2,000 / 500 image subset for 2 epochs (5 for denoising), so the
networks are barely trained.  The checks are on the outputs, on what holds by construction (the
noise norms), and on the comparisons each lab is about, where they were measured to hold in quick
mode with a margin (the measured values are in the comments).
"""
import json
import math

import pytest

from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.labs import LABS, run_lab

PNG = b"\x89PNG\r\n\x1a\n"
CLASSIC = ("sparse", "denoising", "manifold", "latent", "anomaly")


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: small matrices, and 2-thread OpenBLAS crawls when the cores are shared."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def check_outputs(out_dir, results, figures, quick=True):
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    assert saved["recipe"]["quick"] is quick and saved["recipe"]["lr"] == 1e-3 and saved["recipe"]["batch_size"] == 100
    md = (out_dir / "results.md").read_text()
    assert md.startswith("# ") and md.count("\n|") >= len(results["rows"]) + 1
    for figure in figures:
        png = out_dir / "figures" / figure
        assert png.exists() and png.read_bytes()[:8] == PNG, figure
    for row in results["rows"]:
        for key, value in row.items():
            if isinstance(value, float):
                assert math.isfinite(value), (key, row)


def test_the_labs_are_registered():
    assert {name: LABS[name] for name in CLASSIC} == {name: name for name in CLASSIC}


def test_sparse_quick(tmp_path):
    results = run_lab("sparse", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, ["filters_standard.png", "filters_sparse.png", "filters_overcomplete_plain.png",
                                      "code_activations.png"])
    standard, plain, sparse = results["rows"]
    assert (standard["hidden"], plain["hidden"], sparse["hidden"]) == (256, 1296, 1296)
    assert standard["l1"] == plain["l1"] == 0 and sparse["l1"] == 1e-4
    assert results["recipe"]["near_zero_threshold"] == 0.01 and results["recipe"]["epochs"] == 2
    for row in results["rows"]:
        assert 0 <= row["zero_fraction"] <= row["near_zero_fraction"] <= 1
        assert row["l1_per_unit"] == pytest.approx(row["l1_per_image"] / row["hidden"])
        assert 0 <= row["dead_units"] <= row["hidden"] and 0 < row["test_sse_per_image"] < 100
    # measured near-zero fractions 0.757 (standard), 0.650 (1296, no penalty), 0.822 (1296, L1);
    # L1 per unit 0.091, 0.133, 0.053
    assert sparse["near_zero_fraction"] > standard["near_zero_fraction"] + 0.03
    assert sparse["near_zero_fraction"] > plain["near_zero_fraction"] + 0.1
    assert sparse["l1_per_unit"] < 0.8 * min(standard["l1_per_unit"], plain["l1_per_unit"])
    assert sparse["l1_per_image"] < 0.5 * plain["l1_per_image"]


def test_denoising_quick(tmp_path):
    results = run_lab("denoising", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, ["robustness.png", "rows_gaussian.png", "rows_occlusion.png",
                                      "filters_plain.png", "filters_denoising.png"])
    rows = results["rows"]
    gaussian = {row["level"]: row for row in rows if row["corruption"] == "gaussian"}
    occluded = {row["level"]: row for row in rows if row["corruption"] == "occlusion"}
    assert sorted(gaussian) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert sorted(occluded) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert results["recipe"]["train_noise"] == "gaussian:0.45" and results["recipe"]["epochs"] == 5
    # level 0 is the clean test set, the same number whichever corruption
    assert gaussian[0.0]["plain_sse_per_image"] == occluded[0.0]["plain_sse_per_image"]
    plain = [gaussian[s]["plain_sse_per_image"] for s in sorted(gaussian)]
    assert plain == sorted(plain)  # the plain AE only gets worse with more noise
    # measured at sigma 0.45: plain 45.0, denoising 40.6; at sigma 1: 76.0 vs 49.9; clean: 19.8 vs 56.4
    at = gaussian[0.45]
    assert at["denoising_sse_per_image"] < 0.95 * at["plain_sse_per_image"]
    assert gaussian[1.0]["denoising_sse_per_image"] < 0.8 * gaussian[1.0]["plain_sse_per_image"]
    assert gaussian[0.0]["plain_sse_per_image"] < gaussian[0.0]["denoising_sse_per_image"]
    # measured at p = 0.5: plain 66.5, denoising 62.4
    assert occluded[0.5]["denoising_sse_per_image"] < occluded[0.5]["plain_sse_per_image"]
    assert [m["model"] for m in results["models"]] == ["plain AE", "denoising AE (sigma 0.45)"]


def test_manifold_quick(tmp_path):
    results = run_lab("manifold", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, ["noise_rows.png", "distances.png"])
    rows = results["rows"]
    clean, recon = rows[0], rows[1]
    assert (clean["space"], recon["space"]) == ("clean image", "clean reconstruction")
    assert clean["sse_to_clean_image"] == 0 and recon["sse_to_clean_recon"] == 0
    assert clean["manifold_residual"] == pytest.approx(recon["sse_to_clean_image"])
    pixel = {row["noise_norm"]: row for row in rows if row["space"] == "pixel"}
    code = {row["noise_norm"]: row for row in rows if row["space"] == "code"}
    assert sorted(pixel) == sorted(code) == [0.5, 1.0, 2.0, 4.0, 8.0]
    for r in pixel:
        # the pixel noise is not clipped, so its squared norm is exactly r^2 (float32 rounding aside)
        assert pixel[r]["sse_to_clean_image"] == pytest.approx(r * r, rel=1e-4)
        assert code[r]["decoder_gain"] == pytest.approx(code[r]["sse_to_clean_recon"] / r ** 2)
    for r in (0.5, 1.0, 2.0):  # measured residuals at r = 1: code 10.2, pixel 39.8
        assert code[r]["manifold_residual"] < 0.5 * pixel[r]["manifold_residual"]
    for r in (2.0, 4.0, 8.0):  # the autoencoder removes pixel noise: measured at r = 8, 57.5 vs 102.5
        assert pixel[r]["projected_sse_to_clean"] < pixel[r]["sse_to_clean_recon"]
    assert results["scales"]["code_width"] == 256 and results["scales"]["image_width"] == 784


def test_latent_quick(tmp_path):
    results = run_lab("latent", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, ["tsne_2d.png", "tsne_3d.png", "walk.png", "training_snapshots.png"])
    assert results["embedding_shapes"] == {"2d": [300, 2], "3d": [300, 3]}
    code_row, tsne2, tsne3 = results["rows"]
    assert code_row["space"] == "code (256-D)" and (tsne2["space"], tsne3["space"]) == ("t-SNE 2-D", "t-SNE 3-D")
    for row in (tsne2, tsne3):
        assert row["n_points"] == 300 and row["max_iter"] == 500
        # measured trustworthiness 0.94 / 0.95, KL 0.68 / 0.71, same-label neighbours 0.60 / 0.59
        assert 0.8 < row["trustworthiness"] <= 1 and 0 < row["kl_divergence"] < 5
        assert 0.3 < row["same_label_neighbours"] <= 1
    sse = results["snapshot_sse"]
    assert list(sse) == ["0", "1", "2"] and results["recipe"]["snapshot_epochs"] == [1, 2]
    assert sse["0"] > sse["1"] > sse["2"]  # measured 116.0 > 49.4 > 37.5
    assert len(results["walk_alphas"]) == 10 and results["recipe"]["walk"] == [4, 9]


def test_anomaly_quick(tmp_path):
    results = run_lab("anomaly", str(tmp_path), quick=True)
    check_outputs(tmp_path, results, ["score_histograms.png", "roc.png"])
    rows = results["rows"]
    assert [row["code"] for row in rows] == [32, 256]
    for row in rows:
        assert row["held_out"] == 2 and row["n_held_out"] == 55 and row["n_normal"] == 445
        assert 0 < row["roc_auc"] <= 1
        assert row["roc_auc"] > 0.55  # measured 0.62 (32 units, barely trained) and 0.78 (256 units)
        assert row["mean_score_held_out"] > row["mean_score_normal"]
    assert results["recipe"]["n_train"] == 2000 - 198  # the quick subset has 198 twos
    assert set(results["mean_score_by_digit"]["784-32-784 ReLU"]) == {str(d) for d in range(10)}


def test_anomaly_rejects_an_unknown_digit(tmp_path):
    with pytest.raises(ValueError, match="held_out"):
        run_lab("anomaly", str(tmp_path), quick=True, held_out=11)


GPU_REASON = cupy_unavailable_reason()


@pytest.mark.gpu
@pytest.mark.skipif(GPU_REASON is not None, reason=f"needs CuPy and a CUDA GPU: {GPU_REASON}")
@pytest.mark.parametrize("name", CLASSIC)
def test_classic_labs_run_on_cupy(tmp_path, name):
    results = run_lab(name, str(tmp_path), quick=True, backend="cupy")
    assert results["recipe"]["backend"] == "cupy"
    assert (tmp_path / "results.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSIC)
def test_classic_labs_full_size(tmp_path, name):
    """Full mode on all of MNIST (minutes each on one CPU core): the claims in each lab's docstring."""
    results = run_lab(name, str(tmp_path), quick=False)
    assert results["recipe"]["quick"] is False and results["recipe"]["n_train"] >= 50000
    rows = results["rows"]
    if name == "sparse":  # measured near-zero 0.330 / 0.522 / 0.870, test SSE 3.67 / 9.74 / 3.53
        standard, plain, sparse = rows
        assert sparse["near_zero_fraction"] > 0.8 > 0.6 > plain["near_zero_fraction"] > standard["near_zero_fraction"]
        assert sparse["test_sse_per_image"] < 1.2 * standard["test_sse_per_image"]
    elif name == "denoising":  # measured at sigma 0.45: 47.5 vs 15.1
        at = next(row for row in rows if row["corruption"] == "gaussian" and row["level"] == 0.45)
        assert at["denoising_sse_per_image"] < 0.5 * at["plain_sse_per_image"]
    elif name == "manifold":  # measured residuals at r = 4: code 4.26, pixel 20.5
        pixel = {row["noise_norm"]: row for row in rows if row["space"] == "pixel"}
        code = {row["noise_norm"]: row for row in rows if row["space"] == "code"}
        for r in pixel:
            assert code[r]["manifold_residual"] < 0.5 * pixel[r]["manifold_residual"]
            assert pixel[r]["projected_sse_to_clean"] < pixel[r]["sse_to_clean_recon"]
    elif name == "latent":  # measured same-label neighbours 0.80 / 0.83, trustworthiness 0.966 / 0.979
        for row in rows[1:]:
            assert row["same_label_neighbours"] > 0.75 and row["trustworthiness"] > 0.95
    else:  # anomaly, measured ROC-AUC 0.875 (32 units) and 0.790 (256 units)
        assert rows[0]["roc_auc"] > 0.85 and rows[1]["roc_auc"] > 0.75
