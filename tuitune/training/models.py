"""Provides the built-in trainer's models: mlp, cnn and resnet18, built from a config."""

from __future__ import annotations

from typing import Any

from torch import nn

from tuitune.training.catalog import ACTIVATIONS


def activation(name: str) -> nn.Module:
    """A fresh activation module by its catalog name (catalog.ACTIVATIONS names its torch.nn class)."""
    try:
        return getattr(nn, ACTIVATIONS[name])()
    except KeyError:
        raise ValueError(f"activation {name!r} is unknown; use one of {', '.join(ACTIVATIONS)}") from None


def build_model(
    kind: str, config: dict[str, Any], *, channels: int, classes: int, options: dict[str, Any] | None = None
) -> nn.Module:
    """The model of ``kind`` for images of ``channels`` x ``config['image_size']``² and ``classes`` outputs."""
    options = options or {}
    size = int(config["image_size"])
    if kind == "mlp":
        model = mlp(
            channels * size * size,
            classes,
            int(config["hidden_layers"]),
            int(config["units"]),
            config["activation"],
            float(config["dropout"]),
        )
    elif kind == "cnn":
        model = cnn(
            channels,
            size,
            classes,
            int(config["conv_blocks"]),
            int(config["filters"]),
            int(config["kernel_size"]),
            int(config["units"]),
            config["activation"],
            float(config["dropout"]),
            batchnorm=bool(options.get("batchnorm", True)),
        )
    elif kind == "resnet18":
        stem = options.get("stem", "auto")
        small = stem == "small" or (stem == "auto" and size <= 64)
        return resnet18(channels, classes, small_input=small, dropout=float(config.get("dropout", 0.0)))
    else:
        raise ValueError(f"model {kind!r} is unknown; use mlp, cnn or resnet18")
    init_weights(model, config.get("init", "default"), config.get("activation", "relu"))
    return model


def mlp(inputs: int, classes: int, hidden_layers: int, units: int, act: str, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = inputs
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, units), activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def cnn(
    channels: int,
    size: int,
    classes: int,
    blocks: int,
    filters: int,
    kernel: int,
    units: int,
    act: str,
    dropout: float,
    *,
    batchnorm: bool = True,
) -> nn.Sequential:
    """VGG-style: each block is two convolutions (same padding) and a 2x2 max-pool; filters double per block.

    Pooling stops once the feature map is 1x1, so any number of blocks works on small images.
    """
    layers: list[nn.Module] = []
    c_in, s = channels, size
    for b in range(blocks):
        c_out = min(4096, filters * 2**b)
        for _ in range(2):
            layers.append(nn.Conv2d(c_in, c_out, kernel, padding="same", bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(activation(act))
            c_in = c_out
        if s >= 2:
            layers.append(nn.MaxPool2d(2))
            s //= 2
    layers += [nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(c_in * s * s, units), activation(act)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(units, classes))
    return nn.Sequential(*layers)


def resnet18(channels: int, classes: int, *, small_input: bool, dropout: float = 0.0) -> nn.Module:
    """torchvision's ResNet-18; for small images (CIFAR's 32x32) a 3x3 stride-1 stem and no max-pool."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=classes)
    if small_input:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif channels != 3:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if small_input or channels != 3:
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
    model.fc = nn.Sequential(nn.Dropout(dropout), model.fc)
    return model


def _gain_name(act: str) -> str:
    return {"gelu": "relu"}.get(act, act)


def init_weights(model: nn.Module, scheme: str, act: str) -> None:
    """Re-initialises Linear and Conv weights (biases to zero); ``"default"`` keeps PyTorch's."""
    if scheme == "default":
        return
    nl = _gain_name(act)
    gain = nn.init.calculate_gain(nl, 0.01) if nl == "leaky_relu" else nn.init.calculate_gain(nl)
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        w = m.weight
        if scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w, gain=gain)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(w, gain=gain)
        elif scheme in ("kaiming_uniform", "kaiming_normal"):
            # Kaiming's formula knows relu / leaky_relu; for the others it falls back to their gain.
            k_nl = nl if nl in ("relu", "leaky_relu") else "linear"
            fn = nn.init.kaiming_uniform_ if scheme == "kaiming_uniform" else nn.init.kaiming_normal_
            if k_nl == "linear":
                fn(w, a=0, nonlinearity="linear")
                w.data.mul_(gain)
            else:
                fn(w, a=0.01 if k_nl == "leaky_relu" else 0, nonlinearity=k_nl)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(w, gain=gain)
        else:
            raise ValueError(f"init {scheme!r} is unknown")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def output_size(size: int, blocks: int) -> int:
    """The feature-map side after ``blocks`` cnn blocks (for messages and tests)."""
    s = size
    for _ in range(blocks):
        if s >= 2:
            s //= 2
    return max(1, s)


__all__ = ["activation", "build_model", "cnn", "count_parameters", "init_weights", "mlp", "resnet18", "output_size"]
