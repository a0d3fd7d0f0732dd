"""``mmbalance prepare nvgesture``: the RGB and depth frames of every listed gesture, decoded once from the
sensor videos with PyAV; and :func:`write_fixture`, a tiny NVGesture in the native layout."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmbalance.data.papers.nvgesture_lists import (
    SENSORS,
    TEST_LIST,
    TRAIN_LIST,
    Clip,
    parse_list,
)
from mmbalance.data.preparers import PREPARERS, done, mark_done
from mmbalance.errors import ConfigError, DataError

MAX_FRAMES = 80  # the released loader keeps at most 80 frames from the window's start
SUFFIX = {"rgb": ".jpg", "depth": ".png"}


def pyav() -> Any:
    try:
        import av
    except ImportError:
        raise ConfigError(
            "mmbalance prepare nvgesture decodes the videos with PyAV; pip install av"
        ) from None
    return av


def extract(av: Any, clip: Clip, root: Path, stream: str) -> int:
    """Write the frames ``[start, min(end, start + 80))`` of the stream's video to its frame folder
    (``00000.jpg``... for RGB, lossless ``00000.png``... for depth, the video's blue channel as the
    released loader's channel 0 of BGR) through a temporary folder renamed at the end; the frame count."""
    _, start, end = clip.sensors[SENSORS[stream]]
    out = root / clip.folder(stream)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count, stop = 0, min(end, start + MAX_FRAMES)
    try:
        with av.open(str(clip.video(root, stream))) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= stop:
                    break
                if i >= start:
                    _save(frame, stream, tmp / f"{count:05d}{SUFFIX[stream]}")
                    count += 1
    except (OSError, av.FFmpegError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = " ".join(str(exc).split())[:160]
        raise DataError(
            f"{clip.where}: cannot extract frames from {clip.video(root, stream)} ({reason})"
        ) from exc
    if count == 0:
        shutil.rmtree(tmp)
        raise DataError(
            f"{clip.where}: {clip.video(root, stream)} has no frame in [{start}, {end}); "
            "expected the gesture's frames"
        )
    if out.exists():  # a forced redo replaces the old folder
        shutil.rmtree(out)
    tmp.rename(out)
    return count


def _save(frame: Any, stream: str, path: Path) -> None:
    from PIL import Image

    if stream == "rgb":
        frame.to_image().save(path, quality=95)
    else:
        Image.fromarray(np.ascontiguousarray(frame.to_ndarray(format="rgb24")[..., 2])).save(path)


@PREPARERS.register("nvgesture")
def prepare_nvgesture(root: Path, force: bool, log: Callable[[str], None]) -> None:
    """Extract the RGB (``color``) and depth frames of every clip of both lists under ``root/frames``.
    Clips whose folders exist are skipped unless ``force``; every video is checked to exist first.
    Optical flow is not computed (it needs OpenCV's TV-L1; see docs/datasets/nvgesture.md)."""
    if done(root, "nvgesture") and not force:
        log(f"nvgesture: frames under {root} already prepared (--force redoes them)")
        return
    av = pyav()
    clips = parse_list(root / TRAIN_LIST) + parse_list(root / TEST_LIST)
    for clip in clips:
        for stream in SENSORS:
            if not clip.video(root, stream).is_file():
                raise DataError(f"{clip.where}: video {clip.video(root, stream)} does not exist")
    made = 0
    for n, clip in enumerate(clips, start=1):
        for stream in SENSORS:
            if force or not (root / clip.folder(stream)).is_dir():
                extract(av, clip, root, stream)
                made += 1
        if n % 50 == 0 or n == len(clips):
            log(f"nvgesture: {n}/{len(clips)} clips ({made} frame folders written)")
    mark_done(root, "nvgesture")
