"""The channel maps an image encoder pools into its features, read with a forward hook.

Nothing about the encoder changes: :class:`ChannelMaps` registers a hook for the length of a ``with``
block and keeps the last maps the encoder computed there, still in the autograd graph, so a loss on them
trains the encoder. Where the maps are:

* ``cnn``: the input of its global average pooling (the last ``Conv -> BN -> ReLU`` block's output);
* ``resnet18`` / ``resnet50``: the output of ``layer4`` (frame stacks: every frame's cells);
* any other encoder: none; its output features stand in, each feature a channel with a single cell.
"""

from __future__ import annotations

from types import TracebackType

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def _site(encoder: nn.Module) -> tuple[nn.Module, bool, int] | None:
    """``(module, reads_input, channels)``: the module whose input (``reads_input``) or output holds the
    maps, and their channel count; ``None`` when the encoder has no spatial maps this module knows."""
    layer4, width = getattr(encoder, "layer4", None), getattr(encoder, "feature_dim", None)
    if isinstance(layer4, nn.Module) and isinstance(width, int):
        return layer4, False, width
    pools = [m for m in encoder.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    if pools and convs:
        return pools[-1], True, convs[-1].out_channels
    return None


class ChannelMaps:
    """``with ChannelMaps(encoder) as maps: features = encoder(x)``, then ``maps.cells(features)`` is
    ``[B, C, L]``: ``C`` channels (:attr:`channels`), each with ``L`` cells (spatial positions, times frames).
    For an encoder without maps, ``cells(features)`` is ``features`` as ``[B, D, 1]``.

    >>> import torch
    >>> from mmbalance.models.encoders import CNN
    >>> enc = CNN(input_shape=(1, 8, 8), channels=(4, 6), out_dim=3)
    >>> with ChannelMaps(enc) as maps:
    ...     features = enc(torch.randn(2, 1, 8, 8))
    >>> maps.channels, tuple(maps.cells(features).shape)
    (6, (2, 6, 16))
    """

    def __init__(self, encoder: nn.Module) -> None:
        self.site = _site(encoder)
        self.channels: int = self.site[2] if self.site is not None else int(encoder.out_dim)  # type: ignore[arg-type]
        self.maps: Tensor | None = None
        self._handle: RemovableHandle | None = None

    def __enter__(self) -> ChannelMaps:
        self.maps = None
        if self.site is not None:
            module, reads_input, _ = self.site
            if reads_input:
                self._handle = module.register_forward_pre_hook(lambda _m, args: self._keep(args[0]))
            else:
                self._handle = module.register_forward_hook(lambda _m, _args, out: self._keep(out))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _keep(self, maps: Tensor) -> None:
        self.maps = maps

    def cells(self, features: Tensor) -> Tensor:
        """``[B, C, L]`` maps of the batch whose ``features`` (``[B, D]``) the encoder returned inside the
        ``with`` block; frames of a video batch (``[B*T, C, h, w]`` maps) are cells of their sample."""
        if self.site is None:
            return features.unsqueeze(-1)
        if self.maps is None:
            raise RuntimeError("ChannelMaps.cells: the encoder did not run inside the with block")
        batch, maps = features.shape[0], self.maps.flatten(2)
        if maps.shape[0] != batch:  # [B*T, C, h*w] -> [B, C, T*h*w]
            maps = maps.view(batch, -1, *maps.shape[1:]).transpose(1, 2).flatten(2)
        return maps

    def pooled(self, features: Tensor) -> Tensor:
        """``[B, C]``: each channel's mean over its cells (for ``cnn`` and ResNets, the pooled trunk)."""
        return self.cells(features).mean(-1)
