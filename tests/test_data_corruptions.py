"""Corruptions: statistics, seeding, no input mutation, clipping, spec parsing.
Real MNIST test images where possible; constant images where a property needs them."""
import numpy as np
import pytest

from scratch_ae.data import (DataError, gaussian_noise, load_dataset, masking_noise, occlusion,
                             parse_corruption, salt_and_pepper)

ALL = [
    lambda x, rng: gaussian_noise(x, 0.3, rng),
    lambda x, rng: masking_noise(x, 0.3, rng),
    lambda x, rng: salt_and_pepper(x, 0.3, rng),
    lambda x, rng: occlusion(x, 0.3, rng, (28, 28)),
]


@pytest.fixture(scope="module")
def mnist():
    """(500, 784) float32 real MNIST test images."""
    return load_dataset("mnist", "test", limit=500).images


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("corrupt", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_range_no_mutation_and_seeding(mnist, corrupt, dtype):
    x = mnist.astype(dtype)
    before = x.copy()
    out = corrupt(x, rng(1))
    assert out.shape == x.shape and out.dtype == dtype and out is not x
    assert np.array_equal(x, before)
    assert out.min() >= 0.0 and out.max() <= 1.0 and not np.array_equal(out, x)
    assert np.array_equal(out, corrupt(x, rng(1)))
    assert not np.array_equal(out, corrupt(x, rng(2)))


def test_gaussian_noise_statistics():
    x = np.full((2000, 100), 0.5, np.float32)        # 0.5 +- 5 sigma never clips
    noise = gaussian_noise(x, 0.1, rng()) - x
    assert abs(noise.mean()) < 0.002 and noise.std() == pytest.approx(0.1, rel=0.02)
    assert np.array_equal(gaussian_noise(x, 0.0, rng()), x)


def test_gaussian_noise_is_clipped(mnist):
    out = gaussian_noise(mnist, 0.5, rng())
    assert out.min() == 0.0 and out.max() == 1.0
    assert (out == 0.0).mean() > (mnist == 0.0).mean() * 0.3 and (out == 1.0).mean() > 0.05


def test_masking_sets_exactly_the_fraction_to_zero(mnist):
    ones = np.ones((300, 784), np.float32)
    out = masking_noise(ones, 0.3, rng())
    assert np.all((out == 0).sum(axis=1) == round(0.3 * 784))
    assert set(np.unique(out)) == {0.0, 1.0}
    real = masking_noise(mnist, 0.3, rng())
    assert np.all((real == mnist) | (real == 0))
    assert np.all((real == 0).sum(axis=1) >= (mnist == 0).sum(axis=1))
    assert np.array_equal(masking_noise(mnist, 0.0, rng()), mnist)
    assert not masking_noise(mnist, 1.0, rng()).any()


def test_salt_and_pepper_fraction_and_coin():
    x = np.full((400, 500), 0.5, np.float32)
    out = salt_and_pepper(x, 0.1, rng())
    hit = out != 0.5
    assert np.all(hit.sum(axis=1) == 50)
    assert set(np.unique(out[hit])) == {0.0, 1.0}
    assert (out[hit] == 1.0).mean() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("image_shape", [(28, 28), (3, 28, 28)])
def test_occlusion_is_one_square_covering_about_p(image_shape):
    n, d = 200, int(np.prod(image_shape))
    out = occlusion(np.ones((n, d), np.float32), 0.2, rng(), image_shape)
    planes = out.reshape((n,) + ((1,) if len(image_shape) == 2 else ()) + image_shape)
    assert np.all(planes == planes[:, :1])                 # same patch in every channel
    zero = planes[:, 0] == 0                                # (n, 28, 28)
    side = round(np.sqrt(0.2 * 784))                        # 13
    assert np.all(zero.sum(axis=(1, 2)) == side * side)
    assert zero.sum(axis=(1, 2)).mean() / 784 == pytest.approx(0.2, abs=0.02)
    rows, cols = zero.any(axis=2), zero.any(axis=1)
    assert np.all(rows.sum(axis=1) == side) and np.all(cols.sum(axis=1) == side)
    tops = rows.argmax(axis=1)
    assert len(np.unique(tops)) > 10                        # positions vary per image


def test_occlusion_extremes(mnist):
    assert np.array_equal(occlusion(mnist, 0.0, rng(), (28, 28)), mnist)
    assert not occlusion(mnist, 1.0, rng(), (28, 28)).any()


@pytest.mark.parametrize("call, message", [
    (lambda x: gaussian_noise(x, -0.1, rng()), r"gaussian_noise: sigma must be a number >= 0, got -0.1"),
    (lambda x: masking_noise(x, 1.5, rng()), r"masking_noise: fraction must be a number in \[0, 1\], got 1.5"),
    (lambda x: salt_and_pepper(x, "a", rng()), r"salt_and_pepper: fraction must be a number"),
    (lambda x: occlusion(x, 0.2, rng(), (27, 28)), r"image_shape must be \(H, W\) or \(C, H, W\) with product D=784"),
    (lambda x: gaussian_noise(x, 0.1, 0), r"rng must be a numpy.random.Generator"),
    (lambda x: masking_noise(x[0], 0.1, rng()), r"x must be a 2-D array of shape \(N, D\), got shape \(784,\)"),
    (lambda x: masking_noise((x * 255).astype(np.uint8), 0.1, rng()), r"floating-point array.*uint8"),
])
def test_bad_arguments(mnist, call, message):
    with pytest.raises(DataError, match=message):
        call(mnist)


@pytest.mark.parametrize("spec, reference", [
    ("gaussian:0.45", lambda x, r: gaussian_noise(x, 0.45, r)),
    ("masking:0.3", lambda x, r: masking_noise(x, 0.3, r)),
    ("salt-and-pepper:0.1", lambda x, r: salt_and_pepper(x, 0.1, r)),
    ("occlusion:0.2", lambda x, r: occlusion(x, 0.2, r, (28, 28))),
    ("none", lambda x, r: x),
])
def test_parse_corruption(mnist, spec, reference):
    f = parse_corruption(spec, (28, 28))
    assert repr(f) == spec
    assert np.array_equal(f(mnist, rng(5)), reference(mnist, rng(5)))


@pytest.mark.parametrize("spec, message", [
    ("blur:0.3", "unknown corruption kind 'blur' in 'blur:0.3'; expected one of: gaussian, masking, "
                 "salt-and-pepper, occlusion, none"),
    ("gaussian", r"expected 'gaussian:<sigma>', e.g. 'gaussian:0.3'"),
    ("gaussian:abc", r"expected 'gaussian:<sigma>'"),
    ("gaussian:-1", r"sigma must be a number >= 0, got -1.0"),
    ("masking:1.2", r"fraction must be a number in \[0, 1\], got 1.2"),
    ("occlusion:nan", r"p must be a number in \[0, 1\], got nan"),
    ("none:0.1", "takes no value"),
])
def test_parse_corruption_errors(spec, message):
    with pytest.raises(DataError, match=message):
        parse_corruption(spec, (28, 28))


def test_occlusion_spec_needs_image_shape():
    with pytest.raises(DataError, match="occlusion needs image_shape"):
        parse_corruption("occlusion:0.2")
    assert parse_corruption("salt_and_pepper:0.1").kind == "salt-and-pepper"


@pytest.mark.gpu
def test_cupy_input_stays_on_device(mnist):
    cupy = pytest.importorskip("cupy")
    try:
        x = cupy.asarray(mnist)
    except Exception as exc:  # CuPy present but no usable GPU
        pytest.skip(f"no CUDA device: {exc}")
    for corrupt in ALL:
        out = corrupt(x, rng(1))
        assert type(out) is type(x) and out.dtype == x.dtype
        assert np.array_equal(cupy.asnumpy(out), corrupt(mnist, rng(1)))
