"""NVGesture's index files (``nvgesture_{train,test}_correct_cvpr2016_v2.lst``) and where each clip's
prepared frames live.

A line lists one recording and its annotated gesture window per sensor::

    path:./Video_data/class_01/subject13_r0 depth:sk_depth:138:218 color:sk_color:138:218 \
        duo_left:duo_left:161:256 label:1

(one line in the file; wrapped here).
``path`` is the recording's folder under the dataset root, ``<sensor>:<video>:<start>:<end>`` gives the
video ``<video>.avi`` in that folder and the frames ``[start, end)`` of the gesture, and ``label`` is the
class, 1 to 25. Blank lines are skipped; anything else that does not parse is a one-line
:class:`DataError` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mmbalance.data.table import Table
from mmbalance.errors import DataError

TRAIN_LIST = "nvgesture_train_correct_cvpr2016_v2.lst"
TEST_LIST = "nvgesture_test_correct_cvpr2016_v2.lst"
CLASSES = 25
SENSORS = {"rgb": "color", "depth": "depth"}  # stream -> the .lst key of the sensor it is decoded from
FRAMES_DIR, FLOW_DIR = "frames", "flow"


@dataclass(frozen=True)
class Clip:
    """One line of a list: the recording's folder ``key`` (relative to the root), each sensor's video name
    and gesture window ``(video, start, end)``, the 0-based ``label`` and ``where`` (file and line)."""

    key: str
    sensors: dict[str, tuple[str, int, int]]
    label: int
    where: str

    def video(self, root: Path, stream: str) -> Path:
        """The ``.avi`` the stream is decoded from."""
        return root / self.key / f"{self.sensors[SENSORS[stream]][0]}.avi"

    def folder(self, stream: str) -> str:
        """The stream's frame folder, relative to the root: ``frames/<key>/<stream>`` for the streams that
        ``mmbalance prepare nvgesture`` extracts, ``flow/<key>`` for the user-provided optical flow."""
        return f"{FLOW_DIR}/{self.key}" if stream == "flow" else f"{FRAMES_DIR}/{self.key}/{stream}"


def _window(where: str, token: str, value: str) -> tuple[str, int, int]:
    parts = value.split(":")
    try:
        video, start, end = parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        video, start, end = "", -1, -1
    if len(parts) != 3 or not video or not 0 <= start < end:
        raise DataError(f"{where}: {token!r}; expected <sensor>:<video>:<start>:<end> with 0 <= start < end")
    return video, start, end


def parse_line(text: str, where: str) -> Clip:
    """One non-blank line as a :class:`Clip` (``where`` names it in errors)."""
    fields: dict[str, str] = {}
    for token in text.split():
        key, colon, value = token.partition(":")
        if not colon or not value:
            raise DataError(f"{where}: {token!r}; expected key:value fields (path:, color:, depth:, label:)")
        fields[key] = value
    missing = [k for k in ("path", *SENSORS.values(), "label") if k not in fields]
    if missing:
        raise DataError(f"{where}: no {', '.join(missing)} field; expected path:, color:, depth: and label:")
    parts = [p for p in PurePosixPath(fields["path"]).parts if p != "."]
    if not parts or fields["path"].startswith("/") or ".." in parts:
        raise DataError(f"{where}: path {fields['path']!r}; expected a folder under the dataset root")
    label = fields["label"]
    if not label.isdigit() or not 1 <= int(label) <= CLASSES:
        raise DataError(f"{where}: label {label!r}; expected a class number from 1 to {CLASSES}")
    sensors = {s: _window(where, f"{s}:{fields[s]}", fields[s]) for s in SENSORS.values()}
    return Clip("/".join(parts), sensors, int(label) - 1, where)


def parse_list(path: Path) -> list[Clip]:
    """Every clip of the list file ``path``, in order; a missing file or a repeated recording is a
    one-line :class:`DataError`."""
    if not path.is_file():
        raise DataError(f"NVGesture list {path} does not exist; expected the file of the NVGesture release")
    clips, seen = [], {}
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.strip():
            clip = parse_line(text, f"{path} line {n}")
            if clip.key in seen:
                raise DataError(f"{clip.where}: recording {clip.key} repeats {seen[clip.key]}; expected once")
            clips.append(clip)
            seen[clip.key] = clip.where
    return clips


class LstTable(Table):
    """The clips of both lists as a table whose :meth:`where` names each row's list file and line."""

    def __init__(self, columns: dict[str, list[Any]], wheres: list[str], root: Path) -> None:
        super().__init__(
            columns, " and ".join(sorted({w.rsplit(" line ", 1)[0] for w in wheres})), root, False
        )
        self.wheres = wheres

    def where(self, row: int, column: str | None = None) -> str:
        return self.wheres[row] + (f", column {column!r}" if column else "")
