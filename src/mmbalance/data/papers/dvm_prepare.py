"""``mmbalance prepare dvm``: DVM-Car's tables joined into one row per advert, as MMCL (and GAAL after it)
build them, written to ``ROOT/dvm_prepared.csv``.

Per advert (``Ad_table.csv``): its entry price (``Price_table.csv``, matched on model and registration
year), one image of any viewpoint (the first ``Image_table.csv`` row of the advert), and the physical
size (``Ad_table (extra).csv``: wheelbase, height, width, length — a missing or zero value taken from
another advert of the same model, two values set by hand and three known errors corrected as MMCL does,
then integer jitter in [-50, 50] drawn from seed 2022). Adverts with an empty field, or whose mileage or
price is not a number, are dropped; so are models with fewer than :data:`MIN_ADVERTS` adverts. The split
is stratified by model: 50 % test, then 80 / 20 % of the rest train / val, from seed 2022. Values are
written raw; standardising them is the dataset's job (training rows only).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mmbalance.data.base import stratified_split
from mmbalance.data.preparers import PREPARERS, done, mark_done
from mmbalance.errors import DataError

OUTPUT, SEED, MIN_ADVERTS = "dvm_prepared.csv", 2022, 100
PHYSICAL = ["Wheelbase", "Height", "Width", "Length"]
CONTINUOUS = ["Adv_year", "Adv_month", "Reg_year", "Runned_Miles", "Price", "Seat_num", "Door_num"]
NUMERIC = [*PHYSICAL, *CONTINUOUS, "Entry_price", "Engine_size"]
CATEGORICAL = ["Color", "Bodytype", "Gearbox", "Fuel_type"]
AD_COLUMNS = ["Genmodel_ID", "Adv_ID", *CONTINUOUS, "Engin_size", *CATEGORICAL]
HEADER = ["Adv_ID", "image", "Genmodel_ID", "split", *NUMERIC, *CATEGORICAL]
SET_BY_HAND = {("69_36", "Wheelbase"): 2612.0, ("29_20", "Wheelbase"): 2788.0}
KNOWN_ERRORS = {("29_30", "Height", 805.0): 1805.0, ("59_29", "Wheelbase", 5246.0): 3106.0}
KNOWN_ERRORS[("43_9", "Wheelbase", 4065.0)] = 2580.0


def read_csv(path: Path, need: list[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line, {column: cell})`` per row of a CSV with a header (names stripped); names a missing column
    or a row with the wrong number of cells."""
    if not path.is_file():
        raise DataError(f"DVM table {path} does not exist; expected the tables of DVM-Car v2.0 there")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in (rows[0] if rows else [])]
    missing = [c for c in need if c not in header]
    if missing:
        raise DataError(f"{path} has no column(s) {missing}; its header is {header}")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {n} has {len(row)} cells; expected {len(header)}")
        out.append((n, {h: c.strip() for h, c in zip(header, row, strict=True)}))
    return out


def number(path: Path, line: int, column: str, cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise DataError(f"{path} line {line}, column {column!r}: {cell!r} is not a number") from None


def tables(root: Path) -> Path:
    return root / "tables_V2.0" if (root / "tables_V2.0").is_dir() else root


def first_images(root: Path) -> dict[str, str]:
    """Advert id -> the image path (under ``root``) of its first ``Image_table.csv`` row."""
    path = tables(root) / "Image_table.csv"
    images: dict[str, str] = {}
    for n, r in read_csv(path, ["Image_ID", "Image_name"]):
        parts, name = r["Image_ID"].split("$$"), r["Image_name"]
        folders = name.split("$$")[:4]
        if len(parts) < 2 or len(folders) < 4 or not all(folders):
            raise DataError(
                f"{path} line {n}: image {r['Image_ID']!r} / {name!r}; expected ids and names with $$"
            )
        images.setdefault("$$".join(parts[:2]), "/".join(["resized_DVM", *folders, name]))
    return images


def physical(root: Path) -> dict[str, list[str]]:
    """Advert id -> [wheelbase, height, width, length] as cells ('' when unknown), filled and jittered."""
    path = tables(root) / "Ad_table (extra).csv"
    rows = read_csv(path, ["Adv_ID", "Genmodel_ID", *PHYSICAL])
    values = np.full((len(rows), 4), np.nan)
    for i, (n, r) in enumerate(rows):
        for j, a in enumerate(PHYSICAL):
            v = SET_BY_HAND.get((r["Genmodel_ID"], a)) or (number(path, n, a, r[a]) if r[a] else np.nan)
            values[i, j] = KNOWN_ERRORS.get((r["Genmodel_ID"], a, v), v)
    first: dict[tuple[str, int], float] = {}
    for i, (_, r) in enumerate(rows):
        for j in range(4):
            if values[i, j] > 0:
                first.setdefault((r["Genmodel_ID"], j), values[i, j])
    rng = np.random.default_rng(SEED)
    jitter = rng.integers(-50, 51, size=values.shape)
    out = {}
    for i, (_, r) in enumerate(rows):
        cells = []
        for j in range(4):
            v = values[i, j] if values[i, j] > 0 else first.get((r["Genmodel_ID"], j), np.nan)
            cells.append("" if np.isnan(v) else f"{v + jitter[i, j]:g}")
        out[r["Adv_ID"]] = cells
    return out


def adverts(root: Path, log: Callable[[str], None]) -> list[dict[str, str]]:
    """The joined, filtered adverts (one dict of raw cells each, :data:`HEADER` but ``split``)."""
    path = tables(root) / "Ad_table.csv"
    price_path = tables(root) / "Price_table.csv"
    prices: dict[tuple[str, int], str] = {}
    for n, r in read_csv(price_path, ["Genmodel_ID", "Year", "Entry_price"]):
        if r["Year"] and r["Entry_price"]:
            number(price_path, n, "Entry_price", r["Entry_price"])
            year = int(number(price_path, n, "Year", r["Year"]))
            prices.setdefault((r["Genmodel_ID"], year), r["Entry_price"])
    images, sizes = first_images(root), physical(root)
    log(f"dvm: {len(images)} adverts with images, {len(prices)} model-year prices")
    kept = []
    for n, r in read_csv(path, AD_COLUMNS):
        image, year = images.get(r["Adv_ID"]), r["Reg_year"]
        price = prices.get((r["Genmodel_ID"], int(number(path, n, "Reg_year", year)))) if year else None
        if image is None or price is None or not all(r.values()):  # MMCL drops adverts with an empty cell
            continue
        if any(_not_number(r[c]) for c in ("Runned_Miles", "Price")):
            continue  # MMCL coerces these two to NaN and drops the advert
        for c in ("Adv_year", "Adv_month", "Reg_year", "Seat_num", "Door_num"):
            number(path, n, c, r[c])
        engine = number(path, n, "Engin_size", r["Engin_size"][:-1])  # "1.4L" -> 1.4
        size = dict(zip(PHYSICAL, sizes.get(r["Adv_ID"], [""] * 4), strict=True))
        kept.append({**r, **size, "Entry_price": price, "Engine_size": f"{engine:g}", "image": image})
    counts = Counter(a["Genmodel_ID"] for a in kept)
    return [a for a in kept if counts[a["Genmodel_ID"]] >= MIN_ADVERTS]


def _not_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return True
    return False


@PREPARERS.register("dvm")
def prepare_dvm(root: Path, force: bool, log: Callable[[str], None]) -> None:
    """Write ``root/dvm_prepared.csv`` (atomically; nothing to do when already prepared, unless ``force``)."""
    out = root / OUTPUT
    if done(root, "dvm") and out.is_file() and not force:
        log(f"dvm: {out} is already prepared (--force redoes it)")
        return
    rows = adverts(root, log)
    if not rows:
        raise DataError(f"{tables(root)}: no advert is complete and of a model with >= {MIN_ADVERTS} adverts")
    names = sorted({a["Genmodel_ID"] for a in rows})
    labels = torch.tensor([names.index(a["Genmodel_ID"]) for a in rows])
    for part, idx in stratified_split(labels, (0.4, 0.1, 0.5), SEED).items():
        for i in idx.tolist():
            rows[i]["split"] = part
    tmp = out.with_name(out.name + ".tmp")
    try:
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(HEADER)
            writer.writerows([a[c] for c in HEADER] for a in rows)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)  # only a failed write leaves it
    mark_done(root, "dvm")
    log(f"dvm: wrote {out}: {len(rows)} adverts of {len(names)} models")
