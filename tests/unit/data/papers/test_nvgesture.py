"""The nvgesture dataset on its fixture: shapes, the split, streams aligned frame for frame, errors that
name the list file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmbalance.data import build_dataset
from mmbalance.data.papers.nvgesture import nvgesture, write_fixture
from mmbalance.data.papers.nvgesture_lists import TEST_LIST, TRAIN_LIST
from mmbalance.errors import ConfigError, DataError

SMALL = {"frames": 8, "size": 32, "resize": 40}  # fixture clips hold 12 frames of 32x24


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("nvg"), n=3, videos=False)


def fitted(root: Path, **options: object):  # type: ignore[no-untyped-def]
    ds = nvgesture(root=str(root), **{**SMALL, **options})
    parts = ds.split()
    ds.fit(parts["train"], {k: parts[k] for k in ("val", "test")})
    return ds, parts


def codes(x: torch.Tensor, scale: str = "i3d") -> tuple[list[int], list[int]]:
    """(video frame index, class) per frame of a clip, read back from the fixture's pattern."""
    v = (x[:, 0] + 1) * 255 / 2 if scale == "i3d" else x[:, 0] * 255
    return (v[:, -1].mean(-1) / 8).round().int().tolist(), (
        (v[:, 0].mean(-1) - 20) / 40
    ).round().int().tolist()


def test_registered_with_shapes_dtypes_and_labels(root: Path) -> None:
    ds = build_dataset("nvgesture", root=str(root), **SMALL)
    parts = ds.split()
    ds.fit(parts["train"], {k: parts[k] for k in ("val", "test")})
    assert ds.modalities == ["depth", "rgb", "flow"] and ds.num_classes == 3
    assert [ds.input_shape(m) for m in ds.modalities] == [(8, 1, 32, 32), (8, 3, 32, 32), (8, 2, 32, 32)]
    sample = ds[0]
    assert all(
        x.dtype == torch.float32 and tuple(x.shape) == ds.input_shape(m) for m, x in sample.inputs.items()
    )
    assert all(sample.present.values()) and sample.label == 0
    assert ds.ids[0] == "Video_data/class_01/subject1_train" and ds.default_encoders["rgb"] == {"name": "i3d"}
    assert all(x.min() >= -1 and x.max() <= 1 for x in sample.inputs.values())


def test_split_is_the_lists_with_a_seeded_stratified_val(root: Path) -> None:
    ds, parts = fitted(root)
    assert parts["test"].tolist() == list(range(9, 18))  # the test list's 9 clips
    assert sorted(parts["train"].tolist() + parts["val"].tolist()) == list(range(9))
    assert sorted(ds.labels[parts["val"]].tolist()) == [0, 1, 2]  # round(0.1 * 3) -> at least 1 per class
    again, _ = fitted(root)
    assert again.split()["val"].tolist() == parts["val"].tolist()
    draws = {tuple(fitted(root, split_seed=s)[1]["val"].tolist()) for s in range(6)}
    assert len(draws) > 1


def test_every_stream_gets_the_same_window_and_crop(root: Path) -> None:
    ds, _ = fitted(root)
    view, starts = ds.train_view(seed=3), set()
    for epoch in range(4):
        for row in range(9):
            sample = view[(row, epoch)]
            (frames, cls), *others = [codes(x) for x in sample.inputs.values()]
            assert all(o == (frames, cls) for o in others)  # aligned in time, same class everywhere
            assert cls == [sample.label] * 8 and frames == list(range(frames[0], frames[0] + 8))
            starts.add(frames[0])
            depth, rgb, flow = sample.inputs.values()  # same crop: the half boundary sits on the same row
            assert torch.equal(depth[:, 0], flow[:, 0]) and torch.equal(flow[:, 0], flow[:, 1])
            torch.testing.assert_close(rgb[:, 1], depth[:, 0], atol=0.04, rtol=0)
    assert starts == {2, 3, 4, 5, 6}  # video frames 2..13, windows of 8 start at 2 + [0, 4]


def test_evaluation_takes_the_centred_window(root: Path) -> None:
    ds, _ = fitted(root)
    for x in ds[4].inputs.values():
        assert codes(x)[0] == list(range(4, 12))
    assert torch.equal(ds[4].inputs["rgb"], ds[4].inputs["rgb"])


def test_released_normalisation_and_stream_choice(tmp_path: Path) -> None:
    root = write_fixture(tmp_path, n=2, videos=False, flow=False)
    ds, _ = fitted(root, streams=["rgb", "depth"], normalize="released")
    assert ds.modalities == ["depth", "rgb"]  # always IGM's order
    depth, rgb = ds[0].inputs["depth"], ds[0].inputs["rgb"]
    assert codes(depth, "unit")[1] == [0] * 8 and depth.min() >= 0
    mean = torch.tensor((0.485, 0.456, 0.406))[:, None, None]
    std = torch.tensor((0.229, 0.224, 0.225))[:, None, None]
    torch.testing.assert_close((rgb * std + mean)[:, 0], depth[:, 0], atol=0.02, rtol=0)
    with pytest.raises(DataError, match=r"train_correct_cvpr2016_v2.lst line 1: no flow frames in .*flow"):
        nvgesture(root=str(root), **SMALL)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (
            "path:./Video_data/class_01/subject1_train depth:sk_depth:2:14 color:sk_color:2:14 label:26",
            "label '26'; expected a class number from 1 to 25",
        ),
        (
            "path:./Video_data/class_01/subject1_train depth:sk_depth:9:4 color:sk_color:2:14 label:1",
            "'depth:sk_depth:9:4'; expected <sensor>:<video>:<start>:<end>",
        ),
        ("path:./Video_data/class_01/subject1_train color:sk_color:2:14 label:1", "no depth field"),
        ("path:../elsewhere depth:sk_depth:2:14 color:sk_color:2:14 label:1", "path '../elsewhere'"),
        (
            "path:./Video_data/class_02/subject1_train depth:sk_depth:2:14 color:sk_color:2:14 label:2",
            "recording Video_data/class_02/subject1_train repeats .* line 4",
        ),
        ("oops depth:sk_depth:2:14", "'oops'; expected key:value fields"),
    ],
)
def test_malformed_lines_name_the_list_and_line(root: Path, tmp_path: Path, line: str, fragment: str) -> None:
    bad = _copy(root, tmp_path / "bad")
    lines = (bad / TRAIN_LIST).read_text().splitlines()
    lines[6] = line
    (bad / TRAIN_LIST).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{TRAIN_LIST} line 7: {fragment}") as err:
        nvgesture(root=str(bad), **SMALL)
    assert "\n" not in str(err.value)


def test_missing_or_uneven_frames_name_the_line(root: Path, tmp_path: Path) -> None:
    bad = _copy(root, tmp_path / "bad")
    clip = bad / "frames/Video_data/class_02/subject2_test"
    (clip / "depth/00011.png").unlink()
    with pytest.raises(
        DataError, match=rf"{TEST_LIST} line 5: frame counts differ \(depth 11, rgb 12, flow 12\)"
    ):
        nvgesture(root=str(bad), **SMALL)
    import shutil

    shutil.rmtree(clip / "rgb")
    with pytest.raises(DataError, match=rf"{TEST_LIST} line 5: no rgb frames .*mmbalance prepare nvgesture"):
        nvgesture(root=str(bad), **SMALL)
    (bad / TEST_LIST).unlink()
    with pytest.raises(DataError, match=f"NVGesture list .*{TEST_LIST} does not exist"):
        nvgesture(root=str(bad), **SMALL)


def test_an_unreadable_frame_names_the_list_line(root: Path, tmp_path: Path) -> None:
    bad = _copy(root, tmp_path / "bad")
    for f in (bad / "frames/Video_data/class_01/subject2_train/rgb").iterdir():
        f.write_bytes(b"not an image")
    ds, _ = fitted(bad)
    with pytest.raises(DataError, match=rf"{TRAIN_LIST} line 2, column 'rgb': cannot read .* as frames"):
        ds[1]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"root": None}, "dataset nvgesture needs root"),
        ({"streams": ["rgb", "audio"]}, "streams=\\['rgb', 'audio'\\]; expected distinct names"),
        ({"normalize": "zscore"}, "normalize='zscore'; expected one of i3d, released"),
        ({"val_fraction": 1.0}, "val_fraction=1.0; expected a number in \\(0, 1\\)"),
        ({"resize": 16}, "resize=16; expected an integer >= size 32"),
        ({"frames": 0}, "frames=0; expected a positive integer"),
    ],
)
def test_bad_options_are_one_line_errors(root: Path, options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        nvgesture(**{"root": str(root), **SMALL, **options})
