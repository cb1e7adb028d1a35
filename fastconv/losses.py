"""Loss functions of the training API.

The classifier loss is softmax + cross-entropy fused: from raw scores (logits) straight to the mean
loss over the batch and its gradient, ``(softmax(logits) - onehot(labels)) / N``. The log-sum-exp is
taken after subtracting each row's maximum, so huge logits neither overflow nor lose the loss.
Labels are class indices (N,) or, as in Keras's categorical_crossentropy, one-hot/probability rows.
The binary loss is fused the same way (sigmoid + binary cross-entropy from logits); the mean
squared error works on the outputs themselves.
"""
import numpy as np

__all__ = ["softmax", "log_softmax", "sigmoid", "softmax_cross_entropy", "sigmoid_binary_cross_entropy",
           "mean_squared_error", "SoftmaxCrossEntropy", "SigmoidBinaryCrossEntropy", "MeanSquaredError", "get"]


def log_softmax(logits):
    """log(softmax(logits)) along the last axis, stable for any finite logits."""
    logits = np.asarray(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    """Class probabilities along the last axis (rows sum to 1)."""
    logits = np.asarray(logits)
    exps = np.exp(logits - logits.max(axis=-1, keepdims=True))
    exps /= exps.sum(axis=-1, keepdims=True)
    return exps


def _check_labels(logits, labels):
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, classes), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must be in [0, {logits.shape[1]}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def _is_distribution(logits, targets):
    """True for targets given as one row per sample (one-hot or probabilities), False for class indices."""
    return np.ndim(targets) == 2 and np.ndim(logits) == 2 and np.shape(targets) == np.shape(logits)


def softmax_cross_entropy(logits, labels, return_grad=True):
    """Mean cross-entropy of softmax(logits) against integer labels (N,) or target rows (N, classes).

    Target rows are one-hot vectors or probabilities (Keras's categorical_crossentropy): the loss is
    -sum(t * log_softmax(logits)) per row, the gradient softmax * sum(t) - t.
    Returns (loss, grad) with grad = dloss/dlogits in logits' dtype, or just loss when
    return_grad is False. The loss is a Python float (computed in at least float64 precision for
    the sum)."""
    logits = np.asarray(logits)
    if _is_distribution(logits, labels):
        return _soft_target_cross_entropy(logits, np.asarray(labels), return_grad)
    labels = _check_labels(logits, labels)
    count = logits.shape[0]
    if count == 0:
        return (0.0, np.zeros_like(logits)) if return_grad else 0.0
    rows = np.arange(count)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    sums = exps.sum(axis=1, keepdims=True)
    log_likelihood = shifted[rows, labels] - np.log(sums[:, 0])
    loss = -float(log_likelihood.sum(dtype=np.float64)) / count
    if not return_grad:
        return loss
    grad = exps
    grad /= sums
    grad[rows, labels] -= 1
    grad /= count
    return loss, grad


def _soft_target_cross_entropy(logits, targets, return_grad):
    if targets.dtype.kind not in "iuf":
        raise TypeError(f"targets must hold numbers, got dtype {targets.dtype}")
    count = logits.shape[0]
    if count == 0:
        return (0.0, np.zeros_like(logits)) if return_grad else 0.0
    targets = targets.astype(logits.dtype, copy=False)
    log_probs = log_softmax(logits)
    loss = -float((targets * log_probs).sum(dtype=np.float64)) / count
    if not return_grad:
        return loss
    grad = np.exp(log_probs)
    grad *= targets.sum(axis=1, keepdims=True)
    grad -= targets
    grad /= count
    return loss, grad


def sigmoid(logits):
    """1 / (1 + exp(-logits)), without overflow for large |logits|."""
    logits = np.asarray(logits)
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1 / (1 + e), e / (1 + e)).astype(logits.dtype, copy=False)


def sigmoid_binary_cross_entropy(logits, targets, return_grad=True):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1] of the same shape.

    Stable for any finite logits: max(z, 0) - z * t + log(1 + exp(-|z|)) per element; the gradient
    is (sigmoid(z) - t) / number of elements."""
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the outputs' shape {logits.shape}, got {targets.shape}")
    if targets.dtype.kind not in "iufb":
        raise TypeError(f"targets must hold numbers, got dtype {targets.dtype}")
    if logits.size == 0:
        return (0.0, np.zeros_like(logits)) if return_grad else 0.0
    targets = targets.astype(logits.dtype, copy=False)
    elementwise = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    loss = float(elementwise.sum(dtype=np.float64)) / logits.size
    if not return_grad:
        return loss
    grad = sigmoid(logits) - targets
    grad /= logits.size
    return loss, grad


def mean_squared_error(outputs, targets, return_grad=True):
    """Mean of (outputs - targets)^2 over every element; the gradient is 2 (outputs - targets) / size."""
    outputs = np.asarray(outputs)
    targets = np.asarray(targets)
    if targets.shape != outputs.shape:
        raise ValueError(f"targets must have the outputs' shape {outputs.shape}, got {targets.shape}")
    if targets.dtype.kind not in "iufb":
        raise TypeError(f"targets must hold numbers, got dtype {targets.dtype}")
    if outputs.size == 0:
        return (0.0, np.zeros_like(outputs)) if return_grad else 0.0
    diff = outputs - targets.astype(outputs.dtype, copy=False)
    loss = float(np.square(diff, dtype=np.float64).sum()) / outputs.size
    if not return_grad:
        return loss
    diff *= 2.0 / outputs.size
    return loss, diff


# ---- loss objects (what Sequential uses) -----------------------------------------------------------

def _count_class_matches(scores, targets):
    """Samples whose highest score is their class: targets are indices (N,) or rows (N, classes)."""
    classes = targets.argmax(axis=1) if targets.ndim == 2 else targets
    return int(np.count_nonzero(scores.argmax(axis=1) == classes))


def _binary_matches(predicted, targets):
    """Sum over samples of the fraction of each sample's outputs whose 0/1 prediction equals its target
    (Keras's binary_accuracy, summed instead of averaged over the batch)."""
    hits = predicted.reshape(len(predicted), -1) == targets.reshape(len(targets), -1)
    return float(hits.mean(axis=1).sum()) if hits.size else 0.0


def _numeric_targets(targets, output_shape, dtype, what):
    """Targets of the outputs' per-sample shape (a flat (N,) vector for one output), cast to `dtype`."""
    if targets.dtype.kind not in "iufb":
        raise TypeError(f"{what} targets must hold numbers, got dtype {targets.dtype}")
    shape = tuple(output_shape)
    if targets.ndim == 1 and shape == (1,):
        targets = targets.reshape(-1, 1)
    if targets.shape[1:] != shape:
        raise ValueError(f"{what} needs targets of shape (N,) + {shape} (the model's outputs), "
                         f"got {targets.shape}")
    return targets.astype(dtype, copy=False)


class SoftmaxCrossEntropy:
    """Callable form: loss_fn(logits, labels) -> (loss, grad); name used in configs.

    Every loss object offers the same protocol to Sequential: __call__, output_probabilities (what
    predict returns), check_targets (validates a whole label array once, before training) and
    count_correct (the accuracy's numerator for a batch)."""

    name = "softmax_cross_entropy"

    def __call__(self, logits, labels, return_grad=True):
        return softmax_cross_entropy(logits, labels, return_grad)

    @staticmethod
    def output_probabilities(logits):
        """What Sequential.predict returns for this loss's logits."""
        return softmax(logits)

    @staticmethod
    def check_targets(labels, output_shape, dtype):
        """Integer class indices (N,) as int64, or one-hot / probability rows (N, classes) as `dtype`."""
        classes = output_shape[-1]
        if labels.ndim == 2 and labels.shape[1] == 1 and classes > 1:
            labels = labels[:, 0]  # Keras also takes sparse labels as a column
        if labels.ndim == 2 and tuple(output_shape) == (classes,):
            if labels.shape[1] != classes:
                raise ValueError(f"one-hot labels need {classes} columns for a model with {classes} outputs, "
                                 f"got shape {labels.shape}")
            if labels.dtype.kind not in "iufb":
                raise TypeError(f"one-hot labels must hold numbers, got dtype {labels.dtype}")
            return labels.astype(dtype, copy=False)
        if labels.ndim != 1:
            raise ValueError(f"labels must be class indices (N,) or one-hot rows (N, {classes}), got shape "
                             f"{labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integer class indices (or one-hot rows), got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(f"labels must be in [0, {classes}) for a model with {classes} outputs, "
                             f"got [{labels.min()}, {labels.max()}]")
        return labels.astype(np.int64, copy=False)

    @staticmethod
    def count_correct(logits, labels):
        return _count_class_matches(logits, labels)


class SigmoidBinaryCrossEntropy:
    """Fused sigmoid + binary cross-entropy on logits; targets in [0, 1] shaped like the outputs."""

    name = "sigmoid_binary_cross_entropy"

    def __call__(self, logits, targets, return_grad=True):
        return sigmoid_binary_cross_entropy(logits, targets, return_grad)

    @staticmethod
    def output_probabilities(logits):
        return sigmoid(logits)

    @staticmethod
    def check_targets(targets, output_shape, dtype):
        return _numeric_targets(targets, output_shape, dtype, "binary cross-entropy")

    @staticmethod
    def count_correct(logits, targets):
        return _binary_matches(logits > 0, targets)  # sigmoid(z) > 0.5 exactly when z > 0


class MeanSquaredError:
    """Mean squared error on the outputs themselves (predict returns them unchanged).

    count_correct follows Keras's "accuracy" for such a model: one output is a 0/1 prediction
    thresholded at 0.5, several outputs are scored by their argmax against index or one-hot targets."""

    name = "mean_squared_error"

    def __call__(self, outputs, targets, return_grad=True):
        return mean_squared_error(outputs, targets, return_grad)

    @staticmethod
    def output_probabilities(outputs):
        return outputs

    @staticmethod
    def check_targets(targets, output_shape, dtype):
        return _numeric_targets(targets, output_shape, dtype, "mean squared error")

    @staticmethod
    def count_correct(outputs, targets):
        if outputs.shape[1:] == (1,):
            return _binary_matches(outputs > 0.5, targets)
        return _count_class_matches(outputs, targets)


# Keras's name for the same loss on integer labels (with from_logits=True).
_LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy, "sparse_categorical_crossentropy": SoftmaxCrossEntropy,
           "sigmoid_binary_cross_entropy": SigmoidBinaryCrossEntropy, "mean_squared_error": MeanSquaredError}


def get(name):
    """A loss object from its name (or the object itself)."""
    if not isinstance(name, str):
        return name
    try:
        return _LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(_LOSSES)}") from None
