"""The figures a student reads first: loss curves, first-layer filters, image rows."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.image import AxesImage

from scratch_ae.data import load_dataset
from scratch_ae.plots import (_filters_figure, _image_rows_figure, _loss_figure, per_image_squared_error,
                              plot_filters, plot_image_rows, plot_loss_curves)

HISTORY = {"train_loss": [0.092, 0.058, 0.047], "val_loss": [0.070, 0.051, 0.044]}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", "test", limit=10)


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def _texts(fig):
    return [t.get_text() for t in fig.findobj(plt.Text)]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------------------------- loss curves
def test_loss_curves_write_a_png_with_the_loss_named(tmp_path):
    path = tmp_path / "loss.png"
    assert plot_loss_curves(HISTORY, str(path), ylabel="MSE per pixel", test_value=0.0431) == str(path)
    assert _is_png(path)
    fig = _loss_figure(HISTORY, ylabel="MSE per pixel", test_value=0.0431, test_label="test")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "MSE per pixel"
    assert "test: 0.0431" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("running mean" in t or "still changing" in t for t in _texts(fig))  # the footnote


def test_the_existing_call_still_works(tmp_path):
    assert _is_png(plot_loss_curves(HISTORY, str(tmp_path / "loss.png")))
    assert _is_png(plot_loss_curves(HISTORY, str(tmp_path / "titled.png"), title="deep-30: training BCE"))


def test_an_empty_history_draws_nothing(tmp_path):
    path = tmp_path / "empty.png"
    assert plot_loss_curves({"train_loss": [], "val_loss": []}, str(path)) is None
    assert not path.exists()
    assert _loss_figure({"train_loss": []}) is None


def test_log_scale_only_when_the_values_span_more_than_a_decade():
    assert _loss_figure(HISTORY).axes[0].get_yscale() == "linear"
    wide = {"train_loss": [1.0, 0.3, 0.08], "val_loss": [0.5, 0.1, 0.06]}
    assert _loss_figure(wide).axes[0].get_yscale() == "log"
    negative = {"train_loss": [1.0, -0.5], "val_loss": [None, None]}
    assert _loss_figure(negative).axes[0].get_yscale() == "linear"


@pytest.mark.parametrize("n_epochs", [1, 5, 40])
def test_epoch_ticks_are_integers(n_epochs):
    fig = _loss_figure({"train_loss": list(np.linspace(0.1, 0.08, n_epochs)), "val_loss": [None] * n_epochs})
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 0.5 <= t <= n_epochs + 0.5]
    assert ticks and all(float(t).is_integer() for t in ticks)


# -------------------------------------------------------------------------------------------------- filters
def _filter_images(fig):
    return [im for ax in fig.axes for im in ax.get_images() if isinstance(im, AxesImage)]


def test_filters_share_one_symmetric_colour_scale_and_a_colour_bar(tmp_path):
    W = np.random.default_rng(0).normal(size=(784, 100))
    W[:, 7] *= 5  # one loud filter sets the scale for all
    path = tmp_path / "filters.png"
    assert _is_png(plot_filters(W, (28, 28), str(path), n=16))
    fig = _filters_figure(W, (28, 28), n=16)
    images = _filter_images(fig)
    assert len(images) == 16
    limits = {(im.norm.vmin, im.norm.vmax) for im in images}
    assert len(limits) == 1
    vmin, vmax = limits.pop()
    m = np.abs(W[:, np.argsort(-np.linalg.norm(W, axis=0))[:16]]).max()
    assert vmin == pytest.approx(-m) and vmax == pytest.approx(m)
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    # largest norm first: the loud filter is drawn first
    np.testing.assert_allclose(images[0].get_array(), W[:, 7].reshape(28, 28))
    title = fig._suptitle.get_text()
    assert "16 of 100 hidden units" in title and "largest weight norm first" in title


def test_a_callers_title_is_kept_and_its_column_order_too():
    W = np.random.default_rng(1).normal(size=(784, 16))
    fig = _filters_figure(W, (28, 28), n=16, title="plain AE: 16 most active units")
    title = fig._suptitle.get_text()
    assert title.startswith("plain AE: 16 most active units\n") and " of " in title
    np.testing.assert_allclose(_filter_images(fig)[0].get_array(), W[:, 0].reshape(28, 28))
    fig = _filters_figure(W, (28, 28), n=16, title="t", order="norm", total=256)
    assert "16 of 256 hidden units, largest weight norm first" in fig._suptitle.get_text()
    with pytest.raises(ValueError):
        _filters_figure(W, (28, 28), order="size")


def test_the_default_filters_call_still_works(tmp_path):
    W = np.random.default_rng(2).normal(size=(784, 32))
    assert _is_png(plot_filters(W, (28, 28), str(tmp_path / "f.png")))
    assert "32 of 32" in _filters_figure(W, (28, 28))._suptitle.get_text()


def test_colour_filters_draw(tmp_path):
    W = np.random.default_rng(3).normal(size=(3 * 28 * 28, 9))
    assert _is_png(plot_filters(W, (3, 28, 28), str(tmp_path / "rgb.png")))


# ----------------------------------------------------------------------------------------------- image rows
def test_image_rows_print_each_images_error(tmp_path, digits):
    x = digits.images
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 0.2, size=x.shape), 0, 1)
    se = per_image_squared_error(noisy, x)
    path = tmp_path / "rows.png"
    assert _is_png(plot_image_rows([x, noisy], ["clean", "noisy"], digits.image_shape, str(path),
                                   title="clean / noisy", errors=[None, se]))
    texts = _texts(_image_rows_figure([x, noisy], ["clean", "noisy"], digits.image_shape, errors=[None, se]))
    for e in se:
        assert f"{e:.1f}" in texts
    assert any("SE" in t for t in texts)


def test_image_rows_without_errors_still_work(tmp_path, digits):
    x = digits.images[:5]
    assert _is_png(plot_image_rows([x, x], ["a", "b"], digits.image_shape, str(tmp_path / "rows.png")))
    with pytest.raises(ValueError):
        _image_rows_figure([x], ["a"], digits.image_shape, errors=[[1.0, 2.0]])


def test_per_image_squared_error(digits):
    x = digits.images.astype(np.float64)
    r = x * 0.5
    se = per_image_squared_error(r, x)
    assert se.shape == (len(x),) and isinstance(se, np.ndarray)
    np.testing.assert_allclose(se, ((0.5 * x) ** 2).sum(axis=1))
    with pytest.raises(ValueError):
        per_image_squared_error(x[:, :10], x)
