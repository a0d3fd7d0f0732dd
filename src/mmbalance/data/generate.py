"""Generated manifests in the exact on-disk layout of users' data, for tests, examples and benchmarks.

:func:`write_manifest` writes image files, audio files, ``.npy`` features, numeric and categorical columns
and text, each carrying some signal about the class, plus ``manifest.csv``. Nothing is downloaded.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ALL_KINDS = ("image", "audio", "numeric", "categorical", "text", "features")
WORDS = ("red", "green", "blue", "amber", "violet", "teal", "ochre", "slate")


def write_manifest(
    folder: str | Path,
    rows: int,
    kinds: Sequence[str] = ALL_KINDS,
    classes: int = 3,
    seed: int = 0,
    image_size: int = 16,
    image_format: str = "png",
    sample_rate: int = 8000,
    noise: float = 0.5,
) -> Path:
    """Write ``folder/manifest.csv`` with ``rows`` rows of ``classes`` classes (``label`` = ``c0``, ``c1``...)
    and the columns of ``kinds``: ``image`` (a file: a square whose brightness and position follow the
    class), ``audio`` (a wav: a tone whose pitch follows the class, 0.25 s), ``age``/``bp`` (numeric),
    ``sex`` (categorical), ``notes`` (text with a class word), ``emb`` (a ``.npy`` of 8 values). Each has
    Gaussian noise of scale ``noise``. Returns the manifest's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % classes
    rng.shuffle(y)
    columns: dict[str, list[object]] = {"id": [f"r{i}" for i in range(rows)], "label": [f"c{c}" for c in y]}
    if "image" in kinds:
        (folder / "images").mkdir(exist_ok=True)
        columns["photo"] = [
            _image(folder, i, int(c), classes, image_size, image_format, rng, noise) for i, c in enumerate(y)
        ]
    if "audio" in kinds:
        (folder / "audio").mkdir(exist_ok=True)
        columns["sound"] = [_audio(folder, i, int(c), sample_rate, rng, noise) for i, c in enumerate(y)]
    if "numeric" in kinds:
        columns["age"] = [f"{40 + 10 * c + 10 * noise * rng.normal():.1f}" for c in y]
        columns["bp"] = [f"{120 + 5 * rng.normal():.1f}" for _ in y]
    if "categorical" in kinds:
        columns["sex"] = [("F" if rng.random() < 0.5 else "M") for _ in y]
    if "text" in kinds:
        own = [WORDS[c % len(WORDS)] if rng.random() > noise / 2 else "grey" for c in y]
        columns["notes"] = [f"patient seen {w} {WORDS[rng.integers(len(WORDS))]}" for w in own]
    if "features" in kinds:
        (folder / "emb").mkdir(exist_ok=True)
        columns["emb"] = []
        for i, c in enumerate(y):
            v = rng.normal(0, noise, 8).astype(np.float32)
            v[c % 8] += 1.0
            np.save(folder / "emb" / f"{i}.npy", v)
            columns["emb"].append(f"emb/{i}.npy")
    path = folder / "manifest.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(columns))
        w.writerows(zip(*columns.values(), strict=True))
    return path


def _image(
    folder: Path, i: int, c: int, classes: int, size: int, fmt: str, rng: np.random.Generator, noise: float
) -> str:
    from PIL import Image

    img = rng.normal(0.3, 0.1 * noise, (size, size, 3))
    q = max(1, size // 4)
    top = (c * (size - q)) // max(1, classes - 1)
    img[top : top + q, q : 2 * q] += 0.5
    name = f"images/{i}.{fmt}"
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / name)
    return name


def _audio(folder: Path, i: int, c: int, rate: int, rng: np.random.Generator, noise: float) -> str:
    import soundfile

    t = np.arange(rate // 4) / rate
    wave = 0.5 * np.sin(2 * np.pi * (300 + 250 * c) * t) + 0.2 * noise * rng.normal(size=t.shape)
    name = f"audio/{i}.wav"
    soundfile.write(folder / name, wave.astype(np.float32), rate)
    return name
