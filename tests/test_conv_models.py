"""Convolutional autoencoders: whole-model gradients, the three decoders, codes, checkpoints, training."""
import json

import numpy as np
import pytest

from scratch_ae.gradcheck import check_model
from scratch_ae.models import load
from scratch_ae.models.conv import ConvAutoencoder

TINY = dict(input_shape=(1, 8, 6), channels=(2, 3), dtype="float64")


def tiny_batch(shape=(1, 8, 6), n=3, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, int(np.prod(shape))))


@pytest.mark.parametrize("kwargs", [
    dict(decoder="deconv+unpool"),
    dict(decoder="unpool"),
    dict(decoder="deconv"),
    dict(decoder="deconv", loss="bce", output_activation="sigmoid", weight_decay=0.1, l1=0.01),
    dict(decoder="deconv+unpool", dropout=0.3),
    dict(decoder="deconv", dense_code=5, loss="bce", output_activation="sigmoid"),
    dict(decoder="unpool", dense_code=4, dropout=0.3),
    dict(downsample="stride", decoder="deconv", input_shape=(3, 7, 9), channels=(4, 2), output_activation="sigmoid"),
])
def test_whole_model_gradients_match_finite_differences(kwargs):
    model = ConvAutoencoder(**{**TINY, "engine": "reference", **kwargs})  # the derivations' code
    x = tiny_batch(model.image_shape)
    errors = check_model(model, x, layer_seed=7 if model.stochastic_ else None)
    assert max(errors.values()) < 1e-6, errors
    assert len(errors) == len(model.parameters()) >= 8


def test_the_stride2_network_has_the_reports_shape():
    model = ConvAutoencoder(input_shape=(3, 28, 28), channels=(128, 64, 32, 16), downsample="stride",
                            decoder="deconv", output_activation="sigmoid")
    assert model.code_shape_ == (16, 2, 2) and model.code_size == 64
    x = tiny_batch((3, 28, 28), n=2).astype(np.float32)
    assert model.reconstruct(x).shape == (2, 3 * 28 * 28)


@pytest.mark.parametrize("decoder, code_size", [("deconv", 8 * 7 * 7), ("deconv+unpool", 8 * 7 * 7 + 16 * 14 * 14 + 8 * 7 * 7),
                                                ("unpool", 8 * 7 * 7 + 16 * 14 * 14 + 8 * 7 * 7)])
def test_codes_decode_on_their_own_including_the_unpooling_positions(decoder, code_size, mnist_test_images):
    model = ConvAutoencoder(decoder=decoder)
    x = mnist_test_images[:9]
    codes = model.transform(x)
    assert codes.shape == (9, code_size) == (9, model.code_size)
    other = model.transform(mnist_test_images[100:109])  # overwrite the pools' argmax with other images
    assert other.shape == codes.shape
    np.testing.assert_array_equal(model.inverse_transform(codes), model.backend_.to_numpy(model.reconstruct(x)))


@pytest.mark.parametrize("decoder, switches", [("deconv", 0), ("unpool", 16 * 14 * 14 + 8 * 7 * 7)])
def test_a_dense_code_is_a_linear_layer_between_the_maps_and_the_decoder(decoder, switches, mnist_test_images):
    model = ConvAutoencoder(decoder=decoder, dense_code=30, seed=1)
    assert model.maps_size == 30 and model.code_size == 30 + switches
    last, first = model.encoder_.layers[-1], model.decoder_.layers[0]
    assert (last.fan_in, last.fan_out, first.fan_in, first.fan_out) == (8 * 7 * 7, 30, 30, 8 * 7 * 7)
    x = mnist_test_images[:6]
    codes = model.transform(x)
    assert codes.shape == (6, model.code_size)
    maps = model.encoder_.layers[:-1]  # the network up to the Flatten: the code is their output times W plus b
    for layer in maps:
        x = layer.forward(x)
    W, b = last.params["W"], last.params["b"]
    np.testing.assert_allclose(codes[:, :30], x @ W + b, rtol=1e-5, atol=1e-6)
    bound = 1 / np.sqrt(8 * 7 * 7)  # init="pytorch": torch.nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert 0.9 * bound < np.abs(W).max() <= bound and np.abs(b).max() <= bound
    np.testing.assert_array_equal(model.inverse_transform(codes), model.backend_.to_numpy(model.reconstruct(mnist_test_images[:6])))


@pytest.mark.parametrize("kwargs", [dict(decoder="unpool"), dict(downsample="stride", decoder="deconv", channels=(4, 2)),
                                    dict(decoder="deconv", dense_code=12)])
def test_checkpoint_round_trip_and_json_description(kwargs, tmp_path, mnist_test_images):
    model = ConvAutoencoder(**kwargs, seed=3)
    model.save(tmp_path / "conv.npz")
    loaded = load(tmp_path / "conv.npz")
    assert type(loaded) is ConvAutoencoder
    x = mnist_test_images[:5]
    np.testing.assert_array_equal(loaded.transform(x), model.transform(x))
    with np.load(tmp_path / "conv.npz", allow_pickle=False) as data:
        config = json.loads(str(data["config"]))
        names = set(data.files) - {"config"}
    assert config["family"] == "conv" and names == set(model.parameters())
    layers = config["layers"]["encoder"] + config["layers"]["decoder"]
    assert {"type": "conv2d", "in_channels": 1, "out_channels": model.channels[0], "kernel_size": [3, 3],
            "stride": [1 if model.downsample == "pool" else 2] * 2, "padding": [1, 1]} in layers
    if model.dense_code:
        assert config["model"]["dense_code"] == 12
        assert {"type": "dense", "in": 8 * 7 * 7, "out": 12} == config["layers"]["encoder"][-1]
        assert {"type": "dense", "in": 12, "out": 8 * 7 * 7} == config["layers"]["decoder"][0]
    if model.decoder == "unpool":
        assert [e["pool"] for e in layers if e["type"] == "maxunpool2d"] == ["encoder.6", "encoder.3"]


def test_a_conv_model_learns_on_real_mnist(mnist_test_images):
    model = ConvAutoencoder(decoder="deconv", epochs=2, batch_size=50, lr=3e-3, seed=0)
    before = model.score(mnist_test_images[:500])
    model.fit(mnist_test_images[:2000])
    assert model.score(mnist_test_images[:500]) > before / 2
    assert model.history_["train_loss"][1] < model.history_["train_loss"][0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(downsample="stride", decoder="unpool"), "stride-2 encoder does not have"),
    (dict(decoder="upsample"), "unknown decoder"),
    (dict(kernel_size=2), "odd positive integer"),
    (dict(loss="bce", output_activation="relu"), "needs output_activation='sigmoid'"),
    (dict(input_shape=(1, 3, 3), channels=(2, 2, 2)), "too small"),
    (dict(dense_code=0), "dense_code must be None or a positive integer"),
    (dict(dense_code=12.5), "dense_code must be None or a positive integer"),
])
def test_bad_configurations_name_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvAutoencoder(**kwargs)
