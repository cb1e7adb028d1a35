"""What a trained network has learned, as arrays: filters, feature maps, activation maximisation,
confusion matrix. NumPy only; fastconv.viz draws these arrays (with matplotlib).

Activation maximisation (Erhan, Bengio, Courville, Vincent 2009) looks for the input x that a unit
responds to most: gradient ascent on x of the unit's total activation, back-propagated through the
model's own layers (their backward kernels), so no separate autodiff is involved.
"""
import numpy as np

from . import layers as layers_module

__all__ = ["layer_index", "conv_layers", "first_conv_filters", "feature_maps", "forward_to",
           "activation_and_input_gradient", "maximize_activation", "maximize_filters", "maximize_classes",
           "confusion_matrix", "model_confusion_matrix"]

_SPATIAL = (layers_module.Conv2D, layers_module.MaxPool2D, layers_module.AvgPool2D)


# ---- layers, filters, feature maps ---------------------------------------------------------------

def layer_index(model, layer):
    """The position in model.layers of `layer`: an index (negative counts from the end), a name or the layer."""
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        count = len(model.layers)
        if not -count <= layer < count:
            raise ValueError(f"layer index {layer} is out of range for a model with {count} layers")
        return int(layer) % count
    for i, candidate in enumerate(model.layers):
        if candidate is layer or candidate.name == layer:
            return i
    raise ValueError(f"the model has no layer {layer!r}; its layers: {[m.name for m in model.layers]}")


def conv_layers(model):
    """Indices of the model's Conv2D layers."""
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, layers_module.Conv2D)]


def first_conv_filters(model):
    """The (K, C, kh, kw) weight the first Conv2D applies (ValueError if the model has none)."""
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"model {model.name!r} has no Conv2D layer")
    return np.array(model.layers[convs[0]].effective_weight())


def feature_maps(model, image):
    """[(layer name, (C, H, W) output)] of every conv and pool layer for one image (C, H, W)."""
    x = model._as_input(np.asarray(image)[None])
    model._ensure_built(x.shape[1:])
    maps = []
    for layer in model.layers:
        x = layer.forward(x, training=False)
        if isinstance(layer, _SPATIAL):
            maps.append((layer.name, x[0].copy()))
    return maps


# ---- activation maximisation ---------------------------------------------------------------------

def forward_to(model, x, index, training=False):
    """The output of model.layers[index] for a batch x (Dropout is skipped: the inference network)."""
    for layer in model.layers[:index + 1]:
        if not isinstance(layer, layers_module.Dropout):
            x = layer.forward(x, training)
    return x


def _backward_from(model, grad, index):
    """dL/dx from dL/d(output of layer index), through the layers' own backward (after forward_to training)."""
    for layer in reversed(model.layers[:index + 1]):
        if not isinstance(layer, layers_module.Dropout):
            grad = layer.backward(grad)
    return grad


def _one_hot_units(output, units):
    """d(sum of unit units[i]'s activation over all its positions)/d(output) for each sample i."""
    grad = np.zeros_like(output)
    grad[np.arange(output.shape[0]), units] = 1
    return grad


def activation_and_input_gradient(model, x, layer, units):
    """(activation (N,), gradient (N, ...) w.r.t. x) of the objective of each sample i: the total
    activation of unit units[i] of `layer` (a channel of a conv/pool output summed over its positions,
    or one neuron of a dense output such as class c's logit).

    The layers run forward up to `layer`, the gradient is one-hot on the unit, and the layers' backward
    carries it down to the input. units: an int (the same unit for every sample) or one per sample.
    The layers' parameter gradients (grads) are overwritten on the way, as by any backward.
    """
    index = layer_index(model, layer)
    x = model._as_input(x)
    model._ensure_built(x.shape[1:])
    units = np.broadcast_to(np.asarray(units, dtype=np.int64), (x.shape[0],))
    output = forward_to(model, x, index, training=True)
    if units.size and not (0 <= units.min() and units.max() < output.shape[1]):
        raise ValueError(f"unit indices must be in [0, {output.shape[1]}) for layer {model.layers[index].name!r}, "
                         f"got [{units.min()}, {units.max()}]")
    picked = output[np.arange(x.shape[0]), units]
    activation = picked.reshape(x.shape[0], -1).sum(axis=1)
    grad_x = _backward_from(model, _one_hot_units(output, units), index)
    model.clear_caches()
    return activation, grad_x


def _project(x, bounds, radius):
    """Keep x feasible: "clip" to the pixel range [0, 1], "l2" onto the ball ||x_i|| <= radius."""
    if bounds == "clip":
        return np.clip(x, 0.0, 1.0, out=x)
    norms = np.sqrt((x.reshape(x.shape[0], -1) ** 2).sum(axis=1))
    scale = np.minimum(1.0, radius / np.maximum(norms, 1e-12))
    x *= scale.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    return x


def maximize_activation(model, layer, units, steps=150, lr=0.05, l1=0.0, bounds="clip", radius=10.0,
                        start=None, seed=0):
    """Inputs that maximise the total activation of `units` (int or one per start) of `layer`.

    Gradient ascent on each x_i of its activation for `steps` steps of size lr, the gradient divided by
    its RMS (per sample) so one lr suits every layer whatever the scale of its activations. l1 > 0 adds
    an L1 penalty, -l1 * sign(x) to that normalised gradient (so l1 is scale-free too: 0.1 to 0.5 is
    mild to strong): it favours few lit pixels, i.e. strokes. bounds: "clip" keeps x in
    [0, 1] like real images; "l2" keeps ||x_i|| <= radius (x may go negative).
    start: (N, C, H, W) initial inputs; default: grey 0.5 plus small noise drawn with `seed`, one per unit.
    Returns (x, trace): the final inputs and the activation per step (steps + 1, N), start included.
    """
    if bounds not in ("clip", "l2"):
        raise ValueError(f"bounds must be 'clip' or 'l2', got {bounds!r}")
    if start is None:
        count = np.size(units)
        rng = np.random.default_rng(seed)
        start = 0.5 + 0.1 * rng.standard_normal((count,) + tuple(model.input_shape))
    x = _project(model._as_input(np.array(start, dtype=model.dtype)), bounds, radius)
    index = layer_index(model, layer)
    trace = []
    for _ in range(int(steps)):
        activation, grad = activation_and_input_gradient(model, x, index, units)
        trace.append(activation)
        grad = _revive_dead_units(model, x, index, units, grad)
        rms = np.sqrt((grad.reshape(len(x), -1) ** 2).mean(axis=1)) + 1e-12
        direction = grad / rms.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)
        if l1:
            direction -= l1 * np.sign(x)
        x += lr * direction
        _project(x, bounds, radius)
    trace.append(activation_and_input_gradient(model, x, index, units)[0])
    return x, np.array(trace)


def _revive_dead_units(model, x, index, units, grad):
    """The ascent direction: the gradient, except for samples whose target is a ReLU unit that is off
    everywhere (zero gradient, so ascent would never move): those climb its pre-activation instead."""
    if index == 0 or not isinstance(model.layers[index], (layers_module.ReLU,)):
        return grad
    dead = ~grad.reshape(len(grad), -1).any(axis=1)
    if dead.any():
        picked = np.broadcast_to(np.asarray(units), (len(x),))[dead]
        grad = grad.copy()
        grad[dead] = activation_and_input_gradient(model, x[dead], index - 1, picked)[1]
    return grad


def maximize_filters(model, layer, max_filters=None, **options):
    """One maximising input per filter (channel) of `layer`, all in one batch: (x (K, C, H, W), trace)."""
    index = layer_index(model, layer)
    channels = model.layers[index].output_shape[0]
    count = channels if max_filters is None else min(channels, int(max_filters))
    return maximize_activation(model, index, np.arange(count), **options)


def maximize_classes(model, **options):
    """One maximising input per output class (its logit, the last layer's neuron c): (x, trace)."""
    return maximize_activation(model, -1, np.arange(model.output_shape[0]), **options)


# ---- confusion matrix ----------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, num_classes=None):
    """(classes, classes) int64 counts: entry [t, p] is how many samples of true class t were predicted p."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of the same length, got {y_true.shape} and {y_pred.shape}")
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"class labels must be in [0, {num_classes})")
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def model_confusion_matrix(model, x, y):
    """The confusion matrix of the model's predictions on (x, y)."""
    return confusion_matrix(y, model.predict_classes(x), num_classes=model.output_shape[0])
