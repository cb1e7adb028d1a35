"""fastconv.onnx: every zoo model exported and run in ONNX Runtime equals model.predict; export -> load
round-trips exactly; hand-built graphs (onnx.helper) for each import path and each error."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the onnx package (pip install 'fastconv[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime (pip install 'fastconv[test]')")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from fastconv import Sequential, cli, layers, losses, models  # noqa: E402
from fastconv import onnx as fconnx  # noqa: E402

PROBABILITY_TOLERANCE = 1e-5


def run_ort(path_or_proto, x):
    source = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def sharpen(model, spread=4.0):
    """Scale the last Dense layer so the logits spread by about `spread` and the probabilities are far
    from uniform (a wrong layer would hardly show in near-uniform probabilities)."""
    logits = model.forward(images(model.input_shape, 8, seed=99))
    for value in model.layers[-1].params.values():
        value *= spread / logits.std()
    return model


def images(shape, count=23, seed=0):
    return np.random.default_rng(seed).random((count,) + tuple(shape), dtype=np.float32)


def assert_same_predictions(expected, actual):
    assert actual.shape == expected.shape and actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= PROBABILITY_TOLERANCE
    np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))


def check_export_and_round_trip(model, tmp_path, count=23):
    x = images(model.input_shape, count)
    expected = model.predict(x)
    path = str(tmp_path / "model.onnx")
    fconnx.export(model, path)
    assert_same_predictions(expected, run_ort(path, x))
    np.testing.assert_array_equal(fconnx.load(path).predict(x), expected)
    return expected


ZOO = sorted({models._MODELS[name] for name in models.available()}, key=lambda factory: factory.__name__)


@pytest.mark.parametrize("factory", ZOO, ids=lambda factory: factory.__name__)
def test_every_zoo_model_runs_in_onnxruntime_and_round_trips(factory, tmp_path):
    model = sharpen(factory(seed=3))
    expected = check_export_and_round_trip(model, tmp_path, count=8 if factory is models.deep_cnn else 23)
    assert expected.max() > 0.5  # the probabilities are peaked, so a wrong layer would show


def test_exported_graph_declares_opset_ir_and_a_free_batch_dimension(tmp_path):
    proto = fconnx.export(models.lenet5(seed=0), tmp_path / "lenet.onnx")
    assert proto.ir_version == fconnx.IR_VERSION == 8
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", fconnx.OPSET)] and fconnx.OPSET == 17
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "input" and dims == ["N", 1, 28, 28]
    assert graph_output.name == "probabilities" and proto.graph.node[-1].op_type == "Softmax"
    assert onnx.load(str(tmp_path / "lenet.onnx")) == proto


def test_layers_outside_the_zoo_export_with_their_padding_semantics(tmp_path):
    """Odd sizes make every "same" pad asymmetric: Conv pads, MaxPool's -inf and AvgPool's real-cell divisor."""
    model = Sequential([
        layers.Conv2D(4, 4, strides=2, padding="same", use_bias=False),
        layers.LeakyReLU(0.2),
        layers.AvgPool2D(2, strides=2, padding="same"),
        layers.Conv2D(5, (3, 2), padding=(1, 0)),
        layers.Sigmoid(),
        layers.MaxPool2D(2, strides=1, padding="same"),
        layers.AvgPool2D(3, strides=1, padding=1),
        layers.MaxPool2D(2, padding=1),
        layers.Dropout(0.5),
        layers.Flatten(),
        layers.Dense(7, use_bias=False),
        layers.Tanh(),
        layers.Dense(4),
    ], input_shape=(3, 15, 13), seed=1).build()
    assert [model.layers[i]._pads for i in (0, 2, 5)] == [((1, 2), (1, 2)), ((0, 0), (0, 1)), ((0, 1), (0, 1))]
    check_export_and_round_trip(sharpen(model), tmp_path)


def test_a_float64_model_exports_as_float32(tmp_path):
    model = sharpen(models.lenet5(seed=2, dtype=np.float64))
    x = images((1, 28, 28))
    fconnx.export(model, tmp_path / "m.onnx")
    assert_same_predictions(model.predict(x).astype(np.float32), run_ort(str(tmp_path / "m.onnx"), x))


@layers.register
class Doubler(layers.Layer):
    def forward(self, x, training=False):
        return 2 * x


def test_export_names_a_layer_it_cannot_express(tmp_path):
    model = Sequential([layers.Flatten(), Doubler(name="twice"), layers.Dense(3)], input_shape=(4,)).build()
    with pytest.raises(ValueError, match=r"layer 'twice' \(Doubler\) has no ONNX equivalent"):
        fconnx.export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(TypeError, match="model must be a fastconv.Sequential"):
        fconnx.export(models.lenet5(seed=0).layers, tmp_path / "m.onnx")


def test_cli_export_writes_a_model_onnxruntime_runs(tmp_path, capsys):
    model = sharpen(models.lenet5_classic(seed=4))
    model.save(tmp_path / "classic.npz")
    assert cli.main(["export", str(tmp_path / "classic.npz"), str(tmp_path / "classic.onnx")]) == 0
    assert "opset 17" in capsys.readouterr().out
    x = images((1, 28, 28))
    assert_same_predictions(model.predict(x), run_ort(str(tmp_path / "classic.onnx"), x))
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "x.onnx")]) == 1
    assert "no such checkpoint" in capsys.readouterr().err


# ---- import from hand-built graphs ---------------------------------------------------------------

def make_model(nodes, initializers, input_shape, output="y", output_shape=None, input_name="x"):
    graph = helper.make_graph(
        nodes, "hand_built",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
        [numpy_helper.from_array(np.asarray(value, dtype=value.dtype), name) for name, value in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def weights(*shape, seed):
    return np.random.default_rng(seed).normal(0, 0.5, shape).astype(np.float32)


def int64_constant(name, value):
    return helper.make_node("Constant", [], [name], name=f"/{name}",
                            value=numpy_helper.from_array(np.array(value, dtype=np.int64)))


FLATTENS = {  # how torch.onnx.export writes torch.flatten(x, 1), x.view(-1, 400) and x.view(x.size(0), -1)
    "Flatten": [helper.make_node("Flatten", ["p2"], ["flat"], name="/Flatten", axis=1)],
    "Reshape": [int64_constant("shape", [-1, 400]), helper.make_node("Reshape", ["p2", "shape"], ["flat"])],
    "Shape chain": [helper.make_node("Shape", ["p2"], ["s"], name="/Shape"), int64_constant("zero", 0),
                    helper.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
                    int64_constant("axes", [0]), helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
                    int64_constant("rest", [-1]), helper.make_node("Concat", ["n1", "rest"], ["shape"], axis=0),
                    helper.make_node("Reshape", ["p2", "shape"], ["flat"], name="/Reshape")],
    # exported without dynamic axes for a batch of 4: the batch size is written into the shape
    "fixed batch": [int64_constant("shape", [4, -1]), helper.make_node("Reshape", ["p2", "shape"], ["flat"])],
}


def torch_style_lenet(head="Softmax", flatten="Reshape"):
    """LeNet-5 as torch.onnx.export (opset 17, dynamo=False) writes it: Gemm with transB=1, the
    flatten as one of FLATTENS."""
    init = {"c1.w": weights(6, 1, 5, 5, seed=1), "c1.b": weights(6, seed=2),
            "c2.w": weights(16, 6, 5, 5, seed=3), "c2.b": weights(16, seed=4),
            "f1.w": weights(120, 400, seed=5) / 4, "f1.b": weights(120, seed=6),
            "f2.w": weights(10, 120, seed=7), "f2.b": weights(10, seed=8)}
    nodes = [
        helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["a1"], name="/conv1/Conv", kernel_shape=[5, 5],
                         pads=[2, 2, 2, 2], strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["a1"], ["r1"], name="/Relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="/MaxPool", kernel_shape=[2, 2], strides=[2, 2],
                         pads=[0, 0, 0, 0], ceil_mode=0),
        helper.make_node("Conv", ["p1", "c2.w", "c2.b"], ["a2"], name="/conv2/Conv", kernel_shape=[5, 5]),
        helper.make_node("Relu", ["a2"], ["r2"], name="/Relu_1"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="/MaxPool_1", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    nodes += FLATTENS[flatten] + [
        helper.make_node("Gemm", ["flat", "f1.w", "f1.b"], ["g1"], name="/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Relu", ["g1"], ["h1"], name="/Relu_2"),
        helper.make_node("Gemm", ["h1", "f2.w", "f2.b"], ["logits" if head else "y"], name="/fc2/Gemm", transB=1),
    ]
    if head:
        nodes.append(helper.make_node(head, ["logits"], ["y"], name=f"/{head}", axis=1))
    return make_model(nodes, init, [4 if flatten == "fixed batch" else "batch", 1, 28, 28])


@pytest.mark.parametrize("head", ["Softmax", "LogSoftmax", None])
@pytest.mark.parametrize("flatten", sorted(FLATTENS))
def test_import_a_pytorch_style_lenet(head, flatten):
    proto = torch_style_lenet(head, flatten)
    model = fconnx.load(proto)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "ReLU", "Dense"]
    assert model.input_shape == (1, 28, 28) and model.layers[0].padding == (2, 2)
    x = images((1, 28, 28), count=4)
    out = run_ort(proto, x)
    expected = out if head == "Softmax" else np.exp(out) if head == "LogSoftmax" else losses.softmax(out)
    assert expected.max() > 0.5
    assert_same_predictions(expected, model.predict(x))


def test_import_matmul_add_activations_and_pass_through_nodes(tmp_path):
    """A Keras-exporter-like head: MatMul + Add, LeakyRelu / Sigmoid / Tanh, Identity, Dropout,
    auto_pad SAME_UPPER, AveragePool excluding the pad, Gemm alpha / beta, Constant given as value_ints."""
    init = {"cw": weights(4, 2, 3, 3, seed=1), "m1": weights(4 * 4 * 4, 9, seed=2), "b1": weights(9, seed=3),
            "g2": weights(9, 5, seed=4), "b2": weights(1, 5, seed=5)}
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("LeakyRelu", ["c"], ["l"], name="leaky", alpha=0.3),
        helper.make_node("AveragePool", ["l"], ["a"], name="avg", kernel_shape=[2, 2], strides=[2, 2],
                         pads=[0, 0, 1, 1], count_include_pad=0),
        helper.make_node("Identity", ["a"], ["i"], name="identity"),
        helper.make_node("Constant", [], ["s"], name="shape", value_ints=[0, -1]),
        helper.make_node("Reshape", ["i", "s"], ["f"], name="reshape"),
        helper.make_node("MatMul", ["f", "m1"], ["mm"], name="dense/MatMul"),
        helper.make_node("Add", ["mm", "b1"], ["ad"], name="dense/BiasAdd"),
        helper.make_node("Sigmoid", ["ad"], ["sg"], name="sigmoid"),
        helper.make_node("Dropout", ["sg"], ["d"], name="dropout"),
        helper.make_node("Gemm", ["d", "g2", "b2"], ["g"], name="out", alpha=2.0, beta=0.5),
        helper.make_node("Tanh", ["g"], ["t"], name="tanh"),
        helper.make_node("Softmax", ["t"], ["y"], name="softmax"),
    ]
    proto = make_model(nodes, init, [None, 2, 14, 14])
    model = fconnx.load(proto)
    assert model.layers[0].padding == "same" and model.layers[2].padding == "same"
    x = images((2, 14, 14))
    assert_same_predictions(run_ort(proto, x), model.predict(x))
    # the imported model exports again (to the same probabilities)
    fconnx.export(model, tmp_path / "again.onnx")
    assert_same_predictions(run_ort(proto, x), run_ort(str(tmp_path / "again.onnx"), x))


def test_import_needs_input_shape_when_the_graph_leaves_it_free():
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    proto = make_model(nodes, {"w": weights(3, 6, seed=0)}, ["n", "features"])
    with pytest.raises(ValueError, match="pass load\\(path, input_shape=...\\)"):
        fconnx.load(proto)
    model = fconnx.load(proto, input_shape=(6,))
    x = images((6,))
    assert_same_predictions(losses.softmax(run_ort(proto, x)), model.predict(x))


def test_import_reads_a_file(tmp_path):
    onnx.save(torch_style_lenet(), str(tmp_path / "torch.onnx"))
    x = images((1, 28, 28))
    assert_same_predictions(run_ort(str(tmp_path / "torch.onnx"), x), fconnx.load(tmp_path / "torch.onnx").predict(x))


# ---- channels-last (Keras-exported) graphs --------------------------------------------------------

def transpose(source, target, perm, name):
    return helper.make_node("Transpose", [source], [target], name=name, perm=perm)


def keras_style_lenet(transposes_around_each_op=False):
    """A channels-last LeNet as tf2onnx writes a Keras model: NHWC input (30, 26, 3), a Transpose to NCHW for
    the convolutions and pools, a Transpose back to NHWC before the Reshape [-1, F] (so the Dense kernel's
    rows are in Keras's (H, W, C) flatten order), MatMul + Add for each Dense. With
    transposes_around_each_op, every NCHW op sits between its own Transpose pair and the Relus run on
    NHWC tensors, as tf2onnx writes a graph it has not optimized."""
    init = {"c1.w": weights(6, 3, 5, 5, seed=11) / 2, "c1.b": weights(6, seed=12),
            "c2.w": weights(16, 6, 5, 5, seed=13) / 3, "c2.b": weights(16, seed=14),
            "d1.w": weights(16 * 5 * 4, 120, seed=15) / 6, "d1.b": weights(120, seed=16),
            "d2.w": weights(120, 10, seed=17) / 5, "d2.b": weights(10, seed=18),
            "shape": np.array([-1, 16 * 5 * 4], dtype=np.int64)}
    nchw_ops = [  # (op, input, output, attributes), in the order of the network
        ("Conv", ["c1.w", "c1.b"], dict(kernel_shape=[5, 5], pads=[2, 2, 2, 2])), ("Relu", [], {}),
        ("MaxPool", [], dict(kernel_shape=[2, 2], strides=[2, 2])),
        ("Conv", ["c2.w", "c2.b"], dict(kernel_shape=[5, 5])), ("Relu", [], {}),
        ("MaxPool", [], dict(kernel_shape=[2, 2], strides=[2, 2])),
    ]
    nodes, tensor = [], "input_1"
    if not transposes_around_each_op:
        nodes.append(transpose(tensor, "nchw", [0, 3, 1, 2], "sequential/conv2d/Conv2D__6"))
        tensor = "nchw"
    for index, (op, constants, attributes) in enumerate(nchw_ops):
        wrap = transposes_around_each_op and op != "Relu"
        if wrap:
            nodes.append(transpose(tensor, f"in{index}", [0, 3, 1, 2], f"{op}_{index}__in"))
            tensor = f"in{index}"
        nodes.append(helper.make_node(op, [tensor] + constants, [f"out{index}"], name=f"{op}_{index}", **attributes))
        tensor = f"out{index}"
        if wrap:
            nodes.append(transpose(tensor, f"nhwc{index}", [0, 2, 3, 1], f"{op}_{index}__out"))
            tensor = f"nhwc{index}"
    if not transposes_around_each_op:
        nodes.append(transpose(tensor, "nhwc", [0, 2, 3, 1], "sequential/max_pooling2d_1/MaxPool__28"))
        tensor = "nhwc"
    nodes += [
        helper.make_node("Reshape", [tensor, "shape"], ["flat"], name="sequential/flatten/Reshape"),
        helper.make_node("MatMul", ["flat", "d1.w"], ["m1"], name="sequential/dense/MatMul"),
        helper.make_node("Add", ["m1", "d1.b"], ["a1"], name="sequential/dense/BiasAdd"),
        helper.make_node("Relu", ["a1"], ["h1"], name="sequential/dense/Relu"),
        helper.make_node("MatMul", ["h1", "d2.w"], ["m2"], name="sequential/dense_1/MatMul"),
        helper.make_node("Add", ["m2", "d2.b"], ["logits"], name="sequential/dense_1/BiasAdd"),
        helper.make_node("Softmax", ["logits"], ["y"], name="sequential/dense_1/Softmax"),
    ]
    return make_model(nodes, init, ["unk__0", 30, 26, 3], input_name="input_1")


@pytest.mark.parametrize("transposes_around_each_op", [False, True])
def test_import_a_keras_style_channels_last_lenet(transposes_around_each_op):
    """The model takes the NHWC array the ONNX model takes: a Permute to NCHW first, convolutions on
    fastconv's NCHW kernels, and the Transpose back to (H, W, C) folded into the first Dense's rows."""
    proto = keras_style_lenet(transposes_around_each_op)
    model = fconnx.load(proto)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Permute", "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "ReLU", "Dense"]
    assert model.input_shape == (30, 26, 3) and model.layers[0].dims == (3, 1, 2)
    assert model.layers[6].output_shape == (16, 5, 4)
    x = images((30, 26, 3))
    expected = run_ort(proto, x)
    assert 0.5 < expected.max() < 0.999  # peaked, not saturated: a wrong row order would show
    assert_same_predictions(expected, model.predict(x))


def tf2onnx_one_channel_lenet():
    """A 1-channel Keras LeNet-5 as tf2onnx 1.17 wrote it from TensorFlow 2.21 (node for node, random
    weights): the NHWC -> NCHW Transpose of a 1-channel input written as a Reshape to [-1, 1, 28, 28], and
    Flatten's target shape computed from the Shape of the tensor before the Transpose to (H, W, C): Gather
    in (H, W, C) order, Cast to int32, Slice of the batch size, Concat with [400], Cast back to int64."""
    init = {"new_shape": np.array([-1, 1, 28, 28], dtype=np.int64),
            "c1.w": weights(6, 1, 5, 5, seed=21), "c1.b": weights(6, seed=22),
            "c2.w": weights(16, 6, 5, 5, seed=23) / 3, "c2.b": weights(16, seed=24),
            "order": np.array([0, 2, 3, 1], dtype=np.int64), "zero": np.array([0], dtype=np.int64),
            "one": np.array([1], dtype=np.int64), "features": np.array([400], dtype=np.int32),
            "d1.w": weights(400, 84, seed=25) / 6, "d1.b": weights(84, seed=26),
            "d2.w": weights(84, 10, seed=27) / 3, "d2.b": weights(10, seed=28)}
    nodes = [
        helper.make_node("Reshape", ["input", "new_shape"], ["nchw"], name="sequential_1/conv2d_1/BiasAdd__6"),
        helper.make_node("Conv", ["nchw", "c1.w", "c1.b"], ["a1"], name="conv1", kernel_shape=[5, 5],
                         pads=[2, 2, 2, 2], strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "c2.w", "c2.b"], ["a2"], name="conv2", kernel_shape=[5, 5]),
        helper.make_node("Relu", ["a2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        transpose("p2", "nhwc", [0, 2, 3, 1], "Transpose__34"),
        helper.make_node("Shape", ["p2"], ["shape"], name="Shape__38"),
        helper.make_node("Gather", ["shape", "order"], ["nhwc_shape"], name="Gather__41"),
        helper.make_node("Cast", ["nhwc_shape"], ["nhwc_shape32"], name="flatten/Shape__22", to=TensorProto.INT32),
        helper.make_node("Slice", ["nhwc_shape32", "zero", "one", "zero"], ["batch"], name="flatten/strided_slice"),
        helper.make_node("Concat", ["batch", "features"], ["target32"], name="flatten/Concat", axis=0),
        helper.make_node("Cast", ["target32"], ["target"], name="flatten/Reshape__33", to=TensorProto.INT64),
        helper.make_node("Reshape", ["nhwc", "target"], ["flat"], name="flatten/Reshape"),
        helper.make_node("MatMul", ["flat", "d1.w"], ["m1"], name="dense/MatMul"),
        helper.make_node("Add", ["m1", "d1.b"], ["s1"], name="dense/BiasAdd"),
        helper.make_node("Relu", ["s1"], ["h1"], name="dense/Relu"),
        helper.make_node("MatMul", ["h1", "d2.w"], ["m2"], name="dense_1/MatMul"),
        helper.make_node("Add", ["m2", "d2.b"], ["s2"], name="dense_1/BiasAdd"),
        helper.make_node("Softmax", ["s2"], ["y"], name="dense_1/Softmax"),
    ]
    return make_model(nodes, init, ["unk__44", 28, 28, 1], input_name="input")


def test_import_tf2onnx_graph_of_a_one_channel_keras_lenet():
    proto = tf2onnx_one_channel_lenet()
    model = fconnx.load(proto)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Permute", "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "ReLU", "Dense"]
    assert model.input_shape == (28, 28, 1) and model.layers[0].dims == (3, 1, 2)
    x = images((28, 28, 1))
    expected = run_ort(proto, x)
    assert 0.5 < expected.max() < 0.999
    assert_same_predictions(expected, model.predict(x))


def test_a_transpose_that_is_not_folded_stays_a_permute_layer():
    """A Transpose that swaps H and W between two convolutions has no Dense to fold into."""
    init = {"w1": weights(4, 3, 3, 3, seed=1), "w2": weights(5, 4, 3, 2, seed=2), "d": weights(5 * 3 * 6, 6, seed=3)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="c1"),
             transpose("c1", "swapped", [0, 1, 3, 2], "swap_hw"),
             helper.make_node("Conv", ["swapped", "w2"], ["c2"], name="c2"),
             helper.make_node("Flatten", ["c2"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "d"], ["y"], name="dense")]
    proto = make_model(nodes, init, ["n", 3, 9, 7])
    model = fconnx.load(proto)
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "Permute", "Conv2D", "Flatten", "Dense"]
    assert model.layers[1].dims == (1, 3, 2) and model.layers[2].output_shape == (5, 3, 6)
    x = images((3, 9, 7))
    assert_same_predictions(losses.softmax(run_ort(proto, x)), model.predict(x))


def test_a_model_with_permute_layers_exports_and_round_trips(tmp_path):
    model = sharpen(Sequential([
        layers.Permute((3, 1, 2)), layers.Conv2D(4, 3, padding="same"), layers.ReLU(), layers.MaxPool2D(2),
        layers.Permute((1, 3, 2)), layers.Conv2D(5, (3, 2)), layers.Tanh(),
        layers.Permute((2, 3, 1)), layers.Flatten(), layers.Dense(6),
    ], input_shape=(10, 8, 3), seed=5).build())
    x = images((10, 8, 3))
    expected = model.predict(x)
    proto = fconnx.export(model, tmp_path / "permute.onnx")
    assert [list(node.attribute[0].ints) for node in proto.graph.node if node.op_type == "Transpose"] == [
        [0, 3, 1, 2], [0, 1, 3, 2], [0, 2, 3, 1]]
    assert_same_predictions(expected, run_ort(str(tmp_path / "permute.onnx"), x))
    loaded = fconnx.load(tmp_path / "permute.onnx")
    # the last Permute (to (H, W, C) before the Flatten) is folded into the Dense weight's rows
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers
                                                                 if layer is not model.layers[7]]
    assert_same_predictions(expected, loaded.predict(x))


# ---- import errors -------------------------------------------------------------------------------

def single_node(node, initializers=None, input_shape=("n", 3, 8, 8)):
    return make_model([node], initializers or {}, list(input_shape), output=node.output[0])


CONV_W = weights(4, 3, 3, 3, seed=0)
IMPORT_ERRORS = {
    "unsupported op": (single_node(helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                                    name="bn1")),
                       r"unsupported ONNX node 'BatchNormalization' \(name 'bn1'\)"),
    "grouped conv": (single_node(helper.make_node("Conv", ["x", "w"], ["y"], name="gconv", group=3),
                                 {"w": weights(3, 1, 3, 3, seed=0)}), r"'gconv' \(Conv\): group must be 1"),
    "dilated conv": (single_node(helper.make_node("Conv", ["x", "w"], ["y"], name="dil", dilations=[2, 2]),
                                 {"w": CONV_W}), r"'dil' \(Conv\): dilations must be 1"),
    "weight not constant": (make_model([helper.make_node("Conv", ["x", "x"], ["y"], name="c")], {}, ["n", 3, 8, 8]),
                            r"'c' \(Conv\): input 'x' must be a constant"),
    "asymmetric conv pads": (single_node(helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 0, 0, 0]),
                                         {"w": CONV_W}), r"'c' \(Conv\): pads \[1, 0, 0, 0\] have no fastconv"),
    "ceil mode": (single_node(helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2],
                                               ceil_mode=1)), r"'mp' \(MaxPool\): ceil_mode must be 0"),
    "avg pool counting asymmetric pads": (
        single_node(helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[2, 2], strides=[2, 2],
                                     pads=[0, 0, 1, 1], count_include_pad=1)),
        r"'ap' \(AveragePool\): pads \[0, 0, 1, 1\] have no fastconv equivalent \(symmetric, or Keras"),
    "avg pool excluding symmetric pads": (
        single_node(helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[2, 2], strides=[2, 2],
                                     pads=[1, 1, 1, 1])),
        r"'ap' \(AveragePool\): pads .* \(symmetric with count_include_pad=1"),
    "reshape to 4-D": (single_node(helper.make_node("Reshape", ["x", "s"], ["y"], name="rs"),
                                   {"s": np.array([-1, 3, 4, 16], dtype=np.int64)}),
                       r"'rs' \(Reshape\): fastconv reads a Reshape only to \(N, features\)"),
    "dense before flatten": (single_node(helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
                                         {"w": weights(8, 2, seed=0)}), r"'mm' \(MatMul\) needs a flat"),
    "add without matmul": (single_node(helper.make_node("Add", ["x", "b"], ["y"], name="plus"),
                                       {"b": weights(1, seed=0)}),
                           r"unsupported ONNX node 'Add' \(name 'plus'\): .* bias right after a MatMul"),
    "transpose moving the batch axis": (
        single_node(transpose("x", "y", [1, 0, 2, 3], "t_batch")),
        r"'t_batch' \(Transpose\): perm \[1, 0, 2, 3\] moves the batch axis; fastconv keeps it first"),
    "transpose reversing every axis (no perm)": (
        single_node(helper.make_node("Transpose", ["x"], ["y"], name="t_default")),
        r"'t_default' \(Transpose\): perm \[3, 2, 1, 0\] moves the batch axis"),
    "transpose perm of the wrong length": (
        single_node(transpose("x", "y", [0, 2, 1], "t_short")),
        r"'t_short' \(Transpose\): perm \[0, 2, 1\] must have one axis per input axis: 4 for \(N,\) \+ \(3, 8, 8\)"),
    "transpose perm repeating an axis": (
        single_node(transpose("x", "y", [0, 1, 1, 2], "t_repeat")),
        r"'t_repeat' \(Transpose\): perm \[0, 1, 1, 2\] is not a permutation"),
    "reshape moving an axis longer than 1": (
        single_node(helper.make_node("Reshape", ["x", "s"], ["y"], name="rs_long"),
                    {"s": np.array([-1, 8, 8, 3], dtype=np.int64)}),
        r"'rs_long' \(Reshape\): fastconv reads a Reshape only to \(N, features\) .* or one that only moves axes of "
        r"size 1, got target shape \[-1, 8, 8, 3\]"),
    "gemm weight size": (single_node(helper.make_node("Gemm", ["x", "w"], ["y"], name="fc"),
                                     {"w": weights(5, 2, seed=0)}, input_shape=("n", 6)),
                         r"'fc' \(Gemm\): the weight maps 5 features, the input has 6"),
}


@pytest.mark.parametrize("case", sorted(IMPORT_ERRORS))
def test_import_errors_name_the_node(case):
    proto, message = IMPORT_ERRORS[case]
    with pytest.raises(ValueError, match=message):
        fconnx.load(proto)


def test_import_rejects_what_is_not_one_chain():
    branch = make_model([helper.make_node("Relu", ["x"], ["a"], name="r1"),
                         helper.make_node("Relu", ["x"], ["b"], name="r2"),
                         helper.make_node("Sum", ["a", "b"], ["y"], name="sum")], {}, ["n", 4])
    with pytest.raises(ValueError, match=r"'r2' \(Relu\) does not read the previous node's output 'a'"):
        fconnx.load(branch)
    early = make_model([helper.make_node("Softmax", ["x"], ["s"], name="sm"),
                        helper.make_node("Relu", ["s"], ["y"], name="after")], {}, ["n", 4])
    with pytest.raises(ValueError, match=r"'after' \(Relu\) follows the Softmax node 'sm'"):
        fconnx.load(early)
    two_inputs = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {}, ["n", 4])
    two_inputs.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4]))
    with pytest.raises(ValueError, match=r"one input tensor, got \['x', 'z'\]"):
        fconnx.load(two_inputs)
    two_outputs = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {}, ["n", 4])
    two_outputs.graph.output.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, None))
    with pytest.raises(ValueError, match=r"outputs \['y', 'x'\] are not the end of its chain"):
        fconnx.load(two_outputs)


def test_import_checks_conv_weights_against_the_input_channels():
    proto = single_node(helper.make_node("Conv", ["x", "w"], ["y"], name="c"), {"w": weights(4, 2, 3, 3, seed=0)})
    with pytest.raises(ValueError, match=r"'c': weight has shape \(4, 2, 3, 3\), expected \(4, 3, 3, 3\)"):
        fconnx.load(proto)
