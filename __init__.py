"""edgehound: train a small dog-breed CNN, compile it for edge devices, and measure every artifact."""

__version__ = "0.1.0"
