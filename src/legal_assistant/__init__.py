"""Legal Assistant: privacy-first legal chat with a local model runtime supervisor."""

__version__ = "0.1.0"
