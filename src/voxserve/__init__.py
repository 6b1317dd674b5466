"""voxserve: a self-hosted speech API (Mistral- and OpenAI-compatible)."""

__version__ = "0.1.0"
