"""Fully connected networks: the twin of the MNIST Siamese example, the sinusoid regressor's body."""

from __future__ import annotations

from torch import Tensor, nn

from .registry import BACKBONES


class MLP(nn.Module):
    """Flatten, then Linear + ReLU (+ dropout) per hidden width, then a Linear to `out_features`;
    with `out_features=None` the network ends at the last hidden ReLU (a body for a learner's head)."""

    def __init__(self, in_features: int, hidden: list[int], out_features: int | None, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_features = width
        if out_features is not None:
            layers.append(nn.Linear(in_features, out_features))
        self.net = nn.Sequential(*layers)
        self.num_features = in_features if out_features is None else out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@BACKBONES.register("mlp")
def mlp(
    in_features: int = 784,
    hidden: list[int] | None = None,
    out_features: int | None = 128,
    dropout: float = 0.1,
    in_channels: int | None = None,
    norm: str = "none",
    channels_last: bool = False,
) -> MLP:
    # The options every backbone takes are accepted: in_channels (the flattened input is sized by
    # in_features), norm (an MLP has no normalisation layer), channels_last (no feature maps).
    return MLP(in_features, [128, 128] if hidden is None else list(hidden), out_features, dropout)
