"""Ready-made models (the zoo ``fastconv train --model NAME`` draws from).

* ``lenet5``: LeNet-5 as PyTorch tutorials write it (the CLI's default); ``lenet5(classic=True)`` /
  "lenet5-classic": the 1998 original, tanh, average pooling and the partial C3 connection table;
* ``keras_cnn`` and ``dense_net``: the two models of the seed tutorials' CNN-versus-MLP comparison;
* ``keras_cnn_30_60``: the convolution-maths tutorial's Keras CNN (conv 30 and 60, dense 500);
* ``deep_cnn``: the tutorials' four-convolution PyTorch CNN; ``mlp``: a configurable multilayer perceptron.

``get(name, **kwargs)`` builds one by name.
"""
import numpy as np

from . import layers
from .model import Sequential

__all__ = ["lenet5", "lenet5_classic", "keras_cnn", "keras_cnn_30_60", "dense_net", "deep_cnn", "mlp", "c3_connections", "get",
           "available"]


def lenet5(seed=None, dtype=np.float32, algo="auto", kernel_initializer="pytorch", input_shape=(1, 28, 28),
           num_classes=10, classic=False):
    """LeNet-5 for 28x28 digits, as PyTorch tutorials write it (61,706 parameters):

    conv 6@5x5 pad 2 - relu - maxpool 2 - conv 16@5x5 - relu - maxpool 2 - flatten
    - dense 120 - relu - dense 84 - relu - dense num_classes (logits).
    kernel_initializer "pytorch" (default) draws as torch.nn's default init; "he_uniform" etc. also work.
    classic=True builds the 1998 original instead (see lenet5_classic).
    """
    if classic:
        return lenet5_classic(seed=seed, dtype=dtype, algo=algo, kernel_initializer=kernel_initializer,
                              input_shape=input_shape, num_classes=num_classes)
    init = {"kernel_initializer": kernel_initializer}
    return Sequential([
        layers.Conv2D(6, 5, padding=2, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(16, 5, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(120, **init),
        layers.ReLU(),
        layers.Dense(84, **init),
        layers.ReLU(),
        layers.Dense(num_classes, **init),
    ], input_shape=input_shape, seed=seed, dtype=dtype, name="lenet5").build()


def c3_connections():
    """LeNet-5's C3 connection table (LeCun et al. 1998, Table I) as a bool array (16 C3 maps, 6 S2 maps).

    Maps 0-5 see 3 contiguous S2 maps, 6-11 see 4 contiguous ones, 12-14 see 4 non-contiguous ones and
    map 15 sees all 6: 60 connections. The paper's reason: break the symmetry between the maps, so each
    learns a different feature, and keep the number of connections down.
    """
    seen = ([[(k + i) % 6 for i in range(3)] for k in range(6)]
            + [[(k + i) % 6 for i in range(4)] for k in range(6)]
            + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]
            + [list(range(6))])
    table = np.zeros((16, 6), dtype=bool)
    for k, maps in enumerate(seen):
        table[k, maps] = True
    return table


def lenet5_classic(seed=None, dtype=np.float32, algo="auto", kernel_initializer="pytorch",
                   input_shape=(1, 28, 28), num_classes=10):
    """LeNet-5 as published (LeCun, Bottou, Bengio, Haffner 1998), 60,806 parameters:

    C1 conv 6@5x5 on the 32x32 input (28x28 padded by 2; 156 parameters) - tanh - S2 avgpool 2
    - C3 conv 16@5x5 with the partial connection table c3_connections() (60 * 25 + 16 = 1,516 parameters)
    - tanh - S4 avgpool 2 - C5 conv 120@5x5 (48,120) - tanh - flatten - F6 dense 84 (10,164) - tanh
    - dense num_classes (850, logits).
    Simplifications of the paper: the subsampling layers have no trainable coefficient and bias, tanh is
    not scaled (1.7159 tanh(2a/3)), and the output is a dense layer with softmax instead of RBF units.
    """
    init = {"kernel_initializer": kernel_initializer}
    return Sequential([
        layers.Conv2D(6, 5, padding=2, algo=algo, name="c1", **init),
        layers.Tanh(),
        layers.AvgPool2D(2, name="s2"),
        layers.Conv2D(16, 5, algo=algo, connections=c3_connections(), name="c3", **init),
        layers.Tanh(),
        layers.AvgPool2D(2, name="s4"),
        layers.Conv2D(120, 5, algo=algo, name="c5", **init),
        layers.Tanh(),
        layers.Flatten(),
        layers.Dense(84, name="f6", **init),
        layers.Tanh(),
        layers.Dense(num_classes, name="output", **init),
    ], input_shape=input_shape, seed=seed, dtype=dtype, name="lenet5_classic").build()


def keras_cnn(seed=None, dtype=np.float32, algo="auto", kernel_initializer="pytorch", input_shape=(1, 28, 28),
              num_classes=10):
    """The seed tutorials' Keras CNN, 137,660 parameters:

    conv 25@3x3 (250) - relu - maxpool 2 - conv 50@3x3 (11,300) - relu - maxpool 2 - flatten (50*5*5)
    - dense 100 (125,100) - relu - dense num_classes (1,010).
    """
    init = {"kernel_initializer": kernel_initializer}
    return Sequential([
        layers.Conv2D(25, 3, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(50, 3, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(100, **init),
        layers.ReLU(),
        layers.Dense(num_classes, **init),
    ], input_shape=input_shape, seed=seed, dtype=dtype, name="keras_cnn").build()


def dense_net(seed=None, dtype=np.float32, kernel_initializer="pytorch", input_shape=(1, 28, 28), num_classes=10):
    """The seed tutorials' dense network 784-500-500-500-10 with relu, 898,510 parameters
    (392,500 + 250,500 + 250,500 + 5,010): the CNN's baseline in `fastconv compare`."""
    return mlp(hidden=(500, 500, 500), seed=seed, dtype=dtype, kernel_initializer=kernel_initializer,
               input_shape=input_shape, num_classes=num_classes, name="dense_net")


def deep_cnn(seed=None, dtype=np.float32, algo="auto", kernel_initializer="pytorch", input_shape=(1, 28, 28),
             num_classes=10):
    """The tutorials' four-convolution PyTorch CNN, 2,327,818 parameters (90% in the first dense layer):

    conv 16@3x3 (160) - relu - conv 32@3x3 (4,640) - relu - maxpool 2 - conv 64@3x3 (18,496) - relu
    - conv 128@3x3 (73,856) - relu - maxpool 2 - flatten (128*4*4 = 2,048) - dense 1024 (2,098,176) - relu
    - dense 128 (131,200) - relu - dense num_classes (1,290).
    Every conv is "valid": 28 -> 26 -> 24 -> pool 12 -> 10 -> 8 -> pool 4.
    The tutorial's recipe: `fastconv train --model deep_cnn --lr 0.1 --momentum 0 --batch-size 64 --epochs 20`.
    """
    init = {"kernel_initializer": kernel_initializer}
    stack = []
    for filters, pool in ((16, False), (32, True), (64, False), (128, True)):
        stack += [layers.Conv2D(filters, 3, algo=algo, **init), layers.ReLU()]
        if pool:
            stack.append(layers.MaxPool2D(2))
    stack.append(layers.Flatten())
    for units in (1024, 128):
        stack += [layers.Dense(units, **init), layers.ReLU()]
    stack.append(layers.Dense(num_classes, **init))
    return Sequential(stack, input_shape=input_shape, seed=seed, dtype=dtype, name="deep_cnn").build()


def keras_cnn_30_60(seed=None, dtype=np.float32, algo="auto", kernel_initializer="pytorch",
                    input_shape=(1, 28, 28), num_classes=10):
    """The Keras CNN of the convolution-maths tutorial, 1,492,070 parameters:

    conv 30@3x3 valid (300) - relu - maxpool 2x2 stride 2 "same" (26 -> 13) - conv 60@3x3 "same" (16,260)
    - relu - maxpool 2x2 stride 2 "same" (13 -> 7) - flatten (7*7*60 = 2,940) - dense 500 (1,470,500) - relu
    - dense num_classes (5,010; the softmax is in the loss).
    Recipe: `fastconv train --model keras_cnn_30_60 --optimizer rmsprop --lr 1e-3 --batch-size 128 --epochs 10`.
    """
    init = {"kernel_initializer": kernel_initializer}
    return Sequential([
        layers.Conv2D(30, 3, algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2, strides=2, padding="same"),
        layers.Conv2D(60, 3, padding="same", algo=algo, **init),
        layers.ReLU(),
        layers.MaxPool2D(2, strides=2, padding="same"),
        layers.Flatten(),
        layers.Dense(500, **init),
        layers.ReLU(),
        layers.Dense(num_classes, **init),
    ], input_shape=input_shape, seed=seed, dtype=dtype, name="keras_cnn_30_60").build()


def mlp(hidden=(256, 128), seed=None, dtype=np.float32, kernel_initializer="pytorch", input_shape=(1, 28, 28),
        num_classes=10, name="mlp"):
    """A dense network: flatten - (dense h - relu) for h in hidden - dense num_classes (logits)."""
    stack = [layers.Flatten()]
    for units in hidden:
        stack += [layers.Dense(units, kernel_initializer=kernel_initializer), layers.ReLU()]
    stack.append(layers.Dense(num_classes, kernel_initializer=kernel_initializer))
    return Sequential(stack, input_shape=input_shape, seed=seed, dtype=dtype, name=name).build()


_MODELS = {"lenet5": lenet5, "lenet5-classic": lenet5_classic, "lenet5_classic": lenet5_classic,
           "keras_cnn": keras_cnn, "keras-cnn": keras_cnn, "dense_net": dense_net, "dense-net": dense_net,
           "deep_cnn": deep_cnn, "deep-cnn": deep_cnn, "keras_cnn_30_60": keras_cnn_30_60,
           "keras-cnn-30-60": keras_cnn_30_60, "mlp": mlp}


def available():
    """Names get() accepts."""
    return sorted(_MODELS)


def get(name, **kwargs):
    """A model from its name (ValueError for an unknown one)."""
    try:
        factory = _MODELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None
    return factory(**kwargs)
