import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_show_images_titles_and_colours_predictions():
    images = np.zeros((3, 28, 28), np.uint8)
    fig = plots.show_images(images, labels=[1, 2, 3], predictions=[1, 0, 3], class_names=list("0123"))
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["1 (1)", "0 (2)", "3 (3)"]
    assert titled[1].title.get_color() == "red" and titled[0].title.get_color() == "green"


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (2, 1, 28, 28), (2, 28, 28, 3)])
def test_show_images_accepts_both_layouts(shape):
    fig = plots.show_images(np.random.rand(*shape))
    assert sum(1 for ax in fig.axes if ax.images) == 2


def test_show_images_rejects_bad_shapes():
    with pytest.raises(ValueError, match="images should be a batch"):
        plots.show_images(np.zeros((2, 2, 3, 4, 5)))


def test_plot_history_one_and_several_runs():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    fig = plots.plot_history(history)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    fig = plots.plot_history({"a": history, "b": history})
    assert [len(ax.lines) for ax in fig.axes] == [4, 4]
    with pytest.raises(ValueError):
        plots.plot_history({})


def test_confusion_matrix_counts():
    cm = plots.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], num_classes=3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="same length"):
        plots.confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="labels must lie"):
        plots.confusion_matrix([0, 5], [0, 1], num_classes=3)
    fig = plots.plot_confusion_matrix([0, 1, 1], [0, 1, 0], class_names=["a", "b"])
    assert "66.67%" in fig.axes[0].get_title()


def test_filters_feature_maps_and_misclassified():
    assert len([ax for ax in plots.plot_filters(np.random.randn(32, 1, 3, 3)).axes if ax.images]) == 32
    assert len([ax for ax in plots.plot_feature_maps(np.random.rand(26, 26, 8), channels_last=True).axes if ax.images]) == 8
    assert len([ax for ax in plots.plot_feature_maps(np.random.rand(1, 8, 26, 26)).axes if ax.images]) == 8
    with pytest.raises(ValueError, match="3-D"):
        plots.plot_feature_maps(np.random.rand(8, 26))
    fig = plots.show_misclassified(np.zeros((4, 28, 28)), [0, 1, 2, 3], [0, 2, 2, 1])
    assert "2 misclassified" in fig._suptitle.get_text()
    fig = plots.show_misclassified(np.zeros((2, 28, 28)), [0, 1], [0, 1])
    assert "no misclassified" in fig.axes[0].texts[0].get_text()


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (2, 3, 32, 32)])
def test_show_images_draws_colour_in_colour(shape):
    images = np.random.default_rng(0).uniform(-0.2, 1.2, shape)  # out of range: clipped, no warning
    fig = plots.show_images(images)
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(drawn) == 2 and all(a.shape == (32, 32, 3) and a.min() >= 0 and a.max() <= 1 for a in drawn)


@pytest.mark.parametrize("shape, message", [((2, 8, 8, 2), "colour"), ((8, 8), "batch"), ((2, 5, 8, 8), "got shape")])
def test_show_images_rejects_other_shapes_clearly(shape, message):
    with pytest.raises(ValueError, match=message):
        plots.show_images(np.zeros(shape))


def test_plot_feature_maps_takes_a_batch_of_one_and_a_colour_input():
    fig = plots.plot_feature_maps(np.random.rand(1, 6, 6, 4), channels_last=True, image=np.random.rand(1, 12, 12, 3))
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5 and drawn[0].get_title() == "input" and drawn[0].images[0].get_array().shape == (12, 12, 3)
    with pytest.raises(ValueError, match="batch of one"):
        plots.plot_feature_maps(np.random.rand(2, 4, 6, 6))
