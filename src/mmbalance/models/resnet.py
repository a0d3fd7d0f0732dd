"""ResNet-18 and ResNet-50 encoders for images, spectrograms and frame stacks.

Module and parameter names equal torchvision's ``resnet18``/``resnet50`` (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer2.0.downsample.0``, bottleneck ``conv3``/``bn3``), so a torchvision state dict
loads unchanged; the classifier ``fc`` is not part of the encoder (see :mod:`resnet_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbalance.errors import ConfigError, check_choice
from mmbalance.models.daft import conditioning
from mmbalance.models.registry import ENCODERS
from mmbalance.models.resnet_blocks import BasicBlock, Bottleneck, init_weights, stage
from mmbalance.models.resnet_weights import match_backbone, read_state_dict
from mmbalance.models.weights import keep_batchnorm_frozen, load_parts

BACKBONE = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
POOLS = ("mean", "max")


class ResNet(nn.Module):
    """A torchvision-layout ResNet trunk, global average pooling, then ``Linear(out_dim)`` and ReLU.

    Input ``[B, C, H, W]`` when ``input_shape`` is ``(C, H, W)`` (an image, or a 1-channel spectrogram),
    or ``[B, T, C, H, W]`` when it is ``(T, C, H, W)`` (video frames): the 2-D network runs on every
    frame and the pooled frame features are averaged (``temporal_pool="mean"``) or maxed over time. The
    mean equals the papers' formulation (reshape the ``[B*T, F, h, w]`` maps to ``[B, F, T, h, w]`` and
    average-pool in 3-D), because a mean over ``T*h*w`` cells is the mean over ``T`` of the means over
    ``h*w``.

    ``out_dim=None`` returns the pooled features themselves (512 for ResNet-18, 2048 for ResNet-50, the
    papers' encoder output; ``self.out_dim`` says which) with no projection. ``in_channels`` defaults to
    the channel count of ``input_shape``. ``weights`` is a path to a torchvision-format state dict, loaded
    strictly into the trunk (``fc.*`` keys are ignored; 3-channel ``conv1`` weights are summed to 1
    channel for a 1-channel encoder); ``pretrained`` records whether weights were loaded. ``freeze=True``
    fixes the trunk: its parameters do not require gradients and its BatchNorm layers stay in eval mode
    (running statistics unchanged) even when the model trains; the projection, a new layer, still
    trains. Convolutions use Kaiming-normal (fan_out) init, BatchNorm weight 1 and bias 0;
    ``zero_init_residual`` zeroes each block's last BatchNorm weight. ``channels_last`` keeps weights
    and activations in NHWC layout, as the ``cnn`` encoder does.

    ``condition=MODALITY`` puts a DAFT block (:mod:`mmbalance.models.daft`) on the input of the last
    residual block, which is also that block's shortcut (DAFT's ``film_location=0``), conditioned on that
    modality's raw input; frames of a clip share their row's condition. The block is new, so it trains
    even in a frozen trunk, and a conditioned encoder's features are never cached.
    """

    block: type[BasicBlock] | type[Bottleneck] = BasicBlock
    stage_blocks: tuple[int, int, int, int] = (2, 2, 2, 2)

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int | None = 128,
        in_channels: int | None = None,
        weights: str | None = None,
        freeze: bool = False,
        zero_init_residual: bool = False,
        temporal_pool: str = "mean",
        channels_last: bool = True,
        condition: str | None = None,
        condition_shape: Sequence[int] | None = None,
        film_reduction: int = 7,
    ) -> None:
        super().__init__()
        name = type(self).__name__.lower()
        channels = _check_shape(name, input_shape, in_channels)
        check_choice("temporal_pool", temporal_pool, POOLS)
        self.frames, self.temporal_pool, self.freeze = len(input_shape) == 4, temporal_pool, bool(freeze)
        self.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        width = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), self.stage_blocks, strict=True)):
            setattr(
                self, f"layer{i + 1}", stage(self.block, width, planes, blocks, stride=1 if i == 0 else 2)
            )
            width = planes * self.block.expansion
        init_weights(self, zero_init_residual)
        last = self.layer4[-1]
        last_in = last.conv1.in_channels  # the last block's input: where DAFT acts (film_location=0)
        self.condition = condition
        self.film = conditioning(condition, condition_shape, last_in, len(self.layer4) - 1, film_reduction)
        self.feature_dim = width
        self.out_dim = width if out_dim is None else int(out_dim)
        self.proj = None if out_dim is None else nn.Sequential(nn.Linear(width, self.out_dim), nn.ReLU())
        self.pretrained = weights is not None
        if weights is not None:
            self._load(weights, name)
        if self.freeze:
            for part in BACKBONE:
                getattr(self, part).requires_grad_(False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)
        self.train()

    def backbone_state_dict(self) -> dict[str, Tensor]:
        """The trunk's tensors under torchvision's names (torchvision's state dict without ``fc``): what
        ``weights`` reads back."""
        return {f"{part}.{k}": v for part in BACKBONE for k, v in getattr(self, part).state_dict().items()}

    def _load(self, path: str, name: str) -> None:
        given = read_state_dict(path, name)
        matched = match_backbone(self.backbone_state_dict(), given, f"{name} weights={path!r}")
        load_parts(self, BACKBONE, matched)

    def train(self, mode: bool = True) -> ResNet:
        """Set the mode; a frozen trunk's BatchNorm layers stay in eval mode."""
        super().train(mode)
        if self.freeze:
            keep_batchnorm_frozen(self)
        return self

    def feature_maps(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The last stage's maps ``[N, feature_dim, h, w]`` of an image batch ``[N, C, H, W]`` (with a DAFT
        block, ``condition`` ``[N, ...]`` rescales and shifts the input of the last residual block)."""
        x = x.contiguous(memory_format=self.memory_format)
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.layer4(x) if self.film is None else self.film.run(self.layer4, x, condition)

    def trunk(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The pooled trunk features ``[B, feature_dim]`` (what a frozen backbone's feature cache keeps)."""
        if self.frames:
            b, t = x.shape[:2]
            if condition is not None:  # every frame of a clip is conditioned on the clip's row
                condition = condition.repeat_interleave(t, dim=0)
            per_frame = self.feature_maps(x.flatten(0, 1), condition).mean(dim=(2, 3)).view(b, t, -1)
            return per_frame.mean(dim=1) if self.temporal_pool == "mean" else per_frame.amax(dim=1)
        return self.feature_maps(x, condition).mean(dim=(2, 3))

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        pooled = self.trunk(x) if self.film is None else self.trunk(x, condition)
        return pooled if self.proj is None else self.proj(pooled)


def _check_shape(name: str, input_shape: Sequence[int], in_channels: int | None) -> int:
    """The input channel count: ``in_channels``, which must agree with ``input_shape`` when given."""
    shape = tuple(input_shape)
    if len(shape) not in (3, 4):
        raise ConfigError(
            f"{name} input_shape={shape}; expected (channels, height, width) or "
            "(frames, channels, height, width)"
        )
    if in_channels is not None and in_channels != shape[-3]:
        raise ConfigError(
            f"{name} in_channels={in_channels} does not match input_shape={shape}; expected {shape[-3]}"
        )
    return int(shape[-3])


@ENCODERS.register("resnet18")
class ResNet18(ResNet):
    """ResNet-18 (basic blocks [2, 2, 2, 2], 512 pooled features) for images, spectrograms or frames.

    See :class:`ResNet` for the options; ``out_dim=None`` keeps the 512 pooled features.

    >>> enc = ResNet18(input_shape=(1, 16, 15), out_dim=6)
    >>> enc(torch.randn(2, 1, 16, 15)).shape, enc.conv1.in_channels, enc.pretrained
    (torch.Size([2, 6]), 1, False)
    >>> ResNet18(input_shape=(4, 3, 32, 32), out_dim=None)(torch.randn(2, 4, 3, 32, 32)).shape
    torch.Size([2, 512])
    """

    block = BasicBlock
    stage_blocks = (2, 2, 2, 2)


@ENCODERS.register("resnet50")
class ResNet50(ResNet):
    """ResNet-50 (bottleneck blocks [3, 4, 6, 3], 2048 pooled features) for images, spectrograms or frames.

    See :class:`ResNet` for the options; ``out_dim=None`` keeps the 2048 pooled features.
    """

    block = Bottleneck
    stage_blocks = (3, 4, 6, 3)
