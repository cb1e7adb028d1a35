"""Pictures of a training run and of what the network learns, each written to a PNG file.

Needs matplotlib (``pip install fastconv[plot]``), imported only when a picture is drawn and always
with the non-interactive Agg backend. The numbers behind each picture come from fastconv.analysis.

* plot_history: loss and accuracy per epoch, train and validation (the dict Sequential.fit returns);
* plot_filters: the first conv layer's filters; plot_feature_maps: every conv/pool output for one digit;
* plot_activation_maximization / plot_class_maximization: the inputs a layer's filters, or the output
  classes, respond to most; plot_confusion_matrix: true versus predicted test classes;
* write_all: all of them into one directory (what ``fastconv train --plots DIR`` does).
"""
import math
import os

import numpy as np

from . import analysis

__all__ = ["require_matplotlib", "plot_history", "plot_filters", "plot_feature_maps",
           "plot_activation_maximization", "plot_class_maximization", "plot_confusion_matrix", "write_all"]

DPI = 80


def require_matplotlib():
    """matplotlib.pyplot on the Agg backend; ImportError naming the extra to install when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("fastconv's pictures need matplotlib: pip install fastconv[plot]") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    require_matplotlib().close(fig)
    return path


def _image_grid(images, titles, suptitle, path, columns=None, cmap="gray", symmetric=False, cell=1.1):
    """Draw images (N, H, W) in a grid, one small titled panel each, without axes ticks."""
    count = len(images)
    columns = columns or min(count, 10)
    rows = math.ceil(count / columns)
    plt = require_matplotlib()
    # taller than wide: room for each panel's two-line title above its image
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, 1.3 * cell * rows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        limit = float(np.abs(image).max()) or 1.0
        bounds = {"vmin": -limit, "vmax": limit} if symmetric else {}
        ax.imshow(image, cmap=cmap, interpolation="nearest", **bounds)
        ax.set_title(title, fontsize=8)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_history(history, path, title="training curves"):
    """Loss (left) and accuracy (right) per epoch, train and, when present, validation."""
    plt = require_matplotlib()
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, label in ((ax_loss, "loss", "loss (cross-entropy)"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, history[key], "o-", label="train")
        if history.get(f"val_{key}"):
            ax.plot(epochs, history[f"val_{key}"], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_filters(model, path):
    """The first Conv2D layer's filters, one panel per (filter, input channel), blue < 0 < red."""
    weight = analysis.first_conv_filters(model)
    filters, channels = weight.shape[:2]
    images = weight.reshape(filters * channels, *weight.shape[2:])
    titles = [f"filter {k}" + (f" ch {c}" if channels > 1 else "") for k in range(filters) for c in range(channels)]
    return _image_grid(images, titles, f"{model.name}: first conv layer filters ({weight.shape[2]}x{weight.shape[3]})",
                       path, cmap="RdBu_r", symmetric=True)


def plot_feature_maps(model, image, path, label=None, max_maps=16):
    """The input digit, then each conv/pool layer's output maps (at most max_maps per layer), one row each."""
    maps = analysis.feature_maps(model, image)
    plt = require_matplotlib()
    columns = min(max_maps, max(m.shape[0] for _, m in maps))
    fig, axes = plt.subplots(len(maps) + 1, columns + 1, figsize=(0.9 * (columns + 1), 1.0 * (len(maps) + 1) + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(np.asarray(image)[0], cmap="gray")
    axes[0, 0].set_title("input" if label is None else f"input ({label})", fontsize=8)
    for row, (name, output) in enumerate(maps, start=1):
        axes[row, 0].text(0.0, 0.5, f"{name}\n{output.shape[1]}x{output.shape[2]}", fontsize=8, va="center")
        for k in range(min(max_maps, output.shape[0])):
            axes[row, k + 1].imshow(output[k], cmap="viridis", interpolation="nearest")
            if row == 1 or k == 0:
                axes[row, k + 1].set_title(f"map {k}", fontsize=7)
    fig.suptitle(f"{model.name}: feature maps of every conv/pool layer for one test digit", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_activation_maximization(model, layer, path, max_filters=32, layer_label=None, **options):
    """The input each filter of `layer` responds to most (analysis.maximize_filters), one panel per filter."""
    index = analysis.layer_index(model, layer)
    x, trace = analysis.maximize_filters(model, index, max_filters=max_filters, **options)
    # a filter that stays at 0 is a dead ReLU: no input in range turns it on
    titles = [f"filter {k}\n" + (f"a={a:.3g}" if a != 0 else "dead (a=0)") for k, a in enumerate(trace[-1])]
    label = layer_label or repr(model.layers[index].name)
    return _image_grid(x[:, 0], titles, f"{model.name}: inputs maximising each filter of {label}\n"
                       f"(a = total activation)", path, columns=min(len(x), 8), cell=1.3)


def plot_class_maximization(model, path, **options):
    """The input each output class's logit is largest for (analysis.maximize_classes)."""
    x, trace = analysis.maximize_classes(model, **options)
    titles = [f"class {c}\nlogit={trace[-1, c]:.3g}" for c in range(len(x))]
    return _image_grid(x[:, 0], titles, f"{model.name}: inputs maximising each class logit", path,
                       columns=min(len(x), 10), cell=1.3)


def plot_confusion_matrix(matrix, path, title="confusion matrix (test set)"):
    """Counts, rows = true class, columns = predicted class, with the count written in each cell."""
    matrix = np.asarray(matrix)
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6, 5.2))
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, label="images")
    classes = np.arange(matrix.shape[0])
    ax.set_xticks(classes)
    ax.set_yticks(classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = matrix.max() / 2
    for t in classes:
        for p in classes:
            ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[t, p] > threshold else "black")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}: accuracy {100 * accuracy:.2f}%")
    fig.tight_layout()
    return _save(fig, path)


def write_all(model, history, test_data, directory, steps=200, l1=0.5):
    """Every picture of a run into `directory`; returns the paths written.

    training_curves.png, confusion_matrix.png, class_maximization.png, and for a model with convs:
    filters.png, feature_maps.png, activation_maximization_<layer>.png for each conv layer.
    steps, l1: of the activation maximisation; l1 0.5 turns the class images into digit-like strokes
    on a dark background (with l1 0 they are high-contrast textures).
    """
    require_matplotlib()
    os.makedirs(directory, exist_ok=True)
    x_test, y_test = test_data
    join = lambda name: os.path.join(directory, name)  # noqa: E731
    paths = [plot_history(history, join("training_curves.png"), title=f"{model.name}: training curves"),
             plot_confusion_matrix(analysis.model_confusion_matrix(model, x_test, y_test), join("confusion_matrix.png"),
                                   title=f"{model.name} on {len(y_test):,} test images"),
             plot_class_maximization(model, join("class_maximization.png"), steps=steps, l1=l1)]
    if analysis.conv_layers(model):
        paths.append(plot_filters(model, join("filters.png")))
        paths.append(plot_feature_maps(model, x_test[0], join("feature_maps.png"), label=int(y_test[0])))
        for index in analysis.conv_layers(model):
            # the activation after the conv's nonlinearity, when one follows: what the next layer sees
            target = index + 1 if index + 1 < len(model.layers) and _is_activation(model.layers[index + 1]) else index
            name = model.layers[index].name
            label = f"{name!r}" + (f" + {type(model.layers[target]).__name__}" if target != index else "")
            paths.append(plot_activation_maximization(model, target, join(f"activation_maximization_{name}.png"),
                                                      layer_label=label, steps=steps, l1=l1))
    return paths


def _is_activation(layer):
    from . import layers

    return isinstance(layer, (layers.ReLU, layers.LeakyReLU, layers.Sigmoid, layers.Tanh))
