"""Language codes as the engines compare them."""

from __future__ import annotations


def primary_language(code: str) -> str:
    """The primary subtag, lower-cased: ``en_US`` and ``en-us`` -> ``en``."""
    return code.lower().replace("_", "-").split("-")[0]
