from torch import nn

from ..registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
