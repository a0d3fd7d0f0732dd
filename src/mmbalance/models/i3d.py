"""The ``i3d`` encoder: Inflated Inception-V1 (I3D) for clips ``[B, T, C, H, W]``, as IGM uses on NVGesture
(one network per stream: RGB with 3 channels, optical flow with 2, depth with 1).

Module and parameter names equal the common PyTorch I3D port's ``InceptionI3d`` (``Conv3d_1a_7x7.conv3d``,
``Conv3d_1a_7x7.bn``, ``Mixed_3b.b1b.conv3d``, ...), so its published ``rgb_imagenet.pt`` and
``flow_imagenet.pt`` state dicts load with ``weights=PATH`` (their classifier ``logits.*`` is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mmbalance.errors import ConfigError
from mmbalance.models.i3d_blocks import InceptionModule, MaxPool3dSame, Unit3D
from mmbalance.models.i3d_weights import STEM, match_trunk
from mmbalance.models.registry import ENCODERS
from mmbalance.models.weights import keep_batchnorm_frozen, load_parts, read_state_dict

# name, then ("conv", width, kernel, stride), ("pool", kernel, stride) or ("mixed", branch widths)
LAYERS: tuple[tuple[str, tuple], ...] = (
    (STEM, ("conv", 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", ("pool", (1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", ("conv", 64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", ("conv", 192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", ("pool", (1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", ("mixed", (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", ("mixed", (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", ("pool", (3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", ("mixed", (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", ("mixed", (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", ("mixed", (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", ("mixed", (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", ("mixed", (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", ("pool", (2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", ("mixed", (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", ("mixed", (384, 192, 384, 48, 128, 128))),
)


@ENCODERS.register("i3d")
class I3D(nn.Module):
    """I3D up to ``Mixed_5c``, averaged over time and space, then ``Linear(out_dim)`` and ReLU.

    Input ``[B, T, C, H, W]`` for ``input_shape=(T, C, H, W)``; any ``T``, ``H``, ``W`` work (SAME
    padding), and the trunk reduces time 8-fold and space 32-fold (64 frames of 224x224 end as 8x7x7,
    which IGM's ``AvgPool3d((8, 7, 7))`` averages to one cell, as the global average here does).
    ``out_dim=None`` returns the ``1024 * width`` pooled features (``self.out_dim`` says how many) with no
    projection. ``width`` scales every layer's channel count (at least 1 each): 1.0 is I3D; smaller
    values give a fast network of the same shape for tests and CPU runs (published weights fit only 1.0).

    ``weights`` is a path to a state dict of the port's ``InceptionI3d`` (or :meth:`backbone_state_dict`):
    loaded strictly into the trunk; ``logits.*`` keys are ignored, BatchNorm ``num_batches_tracked``
    counters may be absent, and 3-channel ``Conv3d_1a_7x7`` weights given to a 1-channel network (depth)
    are summed over the colour axis. ``pretrained`` records whether weights were loaded. ``freeze=True``
    fixes the trunk: no gradients, BatchNorm layers in eval mode even when the model trains; the
    projection still trains. Without weights, layers have PyTorch's default initialisation.

    >>> import torch
    >>> enc = I3D(input_shape=(8, 2, 32, 32), out_dim=6, width=0.125)
    >>> enc(torch.randn(2, 8, 2, 32, 32)).shape, enc.out_dim, enc.pretrained
    (torch.Size([2, 6]), 6, False)
    >>> I3D(input_shape=(8, 1, 32, 32), out_dim=None, width=0.125).out_dim
    128
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int | None = 128,
        in_channels: int | None = None,
        weights: str | None = None,
        freeze: bool = False,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        channels = _check_shape(input_shape, in_channels)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ConfigError(f"i3d width={width!r}; expected a positive number (1.0 is I3D)")
        self.names = _build(self, channels, float(width))
        self.feature_dim = self.Mixed_5c.out_ch
        self.out_dim = self.feature_dim if out_dim is None else int(out_dim)
        self.proj = (
            None if out_dim is None else nn.Sequential(nn.Linear(self.feature_dim, self.out_dim), nn.ReLU())
        )
        self.freeze, self.pretrained = bool(freeze), weights is not None
        if weights is not None:
            self._load(weights)
        if self.freeze:
            for name in self.names:
                getattr(self, name).requires_grad_(False)
        self.train()

    def backbone_state_dict(self) -> dict[str, Tensor]:
        """The trunk's tensors under the port's names (its state dict without ``logits``)."""
        return {f"{n}.{k}": v for n in self.names for k, v in getattr(self, n).state_dict().items()}

    def _load(self, path: str) -> None:
        given = read_state_dict(path, "i3d")
        matched = match_trunk(self.backbone_state_dict(), given, f"i3d weights={path!r}")
        load_parts(self, self.names, matched)

    def train(self, mode: bool = True) -> I3D:
        """Set the mode; a frozen trunk's BatchNorm layers stay in eval mode."""
        super().train(mode)
        if self.freeze:
            keep_batchnorm_frozen(self)
        return self

    def feature_maps(self, x: Tensor) -> Tensor:
        """``Mixed_5c``'s maps ``[B, feature_dim, ceil(T/8), ceil(H/32), ceil(W/32)]`` of clips
        ``[B, T, C, H, W]``."""
        x = x.permute(0, 2, 1, 3, 4)  # [B, T, C, H, W] -> [B, C, T, H, W]
        for name in self.names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.feature_maps(x).mean(dim=(2, 3, 4))
        return pooled if self.proj is None else self.proj(pooled)


def _build(net: nn.Module, channels: int, width: float) -> list[str]:
    """Add the layers of :data:`LAYERS` to ``net`` under their names; the names, in order."""
    scale = lambda c: max(1, round(c * width))  # noqa: E731
    for name, (kind, *args) in LAYERS:
        if kind == "conv":
            layer: nn.Module = Unit3D(channels, scale(args[0]), args[1], args[2])
            channels = scale(args[0])
        elif kind == "pool":
            layer = MaxPool3dSame(args[0], args[1])
        else:
            layer = InceptionModule(channels, [scale(c) for c in args[0]])
            channels = layer.out_ch
        net.add_module(name, layer)
    return [name for name, _ in LAYERS]


def _check_shape(input_shape: Sequence[int], in_channels: int | None) -> int:
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ConfigError(f"i3d input_shape={shape}; expected (frames, channels, height, width)")
    if in_channels is not None and in_channels != shape[1]:
        raise ConfigError(
            f"i3d in_channels={in_channels} does not match input_shape={shape}; expected {shape[1]}"
        )
    return int(shape[1])
