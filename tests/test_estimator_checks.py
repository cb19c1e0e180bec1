"""scikit-learn's own estimator checks on the dense Autoencoder, and the conventions they stand for.

`parametrize_with_checks` (scikit-learn >= 1.6; 1.9 here) runs every check that applies to an
unsupervised transformer (47 per estimator in 1.9) on three data-sized configurations,
`sizes=(None, ...)`, since the checks fit data of 1 to 10 features.  Two epochs each, so all of
them together take a few seconds.

Checks expected to fail, with the reason (EXPECTED_FAILURES, below):

* check_do_not_raise_errors_in_init_or_set_params: it constructs the model with every argument
  set to -1, "helloworld", [] and so on and expects no error.  A model with an explicit input
  width builds its network at construction, so bad arguments are refused there, in one line,
  where the mistake is made (tests/test_backend.py pins the missing-GPU error at construction);
  a student uses the constructed network before fit (loss_and_grads, transform).
* check_dtype_object: object arrays of numbers are converted (that part passes, and
  tests/test_first_run.py checks it on real images), but an object array holding a dict gets the
  project's one-line TypeError ("... got dtype object whose entries are not all numbers"), not
  NumPy's "float() argument must be a string or a real number", which the check matches and which
  would wrongly suggest that strings are accepted.

Skipped by scikit-learn itself: check_array_api_input (needs SCIPY_ARRAY_API=1 and array-api-compat;
the model has its own NumPy/CuPy backend rather than the array API).

Not run through these checks: a sigmoid-output or BCE model, which refuses data outside [0, 1]
by design while the checks fit arbitrary real data (standardised, around 100, negative).

ConvAutoencoder and VariationalAutoencoder run the same checks too, each in one small configuration
on engine="reference" (a 1x4x4 image, one stride-2 conv; a 4-pixel Gaussian VAE with a 2-d code).
Both fix their input width at construction (`input_shape`; the VAE's `sizes[0]`: neither takes its
width from the data as the dense model's sizes=(None, ...) does), so they fail, by reason
(CONV_FAILURES, VAE_FAILURES below):

* The width (most checks): the checks fit data of 1 to 10 features (2, 3, 5, 10 ...), and fit refuses
  data of another width in one line ("training data has 3 features, but ConvAutoencoder is
  expecting 16 features ...").  check_estimators_fit_returns_self, check_readonly_memmap_input,
  check_fit_score_takes_y, check_estimators_overwrite_params, check_dont_overwrite_parameters,
  check_estimators_dtypes, check_dtype_object, check_pipeline_consistency, check_estimators_pickle,
  check_f_contiguous_array_estimator, check_transformer_data_not_an_array, check_transformer_general,
  check_transformer_preserve_dtypes, check_methods_sample_order_invariance,
  check_methods_subset_invariance, check_dict_unchanged, check_fit_idempotent,
  check_fit_check_is_fitted, check_n_features_in, check_fit2d_predict1d; for the conv model also
  check_n_features_in_after_fitting and check_positive_only_tag_during_fit (their data is 4 wide,
  which the VAE happens to have).
* The width error comes first, so the message a check matches is not reached: check_fit2d_1sample
  (one sample of 10 features), check_fit2d_1feature (1 feature), check_estimators_empty_data_messages
  (0 features) and check_estimators_nan_inf (NaN in data of the wrong width); the dense tests above
  and tests/test_first_run.py show those errors at the right width.
* Built at construction: check_no_attributes_set_in_init (the network `encoder_`, `decoder_` ...
  exists once the constructor returns, so a student can use it before fit),
  check_do_not_raise_errors_in_init_or_set_params and check_set_params (bad values such as
  backend=-inf or encoder=-1 are refused where they are given, as for the explicitly sized dense
  model).
"""
import copy
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from scratch_ae.data import train_val_split
from scratch_ae.models import Autoencoder, ConvAutoencoder, VariationalAutoencoder

EXPECTED_FAILURES = {
    "check_do_not_raise_errors_in_init_or_set_params":
        "an explicitly sized model builds its network, validating every argument, at construction",
    "check_dtype_object":
        "object arrays of non-numbers get the project's one-line TypeError, not NumPy's wording",
}

CHECKED = [
    Autoencoder(sizes=(None, 2), epochs=2),
    Autoencoder(sizes=(None, 2), epochs=3, early_stopping=True, validation_fraction=0.2, patience=1),
    Autoencoder(sizes=(None, 4, 2), epochs=2, code_activation="identity", dropout=0.2, tied=True, l1=1e-3,
                weight_decay=1e-3),
]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


FIXED_WIDTH = "the input width is fixed at construction, while the check fits data of another width (1-10 features)"
WIDTH_FIRST = "the input width is fixed at construction: the width error comes before the one this check matches"
BUILT_AT_INIT = "the network is built, and every argument validated, at construction"
VAE_FAILURES = {
    **{check: FIXED_WIDTH for check in (
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_fit_score_takes_y",
        "check_estimators_overwrite_params", "check_dont_overwrite_parameters", "check_estimators_dtypes",
        "check_dtype_object", "check_pipeline_consistency", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array", "check_transformer_general",
        "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent",
        "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d")},
    **{check: WIDTH_FIRST for check in (
        "check_fit2d_1sample", "check_fit2d_1feature", "check_estimators_empty_data_messages",
        "check_estimators_nan_inf")},
    **{check: BUILT_AT_INIT for check in (
        "check_no_attributes_set_in_init", "check_do_not_raise_errors_in_init_or_set_params", "check_set_params")},
}
CONV_FAILURES = {**VAE_FAILURES, "check_n_features_in_after_fitting": FIXED_WIDTH,
                 "check_positive_only_tag_during_fit": FIXED_WIDTH}
FIXED_WIDTH_CHECKED = [
    ConvAutoencoder(input_shape=(1, 4, 4), channels=(2,), downsample="stride", decoder="deconv",
                    output_activation="identity", epochs=1, engine="reference"),
    VariationalAutoencoder(sizes=(4, 3), latent=2, likelihood="gaussian", epochs=1, engine="reference"),
]
FAILURES = {Autoencoder: EXPECTED_FAILURES, ConvAutoencoder: CONV_FAILURES, VariationalAutoencoder: VAE_FAILURES}


@parametrize_with_checks(CHECKED + FIXED_WIDTH_CHECKED, expected_failed_checks=lambda estimator: FAILURES[type(estimator)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


FITTED_FAMILIES = {
    "dense": (lambda: Autoencoder(sizes=[16, 4], epochs=1, engine="reference"), dict(lr=1e-2)),
    # rebuilt at the fitted width, 16: the fresh weights of the model sized so at construction
    "dense-data-sized": (lambda: Autoencoder(sizes=(None, 4), epochs=1, engine="reference"), dict(sizes=(None, 3)),
                         lambda: Autoencoder(sizes=[16, 3], epochs=1, engine="reference")),
    "conv": (lambda: ConvAutoencoder(input_shape=(1, 4, 4), channels=(2,), downsample="stride", decoder="deconv",
                                     epochs=1, engine="reference"), dict(channels=(3,))),
    "vae": (lambda: VariationalAutoencoder(sizes=(16, 8), latent=2, likelihood="gaussian", epochs=1,
                                           engine="reference"), dict(latent=3)),
}


@pytest.mark.parametrize("family", list(FITTED_FAMILIES))
def test_set_params_leaves_a_fitted_model_unfitted_with_its_fresh_weights(family, images):
    """A rebuild gives untrained weights, so check_is_fitted must say so (not the previous fit's n_features_in_)."""
    make, change, *twin = FITTED_FAMILIES[family]
    X = images[:60, 392 - 8:392 + 8]
    model = make().fit(X)
    check_is_fitted(model)
    trained = {name: p.copy() for name, p in model.parameters().items()}
    model.set_params(**change)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert not hasattr(model, "n_features_in_") and not hasattr(model, "history_")
    fresh = twin[0]() if twin else make().set_params(**change)  # the rebuilt weights: the fresh ones from `seed`
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(p, fresh.parameters()[name], err_msg=name)
    assert any(name not in trained or not np.array_equal(trained[name], p) for name, p in model.parameters().items())
    model.fit(X)
    check_is_fitted(model)


@pytest.fixture(scope="module")
def images():
    from scratch_ae.data import load_dataset
    return load_dataset("mnist", "test").images[:400]


# ---------------------------------------------------------------------------- width from the data
def test_a_data_sized_model_has_no_network_until_fit(images):
    model = Autoencoder(sizes=(None, 8), epochs=1)
    assert vars(model).keys() == set(model.get_params())  # only the parameters, as scikit-learn asks
    for use in (lambda: model.transform(images), lambda: model.score(images), lambda: model.input_size,
                lambda: model.loss_and_grads(images[:10]), lambda: model.save("never.npz")):
        with pytest.raises(NotFittedError, match="takes its input width from the data"):
            use()
    assert not hasattr(model, "encoder_")
    model.fit(images)
    assert model.sizes == (None, 8) and model.sizes_ == [784, 8] and model.n_features_in_ == 784
    assert model.transform(images[:5]).shape == (5, 8)
    assert model.get_feature_names_out().tolist() == [f"autoencoder{i}" for i in range(8)]


def test_an_explicitly_sized_model_is_usable_before_fit_but_not_fitted(images):
    """The student's way: the network exists at construction (loss_and_grads, transform)."""
    model = Autoencoder(sizes=[784, 16], epochs=1)
    loss, grads = model.loss_and_grads(images[:20])
    assert float(loss) > 0 and grads["layers.0.W"].shape == (784, 16)
    assert model.transform(images[:3]).shape == (3, 16)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)  # usable, but not fitted: fitted means fit ran
    assert not hasattr(model, "n_features_in_")
    model.fit(images)
    check_is_fitted(model)


def test_a_data_sized_checkpoint_stores_the_widths_in_use_and_loads_fitted(images, tmp_path):
    model = Autoencoder(sizes=(None, 32, 8), epochs=1).fit(images)
    model.save(tmp_path / "m.npz")
    loaded = Autoencoder.load(tmp_path / "m.npz")
    assert loaded.sizes == [784, 32, 8] and loaded.n_features_in_ == 784
    check_is_fitted(loaded)
    np.testing.assert_array_equal(loaded.transform(images), model.transform(images))


def test_clone_of_a_fitted_data_sized_model_is_unfitted_and_refits_identically(images):
    model = Autoencoder(sizes=(None, 8), epochs=2).fit(images)
    twin = clone(model)
    assert not hasattr(twin, "n_features_in_") and not hasattr(twin, "encoder_")
    np.testing.assert_array_equal(twin.fit(images).transform(images), model.transform(images))


def test_set_params_on_a_fitted_data_sized_model_rebuilds_at_the_fitted_width(images):
    model = Autoencoder(sizes=(None, 8), epochs=1).fit(images)
    model.set_params(sizes=(None, 4))
    assert model.sizes_ == [784, 4] and model.transform(images[:2]).shape == (2, 4)


@pytest.mark.parametrize("sizes", [[784, 16], (None, 16)])
def test_pickle_and_deepcopy_keep_the_weights_and_what_fit_recorded(images, sizes):
    model = Autoencoder(sizes=sizes, epochs=1, dropout=0.1).fit(images)
    model.train_seconds_ = 1.5  # a plain attribute a lab sets
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        np.testing.assert_array_equal(twin.transform(images), model.transform(images))
        assert twin.history_ == model.history_ and twin.n_features_in_ == 784 and twin.train_seconds_ == 1.5
        assert twin.get_params() == model.get_params()
        assert twin.encoder_ is not model.encoder_


def test_an_unfitted_data_sized_model_pickles_unbuilt():
    twin = pickle.loads(pickle.dumps(Autoencoder(sizes=(None, 8))))
    assert not hasattr(twin, "encoder_") and twin.sizes == (None, 8)


def test_width_errors_say_what_was_expected(images):
    model = Autoencoder(sizes=[784, 8])
    with pytest.raises(ValueError, match=r"X has 100 features, but Autoencoder is expecting 784 features as input "
                                         r"\(X must have shape \(n_samples, 784\), got \(3, 100\)\)"):
        model.transform(images[:3, :100])
    with pytest.raises(ValueError, match="Reshape your data"):
        model.transform(images[0])
    with pytest.raises(ValueError, match=r"contains NaN or inf \(first at row 1\)"):
        model.transform(np.where(np.arange(3)[:, None] == 1, np.nan, images[:3]))
    with pytest.raises(TypeError, match="sparse input is not supported"):
        from scipy import sparse
        model.transform(sparse.csr_matrix(images[:3]))


# ---------------------------------------------------------------------------- early stopping the scikit-learn way
def test_early_stopping_carves_the_documented_split_from_fits_own_X(images):
    """fit(X) with early_stopping=True is exactly fit(X minus its validation rows, X_val=those rows):
    round(0.2 * 400) = 80 rows chosen by data.train_val_split with the model's seed."""
    kwargs = dict(sizes=(None, 16), epochs=6, lr=3e-3, patience=2, seed=3)
    carved = Autoencoder(early_stopping=True, validation_fraction=0.2, **kwargs).fit(images)
    X_train, _, X_val, _ = train_val_split(images, np.zeros(len(images)), 0.2, 3)
    assert X_val.shape == (80, 784)
    explicit = Autoencoder(**kwargs).fit(X_train, X_val=X_val)
    assert carved.history_["val_loss"] == explicit.history_["val_loss"]
    np.testing.assert_array_equal(carved.transform(images), explicit.transform(images))


def test_early_stopping_defaults_to_patience_5_and_restores_the_best_epoch(images):
    model = Autoencoder(sizes=(None, 16), epochs=40, lr=0.05, early_stopping=True).fit(images[:200])
    history = model.history_
    assert history["stop_reason"] and "did not improve for 5 epochs" in history["stop_reason"]
    best = history["best_epoch"]
    assert history["epochs_run"] == best + 5
    assert min(history["val_loss"]) == history["val_loss"][best - 1]


def test_an_explicit_X_val_wins_over_the_carved_split(images):
    model = Autoencoder(sizes=(None, 16), epochs=2, early_stopping=True).fit(images[:300], X_val=images[300:])
    plain = Autoencoder(sizes=(None, 16), epochs=2, patience=5).fit(images[:300], X_val=images[300:])
    assert model.history_["val_loss"] == plain.history_["val_loss"]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, "0.1"])
def test_validation_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match="validation_fraction must be a fraction in"):
        Autoencoder(sizes=[784, 8], early_stopping=True, validation_fraction=fraction)


def test_too_few_samples_to_carve_a_validation_split_is_one_clear_error(images):
    with pytest.raises(ValueError, match=r"leaves 3 for training and 0 for validation"):
        Autoencoder(sizes=(None, 4), early_stopping=True).fit(images[:3])


def test_a_refused_set_params_keeps_the_previous_parameters_and_network():
    model = Autoencoder(sizes=[784, 8])
    weights = model.parameters()["layers.0.W"].copy()
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        model.set_params(loss="hinge", lr=0.5)
    assert model.loss == "mse" and model.lr == 1e-3
    np.testing.assert_array_equal(model.parameters()["layers.0.W"], weights)
