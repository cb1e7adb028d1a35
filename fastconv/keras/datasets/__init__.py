"""keras.datasets: mnist (fastconv's MNIST loader; see fastconv.keras.datasets.mnist)."""
from . import mnist

__all__ = ["mnist"]
