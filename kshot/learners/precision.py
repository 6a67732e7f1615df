"""Mixed precision inside learners: which computations leave autocast, and how they tell."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def autocasting(device: torch.device) -> bool:
    """Whether mixed-precision autocast is on here for this device's type (never for device types
    without autocast, such as "meta")."""
    return torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type)


def float32_under_autocast(fn: Callable[..., Tensor], *inputs: Tensor) -> Tensor:
    """fn(*inputs), computed in float32 when autocast is on, the result in the first input's dtype.
    For the small matrices of recurrent parts (a few dozen rows), whose float32 kernels run faster
    on CPU than bfloat16 ones; elsewhere fn(*inputs) as it is."""
    if not autocasting(inputs[0].device):
        return fn(*inputs)
    with torch.autocast(inputs[0].device.type, enabled=False):
        return fn(*(x.float() for x in inputs)).to(inputs[0].dtype)
