"""Shared fixtures.  Real data comes from the MNIST copy bundled in the package."""
import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist_test_images():
    """The 10,000 real MNIST test images, (10000, 784) float32 in [0, 1]."""
    from scratch_ae.data import load_dataset
    return load_dataset("mnist", "test").images


@pytest.fixture
def mnist_sample(mnist_test_images):
    """mnist_sample(n, width=784, offset=0): n real images as float64; width < 784 keeps a
    central block of pixels (real values, small enough for exhaustive finite differences)."""
    def sample(n, width=784, offset=0):
        x = mnist_test_images[offset:offset + n].astype(np.float64)
        if width == 784:
            return x
        # the middle pixels of a 28x28 image carry ink; take `width` of them around the centre
        start = 392 - width // 2
        return x[:, start:start + width] * 0.9 + 0.05
    return sample


@pytest.fixture(params=["reference", "fast"])
def engine(request):
    """Each engine a model or optimizer can run, passed as engine=: "reference", the derivations' code,
    and "fast", scratch_ae/fast/ (skipped where Numba is not installed).  For tests of results every
    engine must give (to the rounding each states); finite-difference tests pass engine="reference"
    themselves, so the test a derivation names checks the code it names."""
    if request.param == "fast":
        from scratch_ae.fast import unavailable_reason
        if unavailable_reason() is not None:
            pytest.skip(unavailable_reason())
    return request.param


@pytest.fixture
def stand_in(monkeypatch):
    """The NumPy stand-in for CuPy (tests/cupy_stand_in.py) as `import cupy`, for one test."""
    import cupy_stand_in
    cupy_stand_in.install(monkeypatch)
    return cupy_stand_in


# The default `python -m pytest` runs in a few minutes on 2 cores; these modules, which run the
# installed command line in subprocesses, whole labs in quick mode, or every notebook, are marked
# `extended` and left out of it (pyproject.toml's addopts).  `.ci/run` runs them all:
# `python -m pytest -m "not slow"`.
EXTENDED_MODULES = {
    "test_first_run", "test_cli", "test_cli_diverged", "test_cli_folders", "test_cli_interrupts", "test_cli_vae",
    "test_cli_package", "test_labs_classic", "test_labs_conv", "test_labs_pca_family", "test_lab_deep30",
    "test_lab_encoded_space", "test_lab_vae", "test_notebooks",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in EXTENDED_MODULES:
            item.add_marker(pytest.mark.extended)
