"""What CREMA-D and Kinetics-Sounds share: one row per clip (a wav file and a folder of frames), the
papers' audio spectrogram and frame transforms, validation against the index files, and a validation
split carved from the training split."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.sources.frames import FRAME_SUFFIXES
from mmbalance.data.table import Table
from mmbalance.errors import ConfigError, DataError

#: The papers' STFT: n_fft 512, hop 353, log(|X| + 1e-7) of a clip tiled to the duration (seed-methods §2.7).
PAPER_STFT: dict[str, Any] = {"n_fft": 512, "hop": 353, "pad": "tile", "log_offset": 1e-7, "augment": False}


@dataclass(frozen=True)
class Clip:
    """One line of an index file: where it is (``index``, 1-based ``line``), the clip, its files (relative
    to the dataset root), its class and its split part (``train``, ``val`` or ``test``)."""

    index: str
    line: int
    clip: str
    audio: str
    visual: str
    label: str
    part: str


class IndexTable(Table):
    """A table whose rows come from several index files: :meth:`where` names each row's own file and line,
    and the modality (``audio`` or ``visual``) whose file is meant."""

    def __init__(
        self, columns: Mapping[str, Sequence[Any]], origins: Sequence[tuple[str, int]], root: Path
    ) -> None:
        super().__init__(
            columns, source=" + ".join(dict.fromkeys(o[0] for o in origins)), root=root, csv_lines=False
        )
        self.origins = list(origins)

    def where(self, row: int, column: str | None = None) -> str:
        index, line = self.origins[row]
        return f"{index} line {line}" + (f" ({column})" if column else "")


def read_rows(path: Path, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each non-blank record of the CSV index file ``path`` (1-based lines, a
    header included); a missing or unreadable file is a one-line :class:`DataError`."""
    if not path.is_file():
        raise DataError(f"index file {path} does not exist; expected the {name} split list there")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for cells in reader:
                if any(c.strip() for c in cells):
                    yield reader.line_num, [c.strip() for c in cells]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"index file {path} is not a readable CSV file ({type(exc).__name__}: {exc})"
        ) from exc


def index_files(root: Path) -> list[tuple[str, str]]:
    """``(file stem, split part)`` of the index files under ``root/annotations``: ``train`` and ``test``,
    and ``valid`` (part ``val``) when that file exists."""
    parts = [("train", "train"), ("valid", "val"), ("test", "test")]
    return [
        (stem, part)
        for stem, part in parts
        if stem != "valid" or (root / "annotations" / "valid.csv").is_file()
    ]


def check_fraction(val_fraction: float) -> None:
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, (int, float))
        or not 0 < val_fraction < 1
    ):
        raise ConfigError(f"val_fraction={val_fraction!r}; expected a number strictly between 0 and 1")


def carve_val(labels: Sequence[str], fraction: float, seed: int) -> list[bool]:
    """Which of these training rows go to validation: ``round(fraction * n)`` rows of each class of ``n``
    rows (at most ``n - 1``), drawn with numpy's generator seeded by ``seed``; the same for the same
    labels, fraction and seed."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=object)
    val = np.zeros(len(y), dtype=bool)
    for c in sorted(set(labels)):
        rows = rng.permutation(np.flatnonzero(y == c))
        val[rows[: min(len(rows) - 1, round(fraction * len(rows)))]] = True
    return val.tolist()


def has_frames(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in FRAME_SUFFIXES for p in folder.iterdir())


def check_clips(clips: Sequence[Clip], root: Path, drop_missing: bool) -> list[Clip]:
    """The clips whose wav file and frame folder (with at least one frame image) exist; a missing one is a
    :class:`DataError` naming its index file and line, or, with ``drop_missing``, left out (the released
    loaders' behaviour)."""
    kept = []
    for c in clips:
        problem = None
        if not (root / c.audio).is_file():
            problem = f"audio file {root / c.audio} does not exist"
        elif not (root / c.visual).is_dir():
            problem = f"frame folder {root / c.visual} does not exist"
        elif not has_frames(root / c.visual):
            problem = f"frame folder {root / c.visual} holds no frame images ({', '.join(FRAME_SUFFIXES)})"
        if problem is None:
            kept.append(c)
        elif not drop_missing:
            hint = "; run `mmbalance prepare` or pass drop_missing=true to leave such clips out"
            raise DataError(f"{c.index} line {c.line} (clip {c.clip!r}): {problem}{hint}")
    if not kept:
        raise DataError(f"{root}: no clip of the index files has its audio file and frames")
    return kept


def av_dataset(
    clips: Sequence[Clip],
    root: Path,
    audio: Mapping[str, Any],
    frames: int,
    frame_size: int,
    val_fraction: float,
    split_seed: int,
) -> ManifestDataset:
    """The clips as a :class:`ManifestDataset` with modalities ``audio`` (a spectrogram of the ``audio``
    options) and ``visual`` (``frames`` frames of ``frame_size`` pixels, ImageNet-normalised, random crop
    and flip in training), id column ``clip``, label ``label`` and split column ``split``: each clip's
    part, and when no clip is in ``val``, validation carved from the training part by :func:`carve_val`."""
    split = [c.part for c in clips]
    if "val" not in split:
        train = [i for i, c in enumerate(clips) if c.part == "train"]
        val = carve_val([clips[i].label for i in train], val_fraction, split_seed)
        for i, v in zip(train, val, strict=True):
            split[i] = "val" if v else "train"
    columns = {
        "clip": [c.clip for c in clips],
        "audio": [c.audio for c in clips],
        "visual": [c.visual for c in clips],
        "label": [c.label for c in clips],
        "split": split,
    }
    table = IndexTable(columns, [(c.index, c.line) for c in clips], root)
    modalities = {
        "audio": {"kind": "audio", "column": "audio", **PAPER_STFT, **audio},
        "visual": {"kind": "frames", "column": "visual", "frames": frames, "size": frame_size},
    }
    return ManifestDataset(table, modalities, label="label", split_column="split", id_column="clip")


def require_root(name: str, root: str | Path | None) -> Path:
    """``root`` as a path to an existing folder, or a one-line :class:`ConfigError`."""
    if root is None:
        raise ConfigError(f"dataset {name} needs root, the folder it was unpacked in: dataset__root=PATH")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"dataset {name} root={str(root)!r} is not a directory; expected the dataset's folder"
        )
    return path
