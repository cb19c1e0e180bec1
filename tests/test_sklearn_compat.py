"""Autoencoder and PCA are scikit-learn estimators: swappable in a Pipeline, clonable, tunable."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from scratch_ae.models import Autoencoder
from scratch_ae.pca import PCA


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: small matrices, and 2-thread OpenBLAS crawls when the cores are shared."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def mnist_small():
    from scratch_ae.data import load_dataset
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    return train.images[:1000], train.labels[:1000], test.images[:500], test.labels[:500]


REDUCERS = {
    "pca": lambda: PCA(n_components=16),
    "autoencoder": lambda: Autoencoder(sizes=[784, 16], activation="relu", output_activation="sigmoid", loss="bce",
                                       epochs=20, seed=0),
}
# test accuracy on 500 test images of 16 features + logistic regression, trained on 1000 images
# (measured: pca 0.788, autoencoder 0.750 after 200 Adam steps; the raw 784 pixels give 0.848, chance 0.1)
MIN_ACCURACY = {"pca": 0.75, "autoencoder": 0.70}


@pytest.mark.parametrize("name", list(REDUCERS))
def test_reducer_is_swappable_in_a_pipeline_before_a_classifier(mnist_small, name):
    X, y, X_test, y_test = mnist_small
    pipe = Pipeline([("reduce", REDUCERS[name]()), ("clf", LogisticRegression(max_iter=2000))])
    pipe.fit(X, y)
    accuracy = pipe.score(X_test, y_test)
    print(f"{name} (16 features) + logistic regression: test accuracy {accuracy:.3f}")
    assert accuracy > MIN_ACCURACY[name]
    assert pipe.predict(X_test[:7]).shape == (7,)
    assert pipe.named_steps["reduce"].transform(X_test[:7]).shape == (7, 16)


@pytest.mark.parametrize("name", list(REDUCERS))
def test_clone_gives_an_unfitted_estimator_with_the_same_params(mnist_small, name):
    X = mnist_small[0][:200]
    est = REDUCERS[name]().fit(X)
    twin = clone(est)
    assert twin is not est
    assert twin.get_params() == est.get_params()
    fitted_marker = "components_" if name == "pca" else "history_"
    assert hasattr(est, fitted_marker) and not hasattr(twin, fitted_marker)
    if name == "autoencoder":  # the clone starts from the seed's initial weights, not the trained ones
        fresh = Autoencoder(**est.get_params())
        for key, value in twin.state_arrays().items():
            np.testing.assert_array_equal(value, fresh.state_arrays()[key])


@pytest.mark.parametrize("name", list(REDUCERS))
def test_get_params_set_params_round_trip(name):
    est = REDUCERS[name]()
    params = est.get_params()
    assert est.set_params(**params).get_params() == params
    if name == "pca":
        est.set_params(n_components=5, method="svd")
        assert est.get_params()["n_components"] == 5 and est.get_params()["method"] == "svd"
    else:
        est.set_params(sizes=[784, 8], epochs=1)
        assert est.get_params()["sizes"] == [784, 8]
        assert est.code_size == 8  # set_params rebuilds the network
    # through a Pipeline's nested parameter names
    pipe = Pipeline([("reduce", REDUCERS[name]()), ("clf", LogisticRegression())])
    key = "reduce__n_components" if name == "pca" else "reduce__seed"
    pipe.set_params(**{key: 3})
    assert pipe.get_params()[key] == 3


@pytest.mark.parametrize("name", list(REDUCERS))
def test_fit_transform_inverse_transform_score_shapes(mnist_small, name):
    X = mnist_small[0][:300]
    est = REDUCERS[name]()
    assert est.fit(X) is est
    codes = est.transform(X)
    assert codes.shape == (300, 16) and isinstance(codes, np.ndarray)
    recon = est.inverse_transform(codes)
    assert recon.shape == (300, 784) and isinstance(recon, np.ndarray)
    score = est.score(X)
    assert isinstance(score, float) and score < 0
    assert abs(score + ((recon - X) ** 2).sum(axis=1).mean()) < 1e-3 * abs(score)  # minus SSE per image
    np.testing.assert_allclose(est.fit_transform(X) if name == "pca" else codes, codes, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(REDUCERS))
def test_transforming_no_samples_gives_empty_arrays_of_the_output_width(mnist_small, name):
    est = REDUCERS[name]().fit(mnist_small[0][:200])
    codes = est.transform(np.zeros((0, 784), np.float32))
    assert codes.shape == (0, 16)
    assert est.inverse_transform(codes).shape == (0, 784)


def test_grid_search_uses_score_to_pick_the_code_size(mnist_small):
    """`score` is minus the reconstruction error, so more components score higher (held-out folds)."""
    X = mnist_small[0][:600]
    search = GridSearchCV(PCA(), {"n_components": [2, 8, 32]}, cv=3).fit(X)
    assert search.best_params_ == {"n_components": 32}
    means = search.cv_results_["mean_test_score"]
    assert means[0] < means[1] < means[2] < 0
