"""A frames source for NVGesture's aligned streams: IGM's temporal window and spatial crop, drawn once per
clip and shared by every stream of that clip."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmbalance.data.sources.files import IMAGENET_MEAN, IMAGENET_STD
from mmbalance.data.sources.frames import FRAME_SUFFIXES, FramesSource
from mmbalance.errors import ConfigError

SCALES = ("i3d", "imagenet", "unit", "flow")


def window(count: int, frames: int, u: float) -> list[int]:
    """``frames`` consecutive indices out of ``count`` starting at ``floor(u * (count - frames + 1))``:
    ``u`` = 1/2 is the centred window; a short clip repeats its last frame.

    >>> window(80, 64, 0.5)[0], window(80, 64, 0.999)[0], window(3, 5, 0.5)
    (8, 16, [0, 1, 2, 2, 2])
    """
    start = min(math.floor(u * (max(count - frames, 0) + 1)), max(count - frames, 0))
    return [min(start + i, count - 1) for i in range(frames)]


class ClipSource(FramesSource):
    """A folder of frame images per row as ``float32[frames, C, size, size]``, cut as IGM cuts NVGesture:
    every frame resized to ``resize`` x ``resize``, ``frames`` consecutive frames, then a ``size`` crop.
    Training (with ``augment``) draws the window's start in ``[0, count - frames]`` and the crop's corner
    in ``[0, resize - size]``; evaluation takes the centred window and the centre crop. No flip: a gesture
    mirrored can be another class.

    The three draws come from a generator seeded with the row's generator's seed, not from the row's
    generator itself, so every stream of a clip (RGB, depth, flow) gets the same window and crop.

    ``scale``: ``i3d`` maps [0, 255] to [-1, 1] (what the published I3D weights expect), ``imagenet``
    normalises with ImageNet's statistics, ``unit`` gives [0, 1], and ``flow`` reads an RGB image whose
    red and green channels are the horizontal and vertical flow and gives those 2 channels in [-1, 1].
    """

    def __init__(self, name: str, table: Any, spec: dict[str, Any], resize: int, scale: str) -> None:
        super().__init__(name, table, {**spec, "normalize": "none"})
        if scale not in SCALES:
            raise ConfigError(f"modality {name!r} scale={scale!r}; expected one of {', '.join(SCALES)}")
        if isinstance(resize, bool) or not isinstance(resize, int) or resize < max(self.size):
            raise ConfigError(f"nvgesture resize={resize!r}; expected an integer >= size {max(self.size)}")
        self.resize, self.scale = resize, scale

    @property
    def shape(self) -> tuple[int, ...]:
        channels = 2 if self.scale == "flow" else self.opts["channels"]
        return (self.opts["frames"], channels, *self.size)

    def draws(self, train: bool, generator: torch.Generator | None) -> list[float]:
        """(window, left, top) fractions: the row's shared random draws, or the centre."""
        if not train or generator is None:
            return [0.5, 0.5, 0.5]
        return torch.rand(3, generator=torch.Generator().manual_seed(generator.initial_seed())).tolist()

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        folder = self.file_of(row, self.column)
        if folder is None:
            return self.fill(), False
        u = self.draws(train and self.opts["augment"], generator)
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
            if not files:
                raise ValueError(f"no frame images ({', '.join(FRAME_SUFFIXES)}) in the folder")
            frames = [self.crop(files[i], u[1], u[2]) for i in window(len(files), self.opts["frames"], u[0])]
        except (OSError, ValueError) as exc:
            raise self.unreadable(row, self.column, exc) from exc
        return torch.stack(frames), True

    def crop(self, path: Any, left: float, top: float) -> Tensor:
        """One frame: resized, cropped at the fractions ``left``/``top`` of the free margin, scaled."""
        from PIL import Image

        h, w = self.size
        x0 = min(math.floor(left * (self.resize - w + 1)), self.resize - w)
        y0 = min(math.floor(top * (self.resize - h + 1)), self.resize - h)
        with Image.open(path) as im:
            im = im.convert("RGB" if self.scale == "flow" or self.opts["channels"] == 3 else "L")
            im = im.resize((self.resize, self.resize), Image.BILINEAR).crop((x0, y0, x0 + w, y0 + h))
            x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)
        x = x.permute(2, 0, 1) if x.dim() == 3 else x[None]
        if self.scale == "flow":
            x = x[:2]
        if self.scale in ("i3d", "flow"):
            return (x * 2 - 1).contiguous()
        if self.scale == "imagenet" and x.shape[0] == 3:
            return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[
                :, None, None
            ]
        return x.contiguous()

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "i3d"}
