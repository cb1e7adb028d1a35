"""ONNX export and import of fastconv.Sequential models (extra ``fastconv[onnx]``: the ``onnx`` package).

``export(model, path)`` writes the model as an ONNX graph of opset 17 (ONNX 1.12's, run by every ONNX
Runtime since 1.13) in IR version 8, float32, in the model's layout (NCHW unless its first layer is a
Permute): one input ``input`` of shape (N,) + the model's input shape, with a free batch dimension
``N``, and one output ``probabilities`` (N, classes), the softmax of the last layer's logits, which is
what ``model.predict`` returns.

Layer by layer: Conv2D -> Conv (a ``connections=`` table is folded into the weight as zeros, asymmetric
"same" padding becomes explicit pads), MaxPool2D -> MaxPool, AvgPool2D -> AveragePool
(``count_include_pad=1`` for int padding, 0 for "same", as the layer divides), Dense -> Gemm,
ReLU/LeakyReLU/Sigmoid/Tanh -> Relu/LeakyRelu/Sigmoid/Tanh, Flatten -> Flatten, Permute -> Transpose
(perm [0, *dims]), Dropout -> nothing (the identity at inference). Any other layer raises ValueError
naming it.

``load(path)`` reads a chain of Conv, MaxPool, AveragePool, Gemm, MatMul (+ Add as its bias), Relu,
LeakyRelu, Sigmoid, Tanh, Flatten, Reshape (to (N, features), or moving axes of size 1 only, which is
a Transpose), Transpose (the batch axis kept first), Dropout, Identity and a trailing Softmax or LogSoftmax (dropped: predict applies the softmax, which
gives the same probabilities), as ``torch.onnx.export`` and the Keras exporters (tf2onnx, keras2onnx)
write a LeNet-style model, into a float32 Sequential. A Transpose becomes a Permute layer, so a
channels-last graph's model takes the graph's NHWC input; Transposes that only elementwise ops
separate are merged (a pair that undoes itself disappears), and a Transpose before the Flatten of a
Dense is folded into the Dense weight's rows. The first node it cannot express raises ValueError
naming its op type and node name.
"""
import math
import os
import tempfile

import numpy as np

from . import layers
from .model import Sequential

__all__ = ["export", "load", "OPSET", "IR_VERSION"]

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


def _onnx():
    """The onnx package, imported on first use (importing fastconv never needs it)."""
    try:
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401  (the submodules used below)
    except ImportError:
        raise ImportError("fastconv.onnx needs the onnx package: pip install 'fastconv[onnx]'") from None
    return onnx


# ---- export --------------------------------------------------------------------------------------

def export(model, path):
    """Write `model` (a fastconv.Sequential) to `path` as an ONNX model; returns the onnx.ModelProto.

    Opset 17, IR version 8, float32 weights (a float64 model is cast), input "input" (N,) + the model's
    input shape (e.g. (N, C, H, W)), output "probabilities" (N, classes) = softmax of the logits, equal
    to model.predict."""
    onnx = _onnx()
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastconv.Sequential, got {type(model).__name__}")
    if model.loss.name != "softmax_cross_entropy":
        raise ValueError(f"export writes a softmax output; the model's loss {model.loss.name!r} has another")
    if not model.built:
        model.build()
    graph = _Graph(onnx.helper)
    tensor = INPUT_NAME
    for layer in model.layers:
        tensor = graph.add_layer(layer, tensor)
    graph.nodes.append(onnx.helper.make_node("Softmax", [tensor], [OUTPUT_NAME], name="softmax", axis=-1))
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, model.name,
            [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, ["N", *model.input_shape])],
            [onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT,
                                                ["N", *model.output_shape])],
            graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="fastconv", producer_version=_version())
    onnx.checker.check_model(proto)
    _write_atomically(path, proto.SerializeToString())
    return proto


def _version():
    from . import __version__

    return __version__


def _write_atomically(path, data):
    """Write bytes to a temporary file beside `path`, then rename it (no half-written file on a crash)."""
    path = os.fspath(path)
    handle = tempfile.NamedTemporaryFile(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
        os.replace(handle.name, path)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)


class _Graph:
    """The nodes and initializers of the graph being exported, one layer at a time."""

    def __init__(self, helper):
        self.helper = helper
        self.nodes = []
        self.initializers = []

    def constant(self, name, array):
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op_type, inputs, layer, **attributes):
        self.nodes.append(self.helper.make_node(op_type, inputs, [layer.name], name=layer.name, **attributes))
        return layer.name

    def add_layer(self, layer, tensor):
        """Append `layer`'s nodes reading `tensor`; returns the name of its output tensor."""
        exporter = _EXPORTERS.get(type(layer))
        if exporter is None:
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX equivalent in "
                             f"fastconv.onnx.export; supported: {sorted(cls.__name__ for cls in _EXPORTERS)}")
        return exporter(self, layer, tensor)


def _onnx_pads(pads):
    """fastconv's ((top, bottom), (left, right)) as ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


def _export_conv(graph, layer, tensor):
    inputs = [tensor, graph.constant(f"{layer.name}.weight", layer.effective_weight())]
    if layer.use_bias:
        inputs.append(graph.constant(f"{layer.name}.bias", layer.params["bias"]))
    return graph.node("Conv", inputs, layer, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
                      pads=_onnx_pads(layer._pads))


def _export_max_pool(graph, layer, tensor):
    return graph.node("MaxPool", [tensor], layer, kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                      pads=_onnx_pads(layer._pads))


def _export_avg_pool(graph, layer, tensor):
    # int padding counts the zeros in the divisor; "same" divides by the real cells of each window
    count_include_pad = 0 if layer.padding == "same" else 1
    return graph.node("AveragePool", [tensor], layer, kernel_shape=list(layer.pool_size),
                      strides=list(layer.strides), pads=_onnx_pads(layer._pads), count_include_pad=count_include_pad)


def _export_dense(graph, layer, tensor):
    inputs = [tensor, graph.constant(f"{layer.name}.weight", layer.params["weight"])]
    if layer.use_bias:
        inputs.append(graph.constant(f"{layer.name}.bias", layer.params["bias"]))
    return graph.node("Gemm", inputs, layer)


def _export_elementwise(op_type):
    return lambda graph, layer, tensor: graph.node(op_type, [tensor], layer)


def _export_leaky_relu(graph, layer, tensor):
    return graph.node("LeakyRelu", [tensor], layer, alpha=layer.negative_slope)


def _export_flatten(graph, layer, tensor):
    return graph.node("Flatten", [tensor], layer, axis=1)


def _export_permute(graph, layer, tensor):
    return graph.node("Transpose", [tensor], layer, perm=[0, *layer.dims])


def _export_identity(graph, layer, tensor):
    return tensor


_EXPORTERS = {
    layers.Conv2D: _export_conv,
    layers.MaxPool2D: _export_max_pool,
    layers.AvgPool2D: _export_avg_pool,
    layers.Dense: _export_dense,
    layers.ReLU: _export_elementwise("Relu"),
    layers.Sigmoid: _export_elementwise("Sigmoid"),
    layers.Tanh: _export_elementwise("Tanh"),
    layers.LeakyReLU: _export_leaky_relu,
    layers.Flatten: _export_flatten,
    layers.Permute: _export_permute,
    layers.Dropout: _export_identity,
}


# ---- import --------------------------------------------------------------------------------------

def load(path, input_shape=None):
    """A float32 fastconv.Sequential from an ONNX model (a path or an onnx.ModelProto).

    input_shape: the per-sample shape the graph takes, (C, H, W), (H, W, C) for a channels-last graph
    or (features,), needed only when the graph's input leaves it unknown. The graph must be a chain
    (one input, one output, each node reading the previous one's output plus constants); see the
    module docstring for the operators it reads."""
    onnx = _onnx()
    proto = path if isinstance(path, onnx.ModelProto) else onnx.load(os.fspath(path))
    return _Importer(proto.graph, input_shape).run()


class _Importer:
    """Walks a chain-shaped graph node by node, turning each into layers."""

    # ops that pass the tensor through at inference
    _PASS_THROUGH = ("Identity", "Dropout")

    def __init__(self, graph, input_shape):
        from onnx import numpy_helper

        self.graph = graph
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self.input_name, self.input_shape, fixed_batch = self._graph_input(input_shape)
        # a graph exported for one batch size writes that size where it means "the batch"
        self.batch_sizes = (_BATCH,) if fixed_batch is None else (_BATCH, fixed_batch)
        self.shape = self.input_shape  # per-sample shape of the current tensor
        self.tensor = self.input_name
        self.chain_shapes = {self.input_name: self.input_shape}  # per-sample shape of each tensor of the chain
        self.layers = []
        self.layer_inputs = []  # the per-sample input shape of each layer in self.layers
        self.weights = []  # (layer, param name, array), set once the model is built
        self.softmax_node = None

    def _graph_input(self, input_shape):
        from onnx import TensorProto

        inputs = [value for value in self.graph.input if value.name not in self.constants]
        if len(inputs) != 1:
            raise ValueError(f"the graph must have one input tensor, got {[v.name for v in inputs]}")
        value = inputs[0]
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type not in (TensorProto.FLOAT, TensorProto.DOUBLE):
            raise ValueError(f"the graph input {value.name!r} must be float, got "
                             f"{TensorProto.DataType.Name(tensor_type.elem_type)}")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if input_shape is not None:
            return value.name, tuple(int(v) for v in input_shape), dims[0] if dims else None
        if len(dims) not in (2, 4) or None in dims[1:]:
            raise ValueError(f"the graph input {value.name!r} has shape {dims}: expected (N, C, H, W), (N, H, W, C) "
                             f"or (N, features) with known sizes; pass load(path, input_shape=...)")
        return value.name, tuple(dims[1:]), dims[0]

    def run(self):
        for node in self.graph.node:
            self._import_node(node)
        outputs = [value.name for value in self.graph.output]
        if outputs != [self.tensor]:
            raise ValueError(f"the graph's outputs {outputs} are not the end of its chain of nodes ({self.tensor!r})")
        if not self.layers:
            raise ValueError("the graph has no layer fastconv can import")
        model = Sequential(self.layers, input_shape=self.input_shape, dtype=np.float32,
                           name=self.graph.name or "onnx_model").build()
        for layer, key, array in self.weights:
            expected = layer.params[key].shape
            if array.shape != expected:
                raise ValueError(f"node {layer.name!r}: {key} has shape {array.shape}, expected {expected}")
            layer.params[key] = np.ascontiguousarray(array, dtype=np.float32)
        return model

    def _import_node(self, node):
        if node.op_type == "Constant":
            self.constants[node.output[0]] = _constant_value(node)
            return
        if self._shape_arithmetic(node):
            return
        if self.softmax_node is not None and node.op_type not in self._PASS_THROUGH:
            raise ValueError(f"node {node.name!r} ({node.op_type}) follows the {self.softmax_node.op_type} "
                             f"node {self.softmax_node.name!r}: fastconv reads a softmax only as the last node")
        handler = getattr(self, f"_op_{node.op_type}", None)
        if node.domain not in ("", "ai.onnx") or handler is None:
            raise ValueError(f"unsupported ONNX node {node.op_type!r} (name {node.name!r}); fastconv.onnx.load "
                             f"reads {', '.join(sorted(_SUPPORTED_OPS))}")
        if not node.input or node.input[0] != self.tensor:
            raise ValueError(f"node {node.name!r} ({node.op_type}) does not read the previous node's output "
                             f"{self.tensor!r}: fastconv imports a chain of layers only")
        handler(node)
        self.tensor = node.output[0]
        self.chain_shapes[self.tensor] = self.shape

    def _shape_arithmetic(self, node):
        """Evaluate a node of the Shape -> Gather -> Unsqueeze -> Concat chain that torch.onnx.export
        writes for x.view(x.size(0), -1); the batch size is the marker _BATCH. False if not one."""
        if node.domain not in ("", "ai.onnx") or node.op_type not in _SHAPE_OPS:
            return False
        if node.op_type == "Shape":  # tf2onnx reads the shape of the tensor before its Transpose
            if node.input[0] not in self.chain_shapes:
                return False
            attrs = _attributes(node)
            shape = (_BATCH,) + self.chain_shapes[node.input[0]]
            value = np.array(shape, dtype=np.int64)[attrs.get("start", 0):attrs.get("end")]
        else:
            if not all(name in self.constants for name in node.input if name):
                return False
            value = _SHAPE_OPS[node.op_type](node, [self.constants[name] for name in node.input if name])
        self.constants[node.output[0]] = value
        return True

    # -- helpers --
    def _add(self, layer, node, **weights):
        layer.name = _unique(node.name or f"{node.op_type.lower()}_{len(self.layers)}",
                             {existing.name for existing in self.layers})
        input_shape = self.shape
        try:
            self.shape = tuple(layer.compute_output_shape(self.shape))
        except ValueError as exc:
            raise ValueError(f"node {node.name!r} ({node.op_type}): {exc}") from None
        self.layer_inputs.append(input_shape)
        self.layers.append(layer)
        for key, array in weights.items():
            if array is not None:
                self.weights.append((layer, key, array))
        return layer

    def _constant(self, node, index):
        """The constant array at input `index` of `node`, or None when the input is absent."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise ValueError(f"node {node.name!r} ({node.op_type}): input {name!r} must be a constant "
                             f"(an initializer or a Constant node)")
        return self.constants[name]

    def _spatial(self, node):
        if len(self.shape) != 3:
            raise ValueError(f"node {node.name!r} ({node.op_type}) needs an (N, C, H, W) input, "
                             f"got (N,) + {self.shape}")
        return self.shape[1:]

    # -- operators --
    def _op_Conv(self, node):
        attrs = _attributes(node)
        weight, bias = self._constant(node, 1), self._constant(node, 2)
        if weight is None or weight.ndim != 4:
            raise ValueError(f"node {node.name!r} (Conv): the weight must be a constant (K, C, kh, kw) tensor")
        _require(node, attrs.get("group", 1) == 1, "group must be 1 (grouped convolutions are not supported)")
        _require(node, all(d == 1 for d in attrs.get("dilations", [1, 1])), "dilations must be 1")
        kernel = tuple(attrs.get("kernel_shape", weight.shape[2:]))
        strides = tuple(attrs.get("strides", (1, 1)))
        pads = _explicit_pads(node, attrs, self._spatial(node), kernel, strides)
        padding = _padding_spec(node, pads, self._spatial(node), kernel, strides, symmetric_ok=True)
        layer = layers.Conv2D(int(weight.shape[0]), kernel, strides=strides, padding=padding,
                              use_bias=bias is not None)
        self._add(layer, node, weight=weight, bias=bias)

    def _op_MaxPool(self, node):
        attrs = _attributes(node)
        _require(node, len(node.output) == 1 or not node.output[1], "the Indices output is not supported")
        _require(node, attrs.get("storage_order", 0) == 0, "storage_order must be 0")
        self._pool(node, attrs, layers.MaxPool2D, symmetric_ok=True)

    def _op_AveragePool(self, node):
        attrs = _attributes(node)
        # int padding in fastconv counts the zeros in the divisor; "same" does not (count_include_pad=0)
        self._pool(node, attrs, layers.AvgPool2D, symmetric_ok=bool(attrs.get("count_include_pad", 0)))

    def _pool(self, node, attrs, cls, symmetric_ok):
        _require(node, attrs.get("ceil_mode", 0) == 0, "ceil_mode must be 0")
        _require(node, all(d == 1 for d in attrs.get("dilations", [1, 1])), "dilations must be 1")
        kernel = tuple(attrs["kernel_shape"])
        strides = tuple(attrs.get("strides", (1, 1)))
        pads = _explicit_pads(node, attrs, self._spatial(node), kernel, strides)
        padding = _padding_spec(node, pads, self._spatial(node), kernel, strides, symmetric_ok,
                                max_symmetric=(kernel[0] // 2, kernel[1] // 2))
        self._add(cls(kernel, strides=strides, padding=padding), node)

    def _op_Gemm(self, node):
        attrs = _attributes(node)
        _require(node, attrs.get("transA", 0) == 0, "transA must be 0")
        weight, bias = self._constant(node, 1), self._constant(node, 2)
        if weight is None or weight.ndim != 2:
            raise ValueError(f"node {node.name!r} (Gemm): B must be a constant 2-D tensor")
        weight = (weight.T if attrs.get("transB", 0) else weight) * attrs.get("alpha", 1.0)
        if bias is not None:
            bias = self._bias(node, bias, weight.shape[1]) * attrs.get("beta", 1.0)
        self._dense(node, weight, bias)

    def _op_MatMul(self, node):
        weight = self._constant(node, 1)
        if weight is None or weight.ndim != 2:
            raise ValueError(f"node {node.name!r} (MatMul): the second input must be a constant 2-D tensor")
        self._dense(node, weight, None)

    def _op_Add(self, node):
        last = self.layers[-1] if self.layers else None
        bias = self._constant(node, 1)
        if not isinstance(last, layers.Dense) or last.use_bias or bias is None:
            raise ValueError(f"unsupported ONNX node 'Add' (name {node.name!r}): fastconv reads an Add only as "
                             f"the constant bias right after a MatMul")
        last.use_bias = True
        self.weights.append((last, "bias", self._bias(node, bias, last.units)))

    def _dense(self, node, weight, bias):
        if len(self.shape) != 1:
            raise ValueError(f"node {node.name!r} ({node.op_type}) needs a flat (N, features) input, "
                             f"got (N,) + {self.shape}: flatten before it")
        if weight.shape[0] != self.shape[0]:
            raise ValueError(f"node {node.name!r} ({node.op_type}): the weight maps {weight.shape[0]} features, "
                             f"the input has {self.shape[0]}")
        if self.layers and isinstance(self.layers[-1], layers.Flatten):
            weight = self._fold_permute_into(weight)
        layer = layers.Dense(int(weight.shape[1]), use_bias=bias is not None)
        self._add(layer, node, weight=weight, bias=bias)

    def _fold_permute_into(self, weight):
        """A Permute before the Flatten only reorders the Dense weight's rows: drop it and reorder them (a
        Keras model's Transpose to (H, W, C) before its Dense layers then costs no transpose at all)."""
        flatten = len(self.layers) - 1
        index = self._permute_before(flatten)
        if index is None:
            return weight
        permute_input = self.layer_inputs[index]
        # row j of weight multiplies the input value whose flat index is source[j]
        axes = [axis - 1 for axis in self.layers[index].dims]
        source = np.arange(math.prod(permute_input)).reshape(permute_input).transpose(axes).ravel()
        folded = np.empty_like(weight)
        folded[source] = weight
        for later in range(index + 1, flatten + 1):
            self.layer_inputs[later] = permute_input
        del self.layers[index], self.layer_inputs[index]
        return folded

    def _bias(self, node, bias, units):
        try:
            return np.broadcast_to(bias, (1, units)).reshape(units)
        except ValueError:
            raise ValueError(f"node {node.name!r} ({node.op_type}): a bias of shape {bias.shape} does not fit "
                             f"{units} units") from None

    def _op_Relu(self, node):
        self._add(layers.ReLU(), node)

    def _op_Sigmoid(self, node):
        self._add(layers.Sigmoid(), node)

    def _op_Tanh(self, node):
        self._add(layers.Tanh(), node)

    def _op_LeakyRelu(self, node):
        self._add(layers.LeakyReLU(_attributes(node).get("alpha", 0.01)), node)

    def _op_Flatten(self, node):
        axis = _attributes(node).get("axis", 1)
        _require(node, axis in (1, -len(self.shape)), f"axis must be 1 (keep the batch axis), got {axis}")
        if len(self.shape) != 1:
            self._add(layers.Flatten(), node)

    def _op_Reshape(self, node):
        target = self._constant(node, 1)
        features = math.prod(self.shape)
        moves_ones = None if target is None or target.ndim != 1 else self._moved_unit_axes(target)
        if moves_ones is not None:
            self._permute(node, moves_ones)
            return
        if target is None or target.ndim != 1 or len(target) != 2 or not _flattens(target, features, self.batch_sizes):
            shown = None if target is None else ["N" if v == _BATCH else int(v) for v in target.ravel()]
            raise ValueError(f"node {node.name!r} (Reshape): fastconv reads a Reshape only to (N, features) "
                             f"= (-1, 0 or N, {features}) or (0 or N, -1), or one that only moves axes of size 1, "
                             f"got target shape {shown}")
        if len(self.shape) != 1:
            self._add(layers.Flatten(), node)

    def _moved_unit_axes(self, target):
        """The Permute dims of a Reshape to `target` that keeps the batch and the order of the axes longer than 1
        and only moves axes of size 1 (tf2onnx's Transpose of a 1-channel NHWC input), else None."""
        first, sizes = int(target[0]), [int(v) for v in target[1:]]
        if first not in (-1, 0, *self.batch_sizes) or len(sizes) != len(self.shape) or len(sizes) < 2:
            return None
        sizes = [self.shape[axis] if size == 0 else size for axis, size in enumerate(sizes)]
        if sizes.count(-1) == 1 and first != -1:
            known = math.prod(size for size in sizes if size != -1)
            sizes[sizes.index(-1)] = math.prod(self.shape) // max(known, 1)
        if sorted(sizes) != sorted(self.shape):
            return None
        unit_axes = [axis for axis, size in enumerate(self.shape) if size == 1]
        long_axes = [axis for axis, size in enumerate(self.shape) if size != 1]
        dims = [unit_axes.pop(0) if size == 1 else long_axes.pop(0) for size in sizes]
        if [self.shape[axis] for axis in dims] != sizes:
            return None
        return tuple(axis + 1 for axis in dims)

    def _op_Transpose(self, node):
        perm = [int(axis) for axis in _attributes(node).get("perm", range(len(self.shape), -1, -1))]
        _require(node, len(perm) == len(self.shape) + 1,
                 f"perm {perm} must have one axis per input axis: {len(self.shape) + 1} for (N,) + {self.shape}")
        _require(node, sorted(perm) == list(range(len(perm))), f"perm {perm} is not a permutation")
        _require(node, perm[0] == 0, f"perm {perm} moves the batch axis; fastconv keeps it first (perm[0] = 0)")
        self._permute(node, tuple(perm[1:]))

    def _permute(self, node, dims):
        """Add Permute(dims), merged with a Permute that only elementwise layers separate from it
        (tf2onnx wraps single ops in Transpose pairs, which then cancel)."""
        if dims == tuple(range(1, len(dims) + 1)):
            return
        index = self._permute_before(len(self.layers))
        if index is not None:
            earlier = self.layers[index].dims
            dims = tuple(earlier[axis - 1] for axis in dims)
            self.shape = self.layer_inputs[index]
            for later in range(index + 1, len(self.layers)):  # elementwise: they now see the unpermuted tensor
                self.layer_inputs[later] = self.shape
            del self.layers[index], self.layer_inputs[index]
        if dims != tuple(range(1, len(dims) + 1)):
            self._add(layers.Permute(dims), node)

    def _permute_before(self, end):
        """The index of a Permute layer reached from layers[end - 1] backwards over elementwise layers only,
        or None."""
        for index in range(end - 1, -1, -1):
            if isinstance(self.layers[index], layers.Permute):
                return index
            if not isinstance(self.layers[index], _ELEMENTWISE):
                return None
        return None

    def _op_Softmax(self, node):
        axis = _attributes(node).get("axis", -1)
        _require(node, len(self.shape) == 1 and axis in (1, -1), "a softmax must be over the classes of (N, classes)")
        self.softmax_node = node

    _op_LogSoftmax = _op_Softmax  # predict's softmax of log-probabilities gives the same probabilities

    def _op_Identity(self, node):
        pass

    def _op_Dropout(self, node):
        _require(node, len(node.output) == 1 or not node.output[1], "the mask output is not supported")


def _require(node, condition, message):
    if not condition:
        raise ValueError(f"node {node.name!r} ({node.op_type}): {message}")


def _attributes(node):
    from onnx import helper

    return {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}


def _constant_value(node):
    from onnx import helper, numpy_helper

    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        if attr.name == "value":
            return numpy_helper.to_array(value)
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return np.asarray(value)
    raise ValueError(f"node {node.name!r} (Constant): fastconv reads only tensor, float(s) and int(s) constants")


def _unique(name, taken):
    candidate, suffix = name, 1
    while candidate in taken:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


def _explicit_pads(node, attrs, in_hw, kernel, strides):
    """[top, left, bottom, right] from the pads or auto_pad attribute."""
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad == "NOTSET":
        pads = list(attrs.get("pads", (0, 0, 0, 0)))
        _require(node, len(pads) == 4 and min(pads) >= 0, f"pads must be 4 ints >= 0, got {pads}")
        return pads
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    _require(node, auto_pad in ("SAME_UPPER", "SAME_LOWER"), f"unknown auto_pad {auto_pad!r}")
    before, after = [], []
    for size, k, s in zip(in_hw, kernel, strides):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        small, large = total // 2, total - total // 2
        before.append(small if auto_pad == "SAME_UPPER" else large)
        after.append(large if auto_pad == "SAME_UPPER" else small)
    return before + after


def _padding_spec(node, pads, in_hw, kernel, strides, symmetric_ok, max_symmetric=None):
    """The fastconv padding argument ((h, w) ints or "same") that gives the ONNX pads [t, l, b, r]."""
    top, left, bottom, right = pads
    symmetric = top == bottom and left == right
    if symmetric and (top, left) == (0, 0):
        return (0, 0)
    fits = max_symmetric is None or (top <= max_symmetric[0] and left <= max_symmetric[1])
    if symmetric and symmetric_ok and fits:
        return (top, left)
    same = layers._resolve_padding("same", in_hw, kernel, strides)
    if ((top, bottom), (left, right)) == same:
        return "same"
    raise ValueError(f"node {node.name!r} ({node.op_type}): pads {list(pads)} have no fastconv equivalent "
                     f"(symmetric{'' if symmetric_ok else ' with count_include_pad=1'}, or Keras 'same' "
                     f"{_onnx_pads(same)} for this input)")


def _flattens(target, features, batch_sizes):
    """True when a Reshape to `target` keeps the batch axis and flattens the rest."""
    first, second = int(target[0]), int(target[1])
    return (first in (-1, 0, *batch_sizes) and second == features) or (first in (0, *batch_sizes) and second == -1)


# The batch size inside evaluated shape arithmetic (far outside any real size or ONNX's -1 / 0 codes).
_BATCH = -(2 ** 62)


def _gather(node, inputs):
    return np.take(inputs[0], inputs[1], axis=_attributes(node).get("axis", 0))


def _unsqueeze(node, inputs):
    axes = inputs[1] if len(inputs) > 1 else _attributes(node)["axes"]  # an input from opset 13 on
    return np.expand_dims(inputs[0], tuple(int(a) for a in np.atleast_1d(axes)))


def _concat(node, inputs):
    return np.concatenate([np.atleast_1d(value) for value in inputs], axis=_attributes(node).get("axis", 0))


_ELEMENTWISE = (layers.ReLU, layers.LeakyReLU, layers.Sigmoid, layers.Tanh)

def _cast(node, inputs):
    from onnx import helper

    dtype = helper.tensor_dtype_to_np_dtype(_attributes(node)["to"])
    # integers stay int64: they are shapes here, and the batch marker does not fit an int32
    return inputs[0].astype(np.int64 if dtype.kind in "iu" else dtype)


def _slice(node, inputs):
    data, starts, ends = inputs[:3]
    axes = inputs[3] if len(inputs) > 3 else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return data[tuple(index)]


_SHAPE_OPS = {"Shape": None, "Gather": _gather, "Unsqueeze": _unsqueeze, "Concat": _concat, "Cast": _cast,
              "Slice": _slice}
_SUPPORTED_OPS = {name[4:] for name in dir(_Importer) if name.startswith("_op_")} | {"Constant"} | set(_SHAPE_OPS)
