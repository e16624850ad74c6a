"""edumail: e-mail automation for small training centres."""

__version__ = "0.1.0"
