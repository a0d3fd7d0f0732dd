"""A tiny NVGesture in the native layout (lists, sensor videos, flow images) for tests and examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbalance.data.papers.nvgesture_lists import FLOW_DIR, FRAMES_DIR, SENSORS, TEST_LIST, TRAIN_LIST
from mmbalance.data.papers.nvgesture_video import pyav


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
    av = pyav() if videos else None
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
