"""DVM-Car (Huang et al., 2021) as GAAL's image–tabular task, with MMCL's preprocessing: one image and 17
fields of a used-car advert predict the car model (286 models with at least 100 adverts).

Native layout under ``root`` (DVM-Car v2.0: the tables and the resized images)::

    tables_V2.0/Ad_table.csv, Ad_table (extra).csv, Price_table.csv, Image_table.csv   (or in root itself)
    resized_DVM/<Maker>/<Genmodel>/<Year>/<Color>/<Image_name>.jpg

``mmbalance prepare dvm --root ROOT`` joins the tables into ``ROOT/dvm_prepared.csv`` once
(:mod:`mmbalance.data.papers.dvm_prepare`); the dataset reads that file. See docs/datasets/dvm.md.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.papers._tabimg import require_root
from mmbalance.data.papers._tabimg import write_jpg as _write_jpg
from mmbalance.data.papers.dvm_prepare import CATEGORICAL, MIN_ADVERTS, NUMERIC, OUTPUT, PHYSICAL
from mmbalance.data.registry import DATASETS
from mmbalance.data.table import read_table
from mmbalance.errors import DataError


@DATASETS.register("dvm")
def dvm(root: str | None = None, image_size: int = 128, augment: bool = True) -> ManifestDataset:
    """DVM-Car under ``root``, prepared: ``image`` (``float32[3, image_size, image_size]``, pixels / 255 with
    no mean/std normalisation, as GAAL's DVM pipeline) and ``tabular`` (13 numeric fields standardised on the
    training rows, each with a missing indicator, and 4 categorical fields one-hot: ``float32[80]`` on the
    full data), the class ``Genmodel_ID``, the prepared split; ``augment`` crops and flips training images."""
    base = require_root("dvm", root)
    path = base / OUTPUT
    if not path.is_file():
        raise DataError(f"{path} does not exist; run `mmbalance prepare dvm --root {base}` first")
    table = read_table(path)
    modalities = {
        "image": {
            "kind": "image",
            "column": "image",
            "size": image_size,
            "normalize": "none",
            "augment": augment,
        },
        "tabular": {
            "kind": "columns",
            "columns": [*NUMERIC, *CATEGORICAL],
            "numeric": NUMERIC,
            "categorical": CATEGORICAL,
        },
    }
    return ManifestDataset(table, modalities, label="Genmodel_ID", split_column="split", id_column="Adv_ID")


MODELS = [  # (maker, model, id, image colour, body type, adverts)
    ("Abarth", "124 Spider", "2_1", (220, 30, 30), "Convertible", MIN_ADVERTS + 3),
    ("Audi", "A3", "7_2", (30, 30, 220), "Hatchback", MIN_ADVERTS),
    ("Bentley", "Arnage", "8_1", (30, 200, 30), "Saloon", 5),  # too few adverts: filtered out
]
AD = "Maker, Genmodel, Genmodel_ID, Adv_ID, Adv_year, Adv_month, Color, Reg_year, Bodytype, Runned_Miles, "
AD += "Engin_size, Gearbox, Fuel_type, Price, Seat_num, Door_num"


def write_fixture(root: str | Path) -> Path:
    """A tiny DVM-Car v2.0 in the native layout: three models (solid 8x8 JPEGs in a colour per model, a body
    type per model), the first with three adverts the preparation drops (an empty colour, a mileage that is
    not a number, a registration year without a price), a second image for each of its adverts, and one
    zero wheelbase to fill from another advert. Returns ``root``."""
    root = Path(root)
    t = root / "tables_V2.0"
    t.mkdir(parents=True, exist_ok=True)
    ads, images, extra, prices = [AD.split(",")], [], [], []  # " Genmodel": padded names
    for maker, model, gid, rgb, body, count in MODELS:
        prices += [[maker, model, gid, str(y), str(15000 + 500 * (y - 2015))] for y in range(2015, 2020)]
        for k in range(count):
            adv, year, colour = f"{gid}$${k}", 2015 + k % 5, ("Red", "Blue", "Black")[k % 3]
            miles = "n/a" if k == MIN_ADVERTS + 1 else str(1000 * k)
            ads.append([maker, model, gid, adv, "2020", str(1 + k % 12), "" if k == MIN_ADVERTS else colour])
            ads[-1] += [str(2030 if k == MIN_ADVERTS + 2 else year), body, miles, f"{1.0 + k % 3 / 2}L"]
            ads[-1] += [("Manual", "Automatic")[k % 2], "Petrol", str(9000 + 10 * k), "4", "5"]
            for v in range(2 if gid == "2_1" else 1):
                name = f"{maker}$${model}$${year}$${colour}$${adv}$$image_{v}.jpg"
                images.append([gid, f"{adv}$${v}", name, str(v), "P"])
                shade = rgb if v == 0 else (255 - rgb[0], 255 - rgb[1], 255 - rgb[2])
                _write_jpg(root / "resized_DVM" / maker / model / str(year) / colour / name, shade)
            wheelbase = "0" if (gid, k) == ("2_1", 0) else str(2500 + 100 * len(prices) // 5)
            extra.append([maker, gid, adv, wheelbase, "1500", "1800", str(4000 + k)])  # PHYSICAL order
    _write(t / "Ad_table.csv", ads)
    _write(
        t / "Image_table.csv",
        [["Genmodel_ID", "Image_ID", "Image_name", "Predicted_viewpoint", "Quality_check"]],
    )
    _write(t / "Image_table.csv", images, mode="a")
    _write(t / "Price_table.csv", [["Maker", "Genmodel", "Genmodel_ID", "Year", "Entry_price"], *prices])
    _write(t / "Ad_table (extra).csv", [["Maker", "Genmodel_ID", "Adv_ID", *PHYSICAL], *extra])
    return root


def _write(path: Path, rows: list[list[str]], mode: str = "w") -> None:
    with path.open(mode, newline="") as f:
        csv.writer(f).writerows(rows)
