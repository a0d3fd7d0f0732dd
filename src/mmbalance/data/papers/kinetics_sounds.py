"""Kinetics-Sounds (audio-visual action recognition, 31 classes) as the IGM paper's code lays it out.

Layout under ``root`` (see docs/datasets/kinetics_sounds.md)::

    annotations/train.csv, test.csv          header with columns label and youtube_id (more are ignored)
    train_wav/<youtube_id>.wav               audio of the training clips (any rate; resampled)
    train_img/Image-01-FPS/<youtube_id>/     frames at 1 fps of the training clips
    test_wav/..., test_img/Image-01-FPS/...  the same for the test clips
    annotations/valid.csv, valid_wav/, valid_img/Image-01-FPS/   optional: the validation split
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers._audiovisual import (
    Clip,
    av_dataset,
    check_clips,
    check_fraction,
    index_files,
    read_rows,
    require_root,
)
from mmbalance.data.registry import DATASETS
from mmbalance.errors import DataError

COLUMNS = ("label", "youtube_id")


@DATASETS.register("kinetics_sounds")
def kinetics_sounds(
    root: str | None = None,
    frames: int = 3,
    frame_size: int = 224,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    drop_missing: bool = False,
) -> ManifestDataset:
    """Kinetics-Sounds: audio (log-magnitude spectrogram of the first 10 s at 35,400 Hz, the clip tiled
    when shorter; STFT n_fft 512, hop 353: ``float32[1, 257, 1003]``) and visual (``frames`` frames of
    the clip's frame folder, ``frame_size`` pixels: ``float32[frames, 3, S, S]``), classes named by the
    ``label`` column (31 in the release). Test split: ``annotations/test.csv``; validation:
    ``annotations/valid.csv`` with ``valid_wav/`` and ``valid_img/Image-01-FPS/`` when it exists (the
    IGM README lists one, its code never reads it), else ``val_fraction`` of each class of
    ``annotations/train.csv`` drawn with ``split_seed``. A clip without its wav or frames is an error
    naming its index line, or with ``drop_missing`` left out (as released)."""
    path = require_root("kinetics_sounds", root)
    check_fraction(val_fraction)
    clips = [c for stem, part in index_files(path) for c in read_index(path, stem, part)]
    clips = check_clips(clips, path, bool(drop_missing))
    audio = {"sample_rate": 35400, "duration": 10.0}
    return av_dataset(clips, path, audio, frames, frame_size, val_fraction, split_seed)


def read_index(root: Path, stem: str, part: str) -> list[Clip]:
    """The clips (split ``part``) of ``annotations/<stem>.csv`` (a header naming ``label`` and
    ``youtube_id``); a row with an empty label or id is a :class:`DataError` naming its line."""
    index = root / "annotations" / f"{stem}.csv"
    rows = read_rows(index, part)
    first = next(rows, None)
    header = first[1] if first else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"index file {index}: header {header} lacks {missing}; expected columns label, youtube_id"
        )
    at = {c: header.index(c) for c in COLUMNS}
    clips = []
    for line, cells in rows:
        values = {c: cells[i] if i < len(cells) else "" for c, i in at.items()}
        if not values["label"] or not values["youtube_id"]:
            raise DataError(f"{index} line {line}: {','.join(cells)!r}; expected a label and a youtube_id")
        yid = values["youtube_id"]
        audio, visual = f"{stem}_wav/{yid}.wav", f"{stem}_img/Image-01-FPS/{yid}"
        clips.append(Clip(str(index), line, yid, audio, visual, values["label"], part))
    if not clips:
        raise DataError(f"index file {index} lists no clip; expected rows with a label and a youtube_id")
    return clips


CLASSES = ("playing bagpipes", "tapping guitar", "ripping paper", "dog barking")
PALETTE = ((230, 30, 30), (30, 200, 30), (30, 30, 230), (220, 220, 30))


def tone(index: int, seconds: float, rate: int) -> np.ndarray:
    """A sine tone whose frequency (400, 800, ... Hz) says the class ``index``."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 400 * (index + 1) * t)).astype(np.float32)


def write_fixture(root: str | Path, n: int = 6, n_test: int = 2, n_frames: int = 4) -> Path:
    """A tiny Kinetics-Sounds in the native layout: per class of :data:`CLASSES` ``n`` training and
    ``n_test`` test clips, each a 1 s wav at 16 kHz holding a tone of the class's frequency (:func:`tone`)
    and ``n_frames`` frames of the class's colour (:data:`PALETTE`); the index files carry an extra
    column, as real ones may. Returns ``root``."""
    import soundfile
    from PIL import Image

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {
        "train": ["youtube_id,label,split\n"],
        "test": ["youtube_id,label,split\n"],
    }
    k = 0
    for c, label in enumerate(CLASSES):
        for j in range(n + n_test):
            yid, k, part = f"yt{k:05d}_000010", k + 1, "train" if j < n else "test"
            lines[part].append(f'{yid},"{label}",{part}\n')
            (root / f"{part}_wav").mkdir(exist_ok=True)
            soundfile.write(root / f"{part}_wav" / f"{yid}.wav", tone(c, 1.0, 16000), 16000)
            folder = root / f"{part}_img" / "Image-01-FPS" / yid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n_frames):
                Image.fromarray(np.full((32, 32, 3), PALETTE[c], dtype=np.uint8)).save(
                    folder / f"{i + 1:05d}.jpg"
                )
    for part, rows in lines.items():
        (root / "annotations" / f"{part}.csv").write_text("".join(rows))
    return root
