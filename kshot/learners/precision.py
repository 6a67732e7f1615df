"""Whether a learner's computation runs under mixed-precision autocast, for the parts that must
leave it (ProtoNet's distances, which lose their precision in bfloat16)."""

from __future__ import annotations

import torch


def autocasting(device: torch.device) -> bool:
    """Whether mixed-precision autocast is on here for this device's type (never for device types
    without autocast, such as "meta")."""
    return torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type)
