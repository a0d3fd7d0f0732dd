"""``mmbalance prepare nvgesture`` (PyAV) and one epoch of each NVGesture recipe on the fixture."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mmbalance.cli import main
from mmbalance.data.papers.nvgesture import write_fixture
from mmbalance.data.papers.nvgesture_lists import TRAIN_LIST
from mmbalance.errors import ConfigError, DataError
from mmbalance.prepare import prepare

RECIPES = Path(__file__).resolve().parents[4] / "recipes" / "nvgesture"


def frames_of(root: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    return {
        str(p.relative_to(root)): np.asarray(Image.open(p)) for p in sorted((root / "frames").rglob("*.*"))
    }


def folders(root: Path) -> dict[str, int]:
    """Each frame folder and its inode: a folder rewritten gets a new one."""
    return {str(p.relative_to(root)): p.stat().st_ino for p in (root / "frames").glob("Video_data/*/*/*")}


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    pytest.importorskip("av")
    return write_fixture(tmp_path / "videos", n=2)


def test_prepared_frames_equal_what_the_videos_hold(videos: Path, tmp_path: Path) -> None:
    prepare("nvgesture", videos, log=lambda _: None)
    expected = frames_of(write_fixture(tmp_path / "frames", n=2, videos=False))
    got = frames_of(videos)
    assert got.keys() == expected.keys() and len(got) == 12 * 2 * 12  # clips x streams x window frames
    assert all(np.array_equal(got[k], expected[k]) for k in got)


def test_prepare_skips_what_is_done_and_force_redoes_it(videos: Path) -> None:
    logs: list[str] = []
    prepare("nvgesture", videos, log=logs.append)
    first = folders(videos)
    prepare("nvgesture", videos, log=logs.append)
    assert "already prepared" in logs[-1] and folders(videos) == first
    shutil.rmtree(videos / ".mmbalance-prepared")
    gone = "frames/Video_data/class_02/subject1_test/depth"
    shutil.rmtree(videos / gone)
    prepare("nvgesture", videos, log=logs.append)
    assert "(1 frame folders written)" in logs[-1]
    after = folders(videos)
    assert {k: v for k, v in after.items() if k != gone} == {k: v for k, v in first.items() if k != gone}
    assert main(["prepare", "nvgesture", "--root", str(videos), "--force", "--quiet"]) == 0
    assert not set(folders(videos).items()) & set(after.items())


def test_a_failure_mid_clip_leaves_no_partial_folder(videos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbalance.data.papers import nvgesture_video

    save, calls = nvgesture_video._save, []

    def failing(frame: object, stream: str, path: Path) -> None:
        calls.append(path)
        if len(calls) == 12 * 2 + 5:  # the 5th frame of the second clip's RGB
            raise OSError("disk full")
        save(frame, stream, path)

    monkeypatch.setattr(nvgesture_video, "_save", failing)
    with pytest.raises(
        DataError, match=rf"{TRAIN_LIST} line 2: cannot extract frames from .*sk_color.avi \(disk full\)"
    ):
        prepare("nvgesture", videos, log=lambda _: None)
    assert list((videos / "frames/Video_data/class_01/subject2_train").iterdir()) == []  # no rgb, no temp
    assert not list((videos / "frames").rglob(".*tmp-*"))
    assert len(list((videos / "frames/Video_data/class_01/subject1_train/depth").iterdir())) == 12  # kept


def test_an_undecodable_video_names_its_line(videos: Path) -> None:
    (videos / "Video_data/class_02/subject2_train/sk_depth.avi").write_bytes(b"not a video" * 50)
    with pytest.raises(
        DataError, match=rf"{TRAIN_LIST} line 4: cannot extract frames from .*sk_depth.avi \(.*"
    ):
        prepare("nvgesture", videos, log=lambda _: None)
    assert not (videos / "frames/Video_data/class_02/subject2_train/depth").exists()


def test_a_missing_video_is_found_before_anything_is_written(videos: Path) -> None:
    (videos / "Video_data/class_03/subject2_test/sk_color.avi").unlink()
    with pytest.raises(
        DataError, match=r"test_correct_cvpr2016_v2.lst line 6: video .*sk_color.avi does not exist"
    ):
        prepare("nvgesture", videos, log=lambda _: None)
    assert not (videos / "frames").exists()


def test_without_pyav_prepare_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ConfigError, match="PyAV; pip install av"):
        prepare("nvgesture", tmp_path, log=lambda _: None)


@pytest.mark.parametrize("method", ["igm", "gaal", "mla", "joint"])
def test_one_epoch_of_each_recipe(method: str, tmp_path: Path) -> None:
    root = write_fixture(tmp_path / "data", n=2, videos=False)
    small = [f"model__encoders__{m}__width=0.125" for m in ("depth", "rgb", "flow")]
    extra = ["strategy__epoch_list=[1]"] if method == "igm" else []
    args = [
        "train",
        "--recipe",
        str(RECIPES / f"{method}.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
    ]
    args += ["--device", "cpu", "--quiet", f"dataset__root={root}", "dataset__frames=8", "dataset__size=32"]
    assert main([*args, "dataset__resize=40", *small, *extra]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == "nvgesture" and metrics["method"] == method
    assert set(metrics["test"]["modalities"]) == {"depth", "rgb", "flow"}
