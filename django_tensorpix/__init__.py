"""TensorPix video enhancement for Django."""

__version__ = "0.1.0"
