"""NVGesture (Molchanov et al., CVPR 2016) as IGM uses it: 25 hand gestures, RGB, depth and optical flow
clips of 1,050 training and 482 test recordings (docs/datasets/nvgesture.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers import nvgesture_video as _video  # noqa: F401  (registers the prepare step)
from mmbalance.data.papers.nvgesture_clips import ClipSource
from mmbalance.data.papers.nvgesture_fixture import write_fixture
from mmbalance.data.papers.nvgesture_lists import TEST_LIST, TRAIN_LIST, Clip, LstTable, parse_list
from mmbalance.data.registry import DATASETS
from mmbalance.data.sources.frames import FRAME_SUFFIXES
from mmbalance.data.table import Table
from mmbalance.errors import ConfigError, DataError

STREAMS = ("depth", "rgb", "flow")  # IGM's stage order: depth, then RGB, then optical flow
NORMALIZE = {"i3d": {"rgb": "i3d", "depth": "i3d"}, "released": {"rgb": "imagenet", "depth": "unit"}}


class NVGestureDataset(ManifestDataset):
    """The clips as a manifest whose frame modalities are :class:`ClipSource`: the window and crop of a
    clip are drawn once and shared by all its streams. ``scales`` gives each stream's pixel scaling."""

    name = "nvgesture"

    def __init__(self, table: Table, spec: dict[str, Any], resize: int, scales: dict[str, str]) -> None:
        super().__init__(table, spec, label="label", split_column="split", id_column="clip", strict=False)
        self.resize, self.scales = resize, scales
        self.sources = self._clip_sources(table)

    def _clip_sources(self, table: Table) -> dict[str, Any]:
        return {m: ClipSource(m, table, s, self.resize, self.scales[m]) for m, s in self.spec.items()}

    def rows_for(self, table: Table, label_required: bool = False, strict: bool = True) -> ManifestDataset:
        new = super().rows_for(table, label_required, strict)
        new.sources = self._clip_sources(table)
        return new


def _frame_count(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)


def check_frames(root: Path, clips: Sequence[Clip], streams: Sequence[str]) -> None:
    """Every clip has frames in each stream's folder, the same number in every stream (so the streams
    stay aligned frame for frame); else a one-line :class:`DataError` naming the list line."""
    for clip in clips:
        counts = {s: _frame_count(root / clip.folder(s)) for s in streams}
        for s, count in counts.items():
            if count == 0:
                hint = (
                    "user-provided flow images (docs/datasets/nvgesture.md), or streams without flow"
                    if s == "flow"
                    else f"the frames of `mmbalance prepare nvgesture --root {root}`"
                )
                raise DataError(f"{clip.where}: no {s} frames in {root / clip.folder(s)}; expected {hint}")
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{s} {c}" for s, c in counts.items())
            raise DataError(
                f"{clip.where}: frame counts differ ({shown}); expected one frame per stream each"
            )


def split_column(clips_train: Sequence[Clip], n_test: int, val_fraction: float, seed: int) -> list[str]:
    """``train``/``val`` for the training list's clips (a seeded draw of ``round(val_fraction * n_c)``
    clips of each class ``c``, at least one of a class with two or more, to ``val``), then ``test`` for
    the test list's."""
    rng = np.random.default_rng(seed)
    split = ["train"] * len(clips_train)
    for c in sorted({clip.label for clip in clips_train}):
        rows = [i for i, clip in enumerate(clips_train) if clip.label == c]
        take = max(1, round(val_fraction * len(rows))) if len(rows) > 1 else 0
        for i in rng.permutation(rows)[:take]:
            split[int(i)] = "val"
    return split + ["test"] * n_test


@DATASETS.register("nvgesture")
def nvgesture(
    root: str | None = None,
    streams: Sequence[str] = STREAMS,
    frames: int = 64,
    size: int = 224,
    resize: int = 256,
    normalize: str = "i3d",
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> NVGestureDataset:
    """NVGesture under ``root`` (after ``mmbalance prepare nvgesture``): the ``streams`` (``depth``,
    ``rgb``, ``flow``; modalities in that order) as ``float32[frames, C, size, size]`` clips (C = 1, 3, 2),
    every frame resized to ``resize`` square, then IGM's window of ``frames`` consecutive frames and
    ``size`` crop (random in training, centred in evaluation, shared by the streams). ``normalize``:
    ``i3d`` scales every stream to [-1, 1] as the I3D weights expect; ``released`` uses ImageNet
    statistics for RGB and [0, 1] for depth, as IGM's loader. Labels 0-24 (the lists' 1-25 minus 1).
    Split: the test list is ``test``; ``val_fraction`` of each class of the training list, drawn with
    ``split_seed``, is ``val`` (NVGesture has no validation split) and the rest is ``train``."""
    if root is None:
        raise ConfigError(
            "dataset nvgesture needs root: the folder holding the NVGesture lists (dataset__root=PATH)"
        )
    chosen = list(streams) if not isinstance(streams, str) else [streams]
    if not chosen or any(s not in STREAMS for s in chosen) or len(set(chosen)) < len(chosen):
        raise ConfigError(
            f"nvgesture streams={streams!r}; expected distinct names out of {', '.join(STREAMS)}"
        )
    if normalize not in NORMALIZE:
        raise ConfigError(f"nvgesture normalize={normalize!r}; expected one of {', '.join(NORMALIZE)}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"nvgesture val_fraction={val_fraction!r}; expected a number in (0, 1)")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"nvgesture root={root!r} is not a directory; expected the NVGesture folder")
    train, test = parse_list(base / TRAIN_LIST), parse_list(base / TEST_LIST)
    order = [s for s in STREAMS if s in chosen]
    check_frames(base, train + test, order)
    columns: dict[str, list[Any]] = {s: [c.folder(s) for c in train + test] for s in order}
    columns["label"] = [str(c.label) for c in train + test]
    columns["clip"] = [c.key for c in train + test]
    columns["split"] = split_column(train, len(test), val_fraction, split_seed)
    table = LstTable(columns, [c.where for c in train + test], base)
    spec = {
        s: {
            "kind": "frames",
            "column": s,
            "frames": frames,
            "size": size,
            "channels": 1 if s == "depth" else 3,
        }
        for s in order
    }
    return NVGestureDataset(table, spec, resize, {**NORMALIZE[normalize], "flow": "flow"})


__all__ = ["NVGestureDataset", "nvgesture", "write_fixture"]
