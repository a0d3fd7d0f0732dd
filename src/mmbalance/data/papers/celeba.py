"""CelebA (Liu et al., ICCV 2015) as GAAL's image–tabular task: the aligned face image and 39 binary
attributes predict the 40th, ``Attractive``.

Native layout under ``root`` (the official release; ``Anno/``, ``Eval/`` and ``Img/`` sub-folders are
also accepted)::

    img_align_celeba/000001.jpg ...        the aligned and cropped faces
    list_attr_celeba.txt                   line 1: the number of images; line 2: the 40 attribute names;
                                           then "000001.jpg -1  1 ..." (one value per attribute, -1 or 1)
    list_eval_partition.txt                "000001.jpg 0" (0 train, 1 val, 2 test)

Each attribute becomes 0 (-1) or 1 (1), as GAAL's CSV holds it; the split is the official partition
(162,770 / 19,867 / 19,962). See docs/datasets/celeba.md.
"""

from __future__ import annotations

from pathlib import Path

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers._tabimg import IMAGE, SPLIT, IndexTable, attribute_dataset, find, require_root
from mmbalance.data.papers._tabimg import write_jpg as _write_jpg
from mmbalance.data.registry import DATASETS
from mmbalance.errors import DataError

_HEADER = (  # line 2 of list_attr_celeba.txt
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair "
    "Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face "
    "Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair "
    "Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
)
ATTRIBUTES = _HEADER.split()
PARTS = {"0": "train", "1": "val", "2": "test"}
VALUES = {"-1": "0", "1": "1"}


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """``list_attr_celeba.txt``: the attribute names and ``{file: 0/1 values}``; a DataError names the
    line of the first malformed or repeated entry, or a count on line 1 that the file does not hold."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path} line 1: {(lines or [''])[0]!r}; expected the number of images")
    names = lines[1].split()
    rows: dict[str, list[str]] = {}
    for n, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        cells = line.split()
        values = [VALUES.get(v) for v in cells[1:]]
        if len(cells) != len(names) + 1 or None in values:
            raise DataError(
                f"{path} line {n}: {line.strip()[:80]!r}; expected an image file and {len(names)} "
                "values -1 or 1"
            )
        if cells[0] in rows:
            raise DataError(f"{path} line {n}: image {cells[0]!r} is listed twice; expected once")
        rows[cells[0]] = values  # type: ignore[assignment]
    if int(lines[0]) != len(rows):
        raise DataError(f"{path} line 1 says {int(lines[0])} images but the file lists {len(rows)}")
    return names, rows


def read_partition(path: Path) -> dict[str, str]:
    """``list_eval_partition.txt`` as ``{file: train|val|test}``, naming the line of a malformed entry."""
    parts: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2 or cells[1] not in PARTS:
            raise DataError(f"{path} line {n}: {line.strip()[:80]!r}; expected an image file and 0, 1 or 2")
        parts[cells[0]] = PARTS[cells[1]]
    return parts


@DATASETS.register("celeba")
def celeba(
    root: str | None = None, label: str = "Attractive", image_size: int = 225, augment: bool = True
) -> ManifestDataset:
    """CelebA under ``root``: ``image`` (``float32[3, image_size, image_size]``, ImageNet-normalised as
    GAAL does) and ``tabular`` (the 39 other attributes one-hot, ``float32[117]``), the class ``label``
    (``0``/``1``), split by ``list_eval_partition.txt``; ``augment`` crops and flips training images."""
    base = require_root("celeba", root)
    attr_file = find(base, ["list_attr_celeba.txt", "Anno/list_attr_celeba.txt"], "CelebA attributes")
    part_file = find(base, ["list_eval_partition.txt", "Eval/list_eval_partition.txt"], "CelebA partition")
    images = find(base, ["img_align_celeba", "Img/img_align_celeba"], "CelebA aligned images folder")
    names, rows = read_attributes(attr_file)
    parts = read_partition(part_file)
    files = list(rows)
    for i, f in enumerate(files):
        if f not in parts:
            raise DataError(f"{attr_file} line {i + 3}: image {f!r} has no line in {part_file}")
    columns: dict[str, list[str]] = {IMAGE: files, SPLIT: [parts[f] for f in files]}
    for j, name in enumerate(names):
        columns[name] = [rows[f][j] for f in files]
    table = IndexTable(columns, attr_file, images, first=3)
    image = {"size": image_size, "normalize": "imagenet", "augment": augment}
    return attribute_dataset(table, names, label, image)


def write_fixture(root: str | Path, n: int = 24) -> Path:
    """A tiny CelebA in the native layout: ``n`` faces (solid 8x8 JPEGs, red when ``Attractive`` is 1 and
    blue when 0), ``Smiling`` equal to ``Attractive`` and every other attribute alternating; rows cycle
    through train, train, val, test. Returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    attr_lines, part_lines = [str(n), " ".join(ATTRIBUTES)], []
    for i in range(n):
        name, positive = f"{i + 1:06d}.jpg", (i // 4) % 2 == 0
        _write_jpg(root / "img_align_celeba" / name, (220, 30, 30) if positive else (30, 30, 220))
        values = [
            ("1" if positive else "-1") if a in ("Attractive", "Smiling") else ("1" if (i + k) % 2 else "-1")
            for k, a in enumerate(ATTRIBUTES)
        ]
        attr_lines.append(name + " " + " ".join(f"{v:>2}" for v in values))
        part_lines.append(f"{name} {(0, 0, 1, 2)[i % 4]}")
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
    return root
