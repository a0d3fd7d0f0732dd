"""CREMA-D (audio-visual emotion recognition, 6 classes) as the IGM and MLA papers use it.

Layout under ``root`` (see docs/datasets/cremad.md)::

    AudioWAV/<clip>.wav                  the audio (16 kHz in the release; any rate is resampled)
    Image-01-FPS/<clip>/*.jpg            frames at 1 fps (``mmbalance prepare cremad`` extracts them)
    VideoFlash/<clip>.flv                the videos (only ``prepare`` reads them)
    annotations/train.csv, test.csv      no header; rows ``<clip>,<emotion>`` (6,698 / 744 clips)
    annotations/valid.csv                optional, the same form: the validation split
"""

from __future__ import annotations

from collections.abc import Callable
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
from mmbalance.data.papers._video import decode_frames, extract_clips, write_video
from mmbalance.data.preparers import PREPARERS
from mmbalance.data.registry import DATASETS
from mmbalance.errors import DataError, MissingDataError

#: The emotion codes of the clip names, in the released loaders' class order (NEU 0 ... ANG 5).
EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
FRAMES, VIDEOS, AUDIO = "Image-01-FPS", "VideoFlash", "AudioWAV"
VIDEO_SUFFIXES = (".flv", ".mp4", ".avi", ".mkv", ".webm")


@DATASETS.register("cremad")
def cremad(
    root: str | None = None,
    frames: int = 1,
    frame_size: int = 224,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    drop_missing: bool = False,
) -> ManifestDataset:
    """CREMA-D: audio (log-magnitude spectrogram of the first 3 s at 22,050 Hz, the clip tiled when
    shorter; STFT n_fft 512, hop 353: ``float32[1, 257, 188]``) and visual (``frames`` frames of
    ``Image-01-FPS/<clip>/``, ``frame_size`` pixels: ``float32[frames, 3, S, S]``), 6 emotion classes
    named by their codes (ANG, DIS, FEA, HAP, NEU, SAD). Test split: ``annotations/test.csv``;
    validation: ``annotations/valid.csv`` when it exists (the IGM README lists one, its code never reads
    it), else ``val_fraction`` of each class of ``annotations/train.csv`` drawn with ``split_seed`` (the
    released code has no validation split). A clip without its wav or frames is an error naming
    its index line, or with ``drop_missing`` left out (as released)."""
    path = require_root("cremad", root)
    check_fraction(val_fraction)
    clips = [c for stem, part in index_files(path) for c in read_index(path, stem, part)]
    clips = check_clips(clips, path, bool(drop_missing))
    audio = {"sample_rate": 22050, "duration": 3.0}
    return av_dataset(clips, path, audio, frames, frame_size, val_fraction, split_seed)


def read_index(root: Path, stem: str, part: str) -> list[Clip]:
    """The clips (split ``part``) of ``annotations/<stem>.csv``; a line without a clip and a known emotion
    code, or whose emotion contradicts the clip name's (``1001_DFA_ANG_XX`` is ANG), is a
    :class:`DataError`."""
    index = root / "annotations" / f"{stem}.csv"
    clips = []
    for line, cells in read_rows(index, part):
        where = f"{index} line {line}"
        if len(cells) < 2 or not cells[0]:
            raise DataError(f"{where}: {','.join(cells)!r}; expected <clip>,<emotion>")
        clip, emotion = cells[0], cells[1].upper()
        if emotion not in EMOTIONS:
            raise DataError(f"{where}: emotion {cells[1]!r}; expected one of {', '.join(EMOTIONS)}")
        fields = clip.split("_")
        if len(fields) >= 3 and fields[2] in EMOTIONS and fields[2] != emotion:
            raise DataError(f"{where}: emotion {emotion} but clip {clip!r} is named {fields[2]}")
        clips.append(Clip(str(index), line, clip, f"{AUDIO}/{clip}.wav", f"{FRAMES}/{clip}", emotion, part))
    if not clips:
        raise DataError(f"index file {index} lists no clip; expected rows <clip>,<emotion>")
    return clips


@PREPARERS.register("cremad")
def prepare_cremad(root: Path, force: bool, log: Callable[[str], None]) -> None:
    """Frames at 1 fps from ``VideoFlash/<clip>.*`` into ``Image-01-FPS/<clip>/00001.jpg, ...`` (PyAV);
    clips whose frame folder exists are skipped unless ``force``; each clip folder appears complete or
    not at all."""
    videos_dir = root / VIDEOS
    if not videos_dir.is_dir():
        raise MissingDataError(f"{videos_dir} does not exist; expected the CREMA-D videos (VideoFlash/*.flv)")
    videos = [p for p in videos_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    done, skipped = extract_clips(videos, root / FRAMES, lambda p: decode_frames(p, 1.0), force, log)
    log(f"cremad: frames of {done} videos extracted, {skipped} already done, into {root / FRAMES}")


PALETTE = ((230, 30, 30), (30, 200, 30), (30, 30, 230), (220, 220, 30), (30, 210, 210), (210, 30, 210))


def tone(index: int, seconds: float, rate: int) -> np.ndarray:
    """A sine tone whose frequency (300, 600, ... Hz) says the class ``index``."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 300 * (index + 1) * t)).astype(np.float32)


def write_fixture(
    root: str | Path, n: int = 6, n_test: int = 2, frames: bool = True, videos: bool = False
) -> Path:
    """A tiny CREMA-D in the native layout: per emotion ``n`` training and ``n_test`` test clips named like
    the real ones (``10xx_DFA_<EMO>_XX``), each a 1 s wav at 16 kHz holding a tone of the class's
    frequency (:func:`tone`), 3 frames (``frames``) and/or a 2.5 s video at 10 fps (``videos``, needs
    PyAV), all of the class's colour (:data:`PALETTE`). Returns ``root``."""
    import soundfile
    from PIL import Image

    root = Path(root)
    for d in (AUDIO, FRAMES, VIDEOS, "annotations"):
        (root / d).mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    k = 0
    for c, emotion in enumerate(EMOTIONS):
        for j in range(n + n_test):
            clip, k = f"{1001 + k}_DFA_{emotion}_XX", k + 1
            lines["train" if j < n else "test"].append(f"{clip},{emotion}\n")
            soundfile.write(root / AUDIO / f"{clip}.wav", tone(c, 1.0, 16000), 16000)
            image = np.full((32, 32, 3), PALETTE[c], dtype=np.uint8)
            if frames:
                (root / FRAMES / clip).mkdir(exist_ok=True)
                for i in range(3):
                    Image.fromarray(image).save(root / FRAMES / clip / f"{i + 1:05d}.jpg")
            if videos:
                write_video(root / VIDEOS / f"{clip}.mp4", [image] * 25, fps=10)
    for part, rows in lines.items():
        (root / "annotations" / f"{part}.csv").write_text("".join(rows))
    return root
