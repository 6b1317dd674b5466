"""Where a local engine runs: the device setting (``auto``, ``cpu``, ``cuda``) made concrete.

``auto`` means CUDA when CTranslate2 sees a CUDA device (``ctranslate2.get_cuda_device_count``:
no torch import, which would cost seconds and a gigabyte), else the CPU; an ``auto`` engine that
fails to load on CUDA (a driver without cuBLAS/cuDNN) falls back to the CPU. ``cuda`` asked for
explicitly never falls back: it loads there or fails saying why.

Compute types for CTranslate2 engines: ``int8`` on the CPU (fast, small), ``float16`` on CUDA;
a per-engine ``compute_types`` setting overrides either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
"""What a setting asks for."""
Placement = Literal["cpu", "cuda"]
"""Where an engine actually loads."""

DEFAULT_COMPUTE_TYPES: dict[Placement, str] = {"cpu": "int8", "cuda": "float16"}


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use (0 without CTranslate2, a driver or a GPU)."""
    try:
        import ctranslate2
    except ImportError:
        return 0
    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # a broken driver install: treat as no GPU
        log.debug("CUDA device count unavailable", exc_info=True)
        return 0


@dataclass(frozen=True)
class DeviceChoice:
    """The device and compute type an engine loads with, and what to try if that fails."""

    device: Placement
    compute_type: str
    fallback: DeviceChoice | None = None
    """For ``auto`` on CUDA: the CPU choice to load with when CUDA fails."""


def choose_device(
    requested: Device,
    compute_override: str | None = None,
    *,
    cuda_count: Callable[[], int] | None = None,
) -> DeviceChoice:
    """The concrete choice for a CTranslate2 engine.

    Args:
        requested: the setting (``auto``, ``cpu``, ``cuda``).
        compute_override: a compute type to use instead of the device's default (``int8_float16``).
            It applies to the first choice only: a CPU fallback takes the CPU default.
        cuda_count: how many CUDA devices there are (default ``cuda_device_count``).
    """
    count = cuda_count or cuda_device_count
    if requested == "cpu" or (requested == "auto" and count() == 0):
        return DeviceChoice("cpu", compute_override or DEFAULT_COMPUTE_TYPES["cpu"])
    fallback = DeviceChoice("cpu", DEFAULT_COMPUTE_TYPES["cpu"]) if requested == "auto" else None
    return DeviceChoice("cuda", compute_override or DEFAULT_COMPUTE_TYPES["cuda"], fallback)


def gpu_layers(requested: Device, offload_supported: bool) -> int:
    """llama.cpp's ``n_gpu_layers`` for a device setting: every layer (-1) on CUDA, none on the
    CPU; ``auto`` offloads when the installed llama.cpp build can.

    Raises:
        ValueError: ``cuda`` was asked for but the build has no GPU support.
    """
    if requested == "cpu":
        return 0
    if requested == "cuda" and not offload_supported:
        raise ValueError(
            "this llama-cpp-python build has no GPU support; reinstall it with "
            'CMAKE_ARGS="-DGGML_CUDA=on" or set the engine\'s device to cpu'
        )
    return -1 if offload_supported else 0
