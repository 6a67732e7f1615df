"""Fully connected networks: the twin of the MNIST Siamese example, the sinusoid regressor."""
from __future__ import annotations

from torch import Tensor, nn

from .registry import BACKBONES


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: list[int], out_features: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_features = width
        layers.append(nn.Linear(in_features, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@BACKBONES.register("mlp")
def mlp(in_features: int = 784, hidden: list[int] | None = None, out_features: int = 128, dropout: float = 0.1,
        in_channels: int | None = None) -> MLP:
    # in_channels is accepted (and ignored) so image pipelines can pass it to any backbone
    return MLP(in_features, [128, 128] if hidden is None else list(hidden), out_features, dropout)
