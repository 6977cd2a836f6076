"""citytrack: GPU-native, end-to-end trainable multi-camera tracking."""

__version__ = "0.1.0"
