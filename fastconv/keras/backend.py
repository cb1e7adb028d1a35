"""keras.backend, the parts a Sequential program uses: the image data format, floatx, epsilon, seeding."""
import numpy as np

from ._compat import unsupported

__all__ = ["image_data_format", "set_image_data_format", "floatx", "set_floatx", "epsilon", "clear_session",
           "next_model_seed"]

_DATA_FORMATS = ("channels_last", "channels_first")
_state = {"data_format": "channels_last", "floatx": "float32", "seeds": None}


def image_data_format():
    """The data format layers use when given data_format=None ("channels_last" unless set)."""
    return _state["data_format"]


def set_image_data_format(data_format):
    _state["data_format"] = check_data_format(data_format)


def check_data_format(data_format):
    """'channels_last' or 'channels_first' (None: the backend's default); ValueError otherwise."""
    if data_format is None:
        return image_data_format()
    if not isinstance(data_format, str) or data_format.lower() not in _DATA_FORMATS:
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return data_format.lower()


def floatx():
    """The float type of new models' weights: 'float32' (default) or 'float64'."""
    return _state["floatx"]


def set_floatx(value):
    if str(value) not in ("float32", "float64"):
        raise unsupported(f"floatx {value!r}", "it computes in 'float32' or 'float64'")
    _state["floatx"] = str(value)


def epsilon():
    """The fuzz factor Keras's probability losses clip with."""
    return 1e-7


def clear_session():
    """Nothing to free: fastconv keeps no graph; kept so Keras programs that call it run."""


def set_seed(seed):
    """Seed the weights of models created from now on (utils.set_random_seed calls this)."""
    _state["seeds"] = np.random.default_rng(seed)


def next_model_seed():
    """A seed for a new model: drawn from set_seed's generator, or None (fresh randomness) if never set."""
    seeds = _state["seeds"]
    return None if seeds is None else int(seeds.integers(2**63))
