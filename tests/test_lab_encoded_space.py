"""The encoded-space lab runs end to end in quick mode, with the report's configuration or a search's."""
import json
import math

import numpy as np
import pytest

from scratch_ae.labs import encoded_space as E

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("error_vs_code_size.png", "loss_curves_6d.png", "robustness.png", "tsne_6d.png", "walks.png")


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("encoded-space")
    return out, E.run(str(out), quick=True)


def test_quick_lab_writes_results_and_figures(quick):
    out, results = quick
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    md = (out / "results.md").read_text()
    assert md.startswith("# The encoded space") and md.count("\n|") >= len(results["rows"]) + 1
    for figure in FIGURES:
        assert (out / "figures" / figure).read_bytes()[:8] == PNG, figure
    for row in results["rows"]:
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, float)), row


def test_the_sweep_has_pca_beside_every_code_size_and_uses_early_stopping(quick):
    _, results = quick
    recipe = results["recipe"]
    assert recipe["code_sizes"] == [2, 6, 10] and recipe["quick"] is True
    assert (recipe["lr"], recipe["weight_decay"], recipe["dropout"]) == (1.2e-3, 8.8e-5, 0.15)
    assert recipe["hidden"] == [256] and recipe["code_activation"] == "identity"
    assert recipe["validation_fraction"] == 0.1 and recipe["patience"] == E.QUICK_PATIENCE
    by_model = {}
    for row in results["rows"]:
        by_model.setdefault(row["model"], []).append(row["code_size"])
    assert by_model == {"PCA": [2, 6, 10], E.AE_NAME: [2, 6, 10]}
    pca = [r["test_sse_per_image"] for r in results["rows"] if r["model"] == "PCA"]
    assert pca == sorted(pca, reverse=True)  # nested components: more is never worse
    for history in results["histories"].values():
        assert len(history["val_loss"]) == history["epochs_run"] >= 1 and history["best_epoch"] is not None


def test_the_6d_model_its_robustness_tsne_and_walks(quick):
    _, results = quick
    final = results["final_6d"]
    ae6 = next(r for r in results["rows"] if r["model"] == E.AE_NAME and r["code_size"] == 6)
    assert final["test_sse_per_image"] == ae6["test_sse_per_image"] and 0 < final["test_sse_per_image"] < 100
    levels = {(r["corruption"], r["level"]) for r in results["robustness"]}
    assert ("gaussian", 0.45) in levels and ("occlusion", 0.7) in levels
    clean = next(r for r in results["robustness"] if r["corruption"] == "gaussian" and r["level"] == 0)
    assert clean["final_sse_per_image"] == pytest.approx(final["test_sse_per_image"], rel=1e-6)
    tsne = results["tsne"]
    assert tsne["n_points"] == E.QUICK_TSNE_POINTS and 0.5 < tsne["trustworthiness"] <= 1
    assert set(results["walks"]) == {"4->9", "6->9"}
    for walk in results["walks"].values():
        assert len(walk["walk_vs_blend_sse"]) == 10 and walk["mean_images_sse"] > 0


def test_a_search_json_sets_the_configuration(tmp_path):
    search = {"best": {"params": {"lr": 2e-3, "weight_decay": 1e-4, "dropout": 0.05, "code": 4}},
              "settings": {"hidden": [128], "code_activation": "identity"}}
    path = tmp_path / "search.json"
    path.write_text(json.dumps(search))
    settings, source = E.resolve_config(str(path))
    assert (settings["lr"], settings["weight_decay"], settings["dropout"], settings["hidden"]) == (2e-3, 1e-4, 0.05, [128])
    assert str(path) in source
    assert E.resolve_config(None)[0]["lr"] == 1.2e-3
    with pytest.raises(ValueError, match="no 'best' parameters"):
        E.resolve_config({"trials": []})
    with pytest.raises(ValueError, match="no such file"):
        E.resolve_config(str(tmp_path / "missing.json"))


def test_centroid_walk_ends_at_the_decoded_centroids():
    from scratch_ae.models import Autoencoder
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(40, 16)).astype(np.float32)
    labels = np.repeat([4, 9], 20)
    model = Autoencoder(sizes=[16, 3], code_activation="identity")
    codes = model.transform(images)
    decoded, blended, sse = E.centroid_walk(model, codes, labels, images, 4, 9, steps=5)
    np.testing.assert_allclose(decoded[0], model.inverse_transform(codes[:20].mean(axis=0, keepdims=True))[0], rtol=1e-5)
    np.testing.assert_allclose(blended[-1], images[20:].mean(axis=0), rtol=1e-6)
    assert decoded.shape == blended.shape == (5, 16) and sse.shape == (5,)
