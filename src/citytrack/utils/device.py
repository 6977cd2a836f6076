"""Device resolution, the one home for `device: auto` (imports only torch, so light processes stay light)."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """`"auto"` is CUDA when available, else the CPU; anything else is passed to `torch.device`."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on a CUDA device, so a wall-clock timer measures it; no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
