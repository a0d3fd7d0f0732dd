"""Video as frames: a folder of frame images per row (as ``mmbalance prepare`` extracts them)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from mmbalance.data.sources.files import ImageSource
from mmbalance.errors import ConfigError, DataError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class FramesSource(ImageSource):
    """A folder of frame images per row (sorted by file name), as ``float32[T, C, H, W]`` with ``frames``
    frames of the image options (``size``, ``channels``, ``normalize``).

    Frame choice: the clip is cut into ``frames`` equal segments; evaluation takes each segment's middle
    frame, training with ``augment`` a random frame of each segment (segment sampling), and the crop and
    flip are drawn once per clip, so all frames of a clip move alike. A clip with fewer frames than
    ``frames`` repeats frames in order. An empty folder cell is an absent modality; a folder without
    frames is an unreadable row.
    """

    kind = "frames"
    options: ClassVar[dict[str, Any]] = {**ImageSource.options, "frames": 3}

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        t = self.opts["frames"]
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ConfigError(f"modality {name!r} frames={t!r}; expected a positive integer")

    def check(self) -> None:
        for i, value in enumerate(self.cells(self.column)):
            if value is not None and not self.table.path(value).is_dir():
                raise DataError(
                    f"{self.table.where(i, self.column)}: folder {self.table.path(value)} does not exist"
                )

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.opts["frames"], self.opts["channels"], *self.size)

    def pick(self, count: int, generator: torch.Generator | None, train: bool) -> list[int]:
        """Indices of ``frames`` frames out of ``count``: segment middles, or random within segments."""
        t = self.opts["frames"]
        edges = torch.linspace(0, count, t + 1)
        u = torch.rand(t, generator=generator) if train else torch.full((t,), 0.5)
        idx = (edges[:-1] + u * (edges[1:] - edges[:-1])).floor().long().clamp(0, count - 1)
        return idx.tolist()

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        folder = self.file_of(row, self.column)
        if folder is None:
            return self.fill(), False
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
            if not files:
                raise ValueError(f"no frame images ({', '.join(FRAME_SUFFIXES)}) in the folder")
            augment = train and self.opts["augment"]
            box = self.draw_augmentation(generator) if augment else None
            frames = [self.load(files[i], box) for i in self.pick(len(files), generator, augment)]
        except (OSError, ValueError) as exc:
            raise self.unreadable(row, self.column, exc) from exc
        return torch.stack(frames), True

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "resnet18"}
