"""The inference path of Sequential: the layers as steps, with runs of convolution blocks fused.

A block is a Conv2D, optionally followed by a ReLU and then optionally by a MaxPool2D (all on the C
kernels, symmetric padding). Consecutive blocks become one step that runs
fastconv.functional._conv_chain: each thread carries a few images through every block while they are
in cache, in one parallel region, with the same bits as the layers one by one. Every other layer is a
step of its own (its forward_inference).
"""
from typing import Callable, NamedTuple

from . import functional as F
from . import layers as L


class Step(NamedTuple):
    """One step of the inference path: `name` (the layer's, or the fused layers' joined by "+") and
    run(x, overwrite_input) -> output, as Layer.forward_inference."""
    name: str
    run: Callable


def steps(layers):
    """The steps that Sequential's inference runs for `layers`, in order."""
    result, i = [], 0
    while i < len(layers):
        blocks = []
        while i < len(layers):
            block = _block_at(layers, i)
            if block is None:
                break
            blocks.append(block)
            i += len(block)
        if blocks:
            result.append(_chain_step(blocks))
        else:
            result.append(Step(layers[i].name, layers[i].forward_inference))
            i += 1
    return result


def _block_at(layers, i):
    """The layers of the block starting at layers[i] (Conv2D [ReLU] [MaxPool2D]), or None."""
    conv = layers[i]
    if type(conv) is not L.Conv2D or conv.kernels is not F or conv._pre_pad is not None:
        return None
    block = [conv]
    if i + 1 < len(layers) and type(layers[i + 1]) is L.ReLU and layers[i + 1].kernels is F:
        block.append(layers[i + 1])
    after = i + len(block)
    if after < len(layers) and type(layers[after]) is L.MaxPool2D and layers[after].kernels is F \
            and layers[after]._symmetric:
        block.append(layers[after])
    return block


def _chain_step(blocks):
    name = "+".join(layer.name for block in blocks for layer in block)
    return Step(name, lambda x, overwrite_input=False: F._conv_chain(x, [_conv_block(block) for block in blocks]))


def _conv_block(block):
    """The functional._ConvBlock of a block's layers, with their current weights."""
    conv, relu, pool = block[0], False, None
    for layer in block[1:]:
        if type(layer) is L.ReLU:
            relu = True
        else:
            pool = tuple(_int_if_square(pair) for pair in
                         (layer.pool_size, layer.strides, (layer._pads[0][0], layer._pads[1][0])))
    return F._ConvBlock(conv.effective_weight(), conv.params.get("bias"), conv.strides, conv._kernel_pad,
                        conv.algo, relu, pool)


def _int_if_square(pair):
    """(2, 2) as 2: the pooling's geometry check has a fast path for ints (per-batch overhead)."""
    return pair[0] if pair[0] == pair[1] else pair
