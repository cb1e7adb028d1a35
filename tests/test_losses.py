"""fastconv.losses: one-hot targets, the fused sigmoid binary cross-entropy and the mean squared error
(values by hand, gradients by finite differences in float64, stability, target checks, accuracy counts)."""
import numpy as np
import pytest

from fastconv import Sequential, layers, losses, optim


def test_one_hot_targets_give_the_index_form_loss_and_gradient():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((7, 4))
    labels = rng.integers(0, 4, 7)
    loss, grad = losses.softmax_cross_entropy(logits, labels)
    loss_1h, grad_1h = losses.softmax_cross_entropy(logits, np.eye(4)[labels])
    assert loss_1h == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(grad_1h, grad, rtol=1e-12, atol=1e-15)


def test_probability_targets_by_hand_and_by_finite_differences(numerics):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 3))
    targets = rng.random((5, 3))  # rows not normalised: loss -sum(t log p), gradient p sum(t) - t
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss, grad = losses.softmax_cross_entropy(logits, targets)
    assert loss == pytest.approx(-(targets * log_p).sum() / 5, rel=1e-12)
    numeric = numerics.numerical_gradient(lambda: losses.softmax_cross_entropy(logits, targets, False), logits)
    numerics.assert_close(grad, numeric, dtype=np.float32, label="soft-target gradient")


def test_sigmoid_binary_cross_entropy_by_hand_gradient_and_stability(numerics):
    logits = np.array([[0.0, 2.0], [-1.0, 3.0]])
    targets = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = 1 / (1 + np.exp(-logits))
    expected = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean()
    loss, grad = losses.sigmoid_binary_cross_entropy(logits, targets)
    assert loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad, (p - targets) / 4, rtol=1e-12)
    rng = np.random.default_rng(2)
    z, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    numeric = numerics.numerical_gradient(lambda: losses.sigmoid_binary_cross_entropy(z, t, False), z)
    numerics.assert_close(losses.sigmoid_binary_cross_entropy(z, t)[1], numeric, dtype=np.float32)
    huge = np.array([[1e4], [-1e4]], dtype=np.float32)
    loss, grad = losses.sigmoid_binary_cross_entropy(huge, np.array([[0.0], [1.0]]))
    assert loss == pytest.approx(1e4, rel=1e-6) and np.all(np.isfinite(grad))


def test_mean_squared_error_by_hand_and_gradient(numerics):
    outputs, targets = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([[0.0, 2.0], [1.0, 1.0]])
    loss, grad = losses.mean_squared_error(outputs, targets)
    assert loss == pytest.approx((1 + 0 + 4 + 4) / 4)
    np.testing.assert_allclose(grad, 2 * (outputs - targets) / 4)
    rng = np.random.default_rng(3)
    y, t = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    numerics.assert_close(losses.mean_squared_error(y, t)[1],
                          numerics.numerical_gradient(lambda: losses.mean_squared_error(y, t, False), y),
                          dtype=np.float32)


def test_loss_objects_check_targets_and_count_correct():
    ce = losses.SoftmaxCrossEntropy()
    assert ce.check_targets(np.array([[1], [2]]), (3,), np.float32).tolist() == [1, 2]  # a column of indices
    assert ce.check_targets(np.eye(3)[[0, 2]], (3,), np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="3 columns"):
        ce.check_targets(np.ones((2, 4)), (3,), np.float32)
    with pytest.raises(TypeError, match="integer class indices"):
        ce.check_targets(np.array([0.0, 1.0]), (3,), np.float32)
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert ce.count_correct(scores, np.array([1, 2])) == 1
    assert ce.count_correct(scores, np.eye(3)[[1, 0]]) == 2
    bce = losses.SigmoidBinaryCrossEntropy()
    assert bce.check_targets(np.array([0, 1]), (1,), np.float32).shape == (2, 1)
    with pytest.raises(ValueError, match="shape"):
        bce.check_targets(np.zeros((2, 3)), (1,), np.float32)
    assert bce.count_correct(np.array([[0.5], [-2.0], [1.0]]), np.array([[1.0], [1.0], [1.0]])) == 2
    mse = losses.MeanSquaredError()
    assert mse.count_correct(np.array([[0.7], [0.2]]), np.array([[1.0], [1.0]])) == 1  # one output: p > 0.5
    assert mse.count_correct(scores, np.eye(3)[[1, 1]]) == 1  # several outputs: argmax


def test_sequential_trains_with_one_hot_labels_exactly_as_with_indices():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    results = []
    for labels in (y, np.eye(3, dtype=np.float32)[y]):
        model = Sequential([layers.Dense(5), layers.ReLU(), layers.Dense(3)], input_shape=(6,), seed=0)
        history = model.fit(x, labels, epochs=2, batch_size=8, optimizer=optim.SGD(lr=0.1), verbose=0, seed=1)
        results.append((history["loss"], history["accuracy"], model.evaluate(x, labels),
                         [p.copy() for p in model.parameters()]))
    (loss_a, acc_a, eval_a, params_a), (loss_b, acc_b, eval_b, params_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
    assert acc_a == acc_b and eval_a[1] == eval_b[1]
    for a, b in zip(params_a, params_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_sequential_with_the_mean_squared_error_loss_predicts_its_outputs():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 2)).astype(np.float32)
    y = (x @ np.array([[2.0], [-1.0]], dtype=np.float32) + 0.5)
    model = Sequential([layers.Dense(1)], input_shape=(2,), seed=0, loss="mean_squared_error")
    model.fit(x, y[:, 0], epochs=200, batch_size=30, optimizer=optim.SGD(lr=0.1), verbose=0)
    np.testing.assert_allclose(model.predict(x), y, atol=1e-3)
