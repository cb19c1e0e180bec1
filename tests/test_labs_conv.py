"""The convolutional labs run end to end in quick mode; `train --model conv` writes its usual outputs."""
import json

import pytest

from scratch_ae.cli import main
from scratch_ae.labs import run_lab


def test_conv_lab_quick_compares_the_three_decoders_and_the_small_code(tmp_path):
    results = run_lab("conv", str(tmp_path), quick=True)
    rows = {row["decoder"]: row for row in results["rows"]}
    assert list(rows) == ["deconv+unpool", "unpool", "deconv", "small code, deconv", "dense code, deconv"]
    assert rows["deconv"]["code_size"] == rows["deconv"]["pooled_values"] == 8 * 7 * 7
    assert rows["unpool"]["code_size"] == 392 + 16 * 14 * 14 + 392 > rows["unpool"]["pooled_values"]
    assert rows["small code, deconv"]["code_size"] == 72 <= 128
    assert rows["dense code, deconv"]["code_size"] == 128 < rows["dense code, deconv"]["pooled_values"] == 16 * 7 * 7
    assert [row["loss"] for row in rows.values()] == ["mse", "mse", "mse", "bce", "bce"]
    for row in rows.values():
        assert 0 < row["test_sse_per_image"] < 300 and 0 < row["test_bce_per_pixel"] < 1
    figures = tmp_path / "figures"
    assert (figures / "reconstructions.png").exists() and (figures / "loss_unpool.png").exists()
    assert (figures / "deconv-unpool" / "decoder_filters.png").exists()
    assert "argmax positions" in (tmp_path / "results.md").read_text()


def test_colored_denoise_lab_quick_reports_mse_and_snr_of_input_and_output(tmp_path):
    results = run_lab("colored-denoise", str(tmp_path), quick=True, dataset="colored-mnist")
    noisy, plain, dropout = results["rows"]
    assert noisy["model"].startswith("noisy input") and "dropout" in dropout["model"]
    for row in (noisy, plain, dropout):
        assert row["test_mse_per_pixel"] > 0 and -30 < row["test_snr_db"] < 40
    assert set(results["plain"]["tsne"]) == {"2d", "3d", "code_space_same_digit_neighbours"}
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"denoising_rows.png", "tsne_2d_plain.png", "tsne_3d_dropout.png", "training_outputs_plain.png"} <= figures


def test_colored_denoise_refuses_another_dataset(tmp_path):
    with pytest.raises(ValueError, match="colored-mnist"):
        run_lab("colored-denoise", str(tmp_path), quick=True, dataset="mnist")


@pytest.mark.parametrize("argv, decoder", [(["--model", "conv", "--decoder", "unpool"], "unpool"),
                                           (["--model", "conv-stride2", "--channels", "8,4,4,2",
                                             "--dataset", "colored-mnist"], "deconv"),
                                           (["--model", "conv", "--decoder", "deconv", "--code", "16"], "deconv")])
def test_train_a_conv_model_from_the_command_line(argv, decoder, tmp_path):
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out), "--limit", "500", "--epochs", "1", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["decoder"] == decoder and metrics["test"]["sse_per_image"] > 0
    if "--code" in argv:  # a dense code: the code is 16 linear values
        assert (metrics["config"]["dense_code"], metrics["config"]["code_size"]) == (16, 16)
        assert metrics["config"]["code_activation"] == "identity"
    assert {p.name for p in (out / "figures").iterdir()} >= {"loss_curves.png", "reconstructions.png", "filters.png",
                                                             "decoder_filters.png"}
    assert main(["evaluate", str(out / "model.npz"), "--dataset", metrics["config"]["dataset"],
                 "--out", str(tmp_path / "e")]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--model", "conv", "--hidden", "64"], "argument --hidden: --model conv has no dense hidden layers"),
    (["--model", "conv", "--code-activation", "tanh"], "argument --code-activation: --model conv's code"),
    (["--model", "conv-stride2", "--decoder", "unpool"], "argument --decoder: --model conv-stride2"),
    (["--model", "deep", "--decoder", "deconv"], "argument --decoder: only the convolutional models"),
])
def test_conv_options_that_contradict_the_model_are_refused(argv, message, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "r"), "--limit", "500", "--epochs", "1", "--no-progress"]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "r").exists()
