"""Checkpoints: exact round trip, pickle-free, portable config, clear errors, atomic writes."""
import json
import os

import numpy as np
import pytest

from scratch_ae import Autoencoder, CheckpointError


@pytest.fixture
def trained(mnist_test_images):
    model = Autoencoder(sizes=[784, 64], seed=1, epochs=1, batch_size=100)
    return model.fit(mnist_test_images[:500])


def test_checkpoint_round_trips_exactly(trained, tmp_path, mnist_test_images):
    path = tmp_path / "model.npz"
    trained.save(path)
    loaded = Autoencoder.load(path)
    for name, value in trained.parameters().items():
        np.testing.assert_array_equal(loaded.parameters()[name], value)
        assert loaded.parameters()[name].dtype == np.float32
    x = mnist_test_images[:10]
    np.testing.assert_array_equal(loaded.reconstruct(x), trained.reconstruct(x))
    assert loaded.get_params() == trained.get_params()


def test_checkpoint_is_plain_npz_with_a_json_config_any_framework_can_read(trained, tmp_path):
    path = tmp_path / "model.npz"
    trained.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["config", "layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
        config = json.loads(str(data["config"]))
        assert data["layers.0.W"].shape == (784, 64)
    assert config["layers"] == [
        {"type": "dense", "in": 784, "out": 64, "activation": "relu"},
        {"type": "dense", "in": 64, "out": 784, "activation": "relu"},
    ]


def test_tied_checkpoint_stores_the_shared_weights_once(tmp_path):
    model = Autoencoder(sizes=[20, 8], tied=True, activation="sigmoid", output_activation="sigmoid")
    model.save(tmp_path / "tied.npz")
    loaded = Autoencoder.load(tmp_path / "tied.npz")
    with np.load(tmp_path / "tied.npz") as data:
        assert "layers.1.W" not in data.files and "layers.1.b" in data.files
    assert loaded.layer_config_[1]["tied_to"] == 0


def test_truncated_checkpoint_gives_a_clear_error(trained, tmp_path):
    path = tmp_path / "model.npz"
    trained.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        Autoencoder.load(path)


def test_garbage_and_missing_checkpoints_give_clear_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="is not a scratch-ae checkpoint") as caught:
        Autoencoder.load(tmp_path / "junk.npz")
    assert "pickle" not in str(caught.value)  # numpy's own message advises allow_pickle=True: never pass it on
    np.save(tmp_path / "array.npy", np.zeros(3))  # a .npy is not a checkpoint either
    with pytest.raises(CheckpointError, match="is not a scratch-ae checkpoint"):
        Autoencoder.load(tmp_path / "array.npy")
    with pytest.raises(CheckpointError, match="does not exist"):
        Autoencoder.load(tmp_path / "nope.npz")


def test_checkpoint_whose_arrays_disagree_with_its_config_is_rejected(trained, tmp_path):
    path = tmp_path / "model.npz"
    trained.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["layers.1.W"] = arrays["layers.1.W"][:, :100]
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"layers.1.W has shape \(64, 100\), the config says \(64, 784\)"):
        Autoencoder.load(path)


def test_a_failed_save_leaves_the_previous_checkpoint_intact(trained, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    trained.save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
