"""Frames from videos, once, on disk: ``<out>/<clip>/00001.jpg, 00002.jpg, ...`` at a fixed rate.

Decoding uses PyAV (``pip install av``), imported only when a video is decoded. Writing is atomic per
clip: the frames go to a hidden temporary folder that is renamed to ``<clip>`` once complete, so a clip
folder either holds all its frames or does not exist, and an interrupted run leaves nothing that a re-run
would take for done.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mmbalance.errors import DataError, MissingDataError

T = TypeVar("T")
TMP_PREFIX = ".tmp-"


def one_per_slot(timed: Iterable[tuple[float, T]], fps: float) -> Iterator[T]:
    """From ``(time in seconds, item)`` pairs in time order, the first item of each ``1/fps`` slot
    (``[0, 1/fps)``, ``[1/fps, 2/fps)``, ...): at ``fps=1``, the first frame of every second.

    >>> list(one_per_slot([(0.0, "a"), (0.4, "b"), (1.0, "c"), (1.5, "d"), (2.2, "e")], 1.0))
    ['a', 'c', 'e']
    """
    last = -1
    for t, item in timed:
        slot = math.floor(t * fps + 1e-6)
        if slot > last:
            last = slot
            yield item


def decode_frames(path: Path, fps: float) -> Iterator[Any]:
    """The frames of the video at ``path`` at ``fps`` frames per second, as RGB Pillow images (PyAV)."""
    try:
        import av
    except ImportError:
        raise MissingDataError("extracting frames from video needs PyAV: pip install av") from None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)

        def timed() -> Iterator[tuple[float, Any]]:
            for i, frame in enumerate(container.decode(stream)):
                yield (frame.time if frame.time is not None else i / rate), frame

        for frame in one_per_slot(timed(), fps):
            yield frame.to_image()


def extract_clips(
    videos: Iterable[Path],
    out: Path,
    decode: Callable[[Path], Iterable[Any]],
    force: bool,
    log: Callable[[str], None],
) -> tuple[int, int]:
    """Write each video's decoded frames (``decode(path)`` yields Pillow images) to ``out/<video stem>/``
    as numbered JPEG files; a clip whose folder exists is skipped unless ``force``. Returns
    ``(extracted, skipped)``. A video that cannot be decoded, or has no frame, is a one-line
    :class:`DataError` naming it, and leaves no folder behind."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{TMP_PREFIX}*"):  # what a killed run left
        shutil.rmtree(stale, ignore_errors=True)
    todo = sorted(videos)
    done = skipped = 0
    for n, video in enumerate(todo, 1):
        dest = out / video.stem
        if dest.is_dir() and not force:
            skipped += 1
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{video.stem}-", dir=out))
        try:
            count = _write_frames(video, decode, tmp)
            if count == 0:
                raise DataError(f"{video}: no frame could be decoded; expected a readable video")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        done += 1
        if n % 100 == 0 or n == len(todo):
            log(f"frames: {n}/{len(todo)} videos ({skipped} already done)")
    return done, skipped


def _write_frames(video: Path, decode: Callable[[Path], Iterable[Any]], folder: Path) -> int:
    count = 0
    try:
        for count, image in enumerate(decode(video), 1):
            image.convert("RGB").save(folder / f"{count:05d}.jpg", quality=95)
    except (DataError, MissingDataError):
        raise
    except Exception as exc:  # PyAV raises its own error types for every kind of broken file
        reason = " ".join(str(exc).split())[:160]
        raise DataError(f"{video}: cannot decode as video ({type(exc).__name__}: {reason})") from exc
    return count


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = 25) -> None:
    """Write ``frames`` (``uint8[H, W, 3]``, even sides) as an MPEG-4 video (PyAV), for fixtures."""
    import av

    frames = list(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
