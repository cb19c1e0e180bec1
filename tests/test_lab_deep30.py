"""The deep-30 record lab runs end to end in quick mode and reports against PCA and the published figure."""
import json

from scratch_ae.labs import run_lab


def test_deep30_quick_writes_the_comparison_table(tmp_path):
    results = run_lab("deep-30", str(tmp_path), quick=True)
    rows = {row["model"].split(",")[0]: row for row in results["rows"]}
    assert 12 < rows["PCA"]["test_sse_per_image"] < 17  # 30 components on the quick subset
    ae = [r for r in results["rows"] if "this run" in r["model"]][0]
    assert 0 < ae["test_sse_per_image"] < 100
    assert results["published"]["hinton_salakhutdinov_2006"] == 3.00
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["recipe"]["output"] == "sigmoid + BCE" and saved["recipe"]["optimizer"].startswith("adamw")
    assert [row["epoch"] for row in saved["test_curve"]] == [2]  # quick: 2 epochs, logged at the last
    assert saved["test_curve"][-1]["test_sse_per_image"] == ae["test_sse_per_image"]
    assert (tmp_path / "results.md").exists() and (tmp_path / "figures" / "reconstructions.png").exists()
    assert (tmp_path / "figures" / "test_error.png").stat().st_size > 1000
    assert not (tmp_path / "resume.npz").exists()
