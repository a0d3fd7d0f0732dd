"""``mmbalance prepare cremad``: frames at 1 fps, skipping clips already done, one folder per clip written
atomically. The skip/atomic logic is exercised with animated GIFs decoded by Pillow; the PyAV decoding of
real videos runs where PyAV is installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from mmbalance.cli import main
from mmbalance.data import DATASETS
from mmbalance.data.papers import cremad as cd
from mmbalance.data.papers._video import TMP_PREFIX, extract_clips, one_per_slot
from mmbalance.errors import DataError, MissingDataError
from mmbalance.prepare import prepare

decoded: list[Path] = []


def gif_frames(path: Path) -> Iterator[Image.Image]:
    """Every frame of an animated GIF (a real decoder, for the extraction logic), noting each one."""
    with Image.open(path) as im:
        for frame in ImageSequence.Iterator(im):
            decoded.append(path)
            yield frame.convert("RGB")


def write_gif(path: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)) for _ in range(count)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


def test_one_per_slot_keeps_the_first_frame_of_each_second() -> None:
    times = [i / 10 for i in range(25)]  # 2.5 s at 10 fps
    assert list(one_per_slot(((t, i) for i, t in enumerate(times)), 1.0)) == [0, 10, 20]
    assert list(one_per_slot([(0.0, "a"), (0.99, "b"), (3.2, "c")], 1.0)) == ["a", "c"]  # a gap skips slots
    assert list(one_per_slot(((t, i) for i, t in enumerate(times)), 2.0)) == [0, 5, 10, 15, 20]


def test_clips_with_a_folder_are_skipped_and_force_redoes_them(tmp_path: Path) -> None:
    videos = [write_gif(tmp_path / f"clip{i}.gif", 3 + i, seed=i) for i in range(3)]
    out = tmp_path / "frames"
    (out / "clip0").mkdir(parents=True)
    (out / "clip0" / "mine.jpg").write_bytes(b"kept")
    assert extract_clips(videos, out, gif_frames, force=False, log=lambda _: None) == (2, 1)
    assert (out / "clip0" / "mine.jpg").read_bytes() == b"kept"
    assert sorted(p.name for p in (out / "clip2").iterdir()) == [f"{i:05d}.jpg" for i in range(1, 6)]
    assert extract_clips(videos, out, gif_frames, force=False, log=lambda _: None) == (0, 3)
    assert extract_clips(videos, out, gif_frames, force=True, log=lambda _: None) == (3, 0)
    assert sorted(p.name for p in (out / "clip0").iterdir()) == ["00001.jpg", "00002.jpg", "00003.jpg"]


def breaks_midway(path: Path) -> Iterator[Image.Image]:
    """GIF frames, but a file named ``*_bad*`` fails after its second frame (as a corrupt stream does)."""
    for i, frame in enumerate(gif_frames(path)):
        if "_bad" in path.name and i == 2:
            raise OSError("Invalid data found when processing input")
        yield frame


@pytest.mark.parametrize("damage", ["garbage", "midway"])
def test_a_broken_video_is_one_line_and_leaves_no_folder(tmp_path: Path, damage: str) -> None:
    good = write_gif(tmp_path / "a_good.gif", 3)
    bad = write_gif(tmp_path / "b_bad.gif", 6, seed=1)
    if damage == "garbage":
        bad.write_bytes(b"not a video at all")
    out = tmp_path / "frames"
    (out / f"{TMP_PREFIX}left-by-a-killed-run").mkdir(parents=True)
    decoded.clear()
    with pytest.raises(DataError, match=r"b_bad\.gif: cannot decode as video") as err:
        extract_clips([good, bad], out, breaks_midway, force=False, log=lambda _: None)
    assert "\n" not in str(err.value)
    if damage == "midway":
        assert decoded.count(bad) == 3  # two frames were written before the failure
    assert sorted(p.name for p in out.iterdir()) == ["a_good"]  # no partial folder, no temporary one
    assert extract_clips([good], out, gif_frames, force=False, log=lambda _: None) == (0, 1)


def test_prepare_without_videos_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=r"VideoFlash does not exist; expected the CREMA-D videos"):
        prepare("cremad", tmp_path, log=lambda _: None)
    assert main(["prepare", "cremad", "--root", str(tmp_path), "--quiet"]) == 2


def test_prepare_extracts_frames_at_1_fps_with_pyav_and_then_skips(tmp_path: Path) -> None:
    pytest.importorskip("av")
    root = cd.write_fixture(tmp_path / "cremad", n=2, n_test=1, frames=False, videos=True)
    messages: list[str] = []
    prepare("cremad", root, log=messages.append)
    clips = sorted(p.stem for p in (root / "VideoFlash").iterdir())
    for clip in clips:  # 2.5 s at 10 fps: the frames at 0, 1 and 2 s
        assert sorted(p.name for p in (root / "Image-01-FPS" / clip).iterdir()) == [
            "00001.jpg",
            "00002.jpg",
            "00003.jpg",
        ]
    emotion = cd.EMOTIONS.index(clips[0].split("_")[2])
    with Image.open(root / "Image-01-FPS" / clips[0] / "00002.jpg") as im:
        assert np.abs(np.asarray(im, dtype=float).mean(axis=(0, 1)) - cd.PALETTE[emotion]).max() < 20
    assert f"frames of {len(clips)} videos extracted, 0 already done" in messages[-1]
    prepare("cremad", root, log=messages.append)
    assert f"{len(clips)} already done" in messages[-1]
    assert len(DATASETS.get("cremad")(root=str(root), val_fraction=0.5)) == len(clips)
