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
    FLOW_DIR,
    FRAMES_DIR,
    SENSORS,
    TEST_LIST,
    TRAIN_LIST,
    Clip,
    parse_list,
)
from mmbalance.errors import ConfigError, DataError
from mmbalance.prepare import PREPARERS, done, mark_done

MAX_FRAMES = 80  # the released loader keeps at most 80 frames from the window's start
SUFFIX = {"rgb": ".jpg", "depth": ".png"}


def _av() -> Any:
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
    av = _av()
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


def _pattern(label: int, index: int, height: int, width: int) -> np.ndarray:
    """A grey frame: the top half codes the class (``40 * label + 20``), the bottom the frame index."""
    img = np.empty((height, width), np.uint8)
    img[: height // 2], img[height // 2 :] = 40 * label + 20, 8 * index
    return img


def write_fixture(
    root: str | Path, n: int = 2, classes: int = 3, frames: int = 12, flow: bool = True, videos: bool = True
) -> Path:
    """A tiny NVGesture under ``root``: both lists with ``n`` recordings per class (labels 1..``classes``)
    and split, each with uncompressed 32x24 ``sk_color.avi`` and ``sk_depth.avi`` of ``frames + 4``
    frames whose gesture window is ``[2, frames + 2)``, and (``flow``) user-provided flow images for the
    window under ``root/flow``. Every image shows :func:`_pattern` of its class and video frame index.
    ``videos=False`` writes, instead of the videos, the frame folders ``mmbalance prepare nvgesture``
    would extract from them (no PyAV needed). Returns ``root``."""
    root = Path(root)
    av = _av() if videos else None
    for split, list_name in (("train", TRAIN_LIST), ("test", TEST_LIST)):
        lines = []
        for c in range(classes):
            for k in range(n):
                key = f"Video_data/class_{c + 1:02d}/subject{k + 1}_{split}"
                _write_clip(av, root, key, c, frames, flow)
                window = f"2:{frames + 2}"
                lines.append(
                    f"path:./{key} depth:sk_depth:{window} color:sk_color:{window} "
                    f"duo_left:duo_left:3:{frames + 3} label:{c + 1}"
                )
        (root / list_name).write_text("\n".join(lines) + "\n")
    return root


def _write_clip(av: Any, root: Path, key: str, label: int, frames: int, flow: bool) -> None:
    """One recording's videos (or, without ``av``, its prepared frames) and flow images."""
    if av is not None:
        for video in ("sk_color", "sk_depth"):
            _write_avi(
                av, root / key / f"{video}.avi", [_pattern(label, i, 24, 32) for i in range(frames + 4)]
            )
    else:
        for stream in SENSORS:
            (root / FRAMES_DIR / key / stream).mkdir(parents=True, exist_ok=True)
    for j in range(frames):
        grey = _pattern(label, j + 2, 24, 32)
        if av is None:
            _image(
                np.stack([grey] * 3, axis=-1), root / FRAMES_DIR / key / "rgb" / f"{j:05d}.jpg", quality=95
            )
            _image(grey, root / FRAMES_DIR / key / "depth" / f"{j:05d}.png")
        if flow:
            (root / FLOW_DIR / key).mkdir(parents=True, exist_ok=True)
            _image(np.stack([grey] * 3, axis=-1), root / FLOW_DIR / key / f"{j:05d}.png")


def _image(array: np.ndarray, path: Path, **options: Any) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, **options)


def _write_avi(av: Any, path: Path, frames: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("rawvideo", rate=30)
        stream.height, stream.width = frames[0].shape
        stream.pix_fmt = "bgr24"
        for grey in frames:
            frame = av.VideoFrame.from_ndarray(np.stack([grey] * 3, axis=-1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
