"""A manifest as a table: CSV or Parquet on disk, a pandas DataFrame, or a mapping of columns.

Every cell is kept as read: CSV cells are strings, an empty one (or a Parquet null, or NaN in a
DataFrame) is ``None``, a missing value. Rows are numbered from 0; :meth:`Table.where` names a row the
way a user finds it (a CSV's line number, counting the header as line 1).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbalance.errors import DataError


class Table:
    """Columns of equal length, with where they came from (``source``) and the folder relative paths in
    them are resolved against (``root``)."""

    def __init__(
        self, columns: Mapping[str, Sequence[Any]], source: str, root: Path, csv_lines: bool
    ) -> None:
        self.columns = {str(k): [_missing_to_none(v) for v in vals] for k, vals in columns.items()}
        self.source, self.root, self._csv = source, root, csv_lines
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) > 1:
            raise DataError(
                f"{source}: columns have different lengths {sorted(lengths)}; expected one per row"
            )
        self.rows = lengths.pop() if lengths else 0
        if self.rows == 0:
            raise DataError(f"{source} has no rows; expected a manifest with a header and at least one row")

    def __len__(self) -> int:
        return self.rows

    def where(self, row: int, column: str | None = None) -> str:
        """``"train.csv line 12, column 'age'"``: where a user finds a cell."""
        place = f"line {row + 2}" if self._csv else f"row {row}"
        return f"{self.source} {place}" + (f", column {column!r}" if column else "")

    def column(self, name: str, what: str = "column") -> list[Any]:
        if name not in self.columns:
            raise DataError(
                f"{self.source} has no {what} {name!r}; "
                f"expected one of its columns: {', '.join(self.columns)}"
            )
        return self.columns[name]

    def path(self, value: Any) -> Path:
        """A path cell, relative to the manifest's folder unless absolute."""
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else self.root / p

    def select(self, rows: Sequence[int]) -> Table:
        """The rows ``rows`` as a new table (same source and root; row numbers restart at 0)."""
        cols = {k: [v[i] for i in rows] for k, v in self.columns.items()}
        return Table(cols, self.source, self.root, csv_lines=False)


def _missing_to_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values of nullable dtypes
        return None
    return value


def read_table(data: Any, root: str | Path | None = None) -> Table:
    """A :class:`Table` from a CSV or Parquet path, a DataFrame or a ``{column: values}`` mapping.

    Relative paths inside a file are resolved against the file's folder; inside a DataFrame or mapping,
    against ``root`` (default: the working directory).
    """
    if isinstance(data, Table):
        return data
    if isinstance(data, (str, Path)):
        return _read_file(Path(data))
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame, without importing pandas
        return Table(data.to_dict("list"), "the DataFrame", Path(root or "."), csv_lines=False)
    if isinstance(data, Mapping):
        return Table(data, "the table", Path(root or "."), csv_lines=False)
    raise DataError(f"data={type(data).__name__}; expected a CSV or Parquet path, a DataFrame or a mapping")


def _read_file(path: Path) -> Table:
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist; expected a CSV or Parquet file")
    root = path.resolve().parent
    if path.suffix.lower() in (".parquet", ".pq") or path.name.endswith((".parquet.brotli", ".parquet.gz")):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(
                f"manifest {path}: reading Parquet needs pyarrow; pip install 'mmbalance[data]'"
            ) from None
        try:
            cols = pq.read_table(path).to_pydict()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(
                f"manifest {path} is not a readable Parquet file ({type(exc).__name__}: {exc})"
            ) from exc
        return Table(cols, str(path), root, csv_lines=False)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            body = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"manifest {path} is not a readable CSV file ({type(exc).__name__}: {exc})") from exc
    if not header:
        raise DataError(f"manifest {path} is empty; expected a header row and at least one row")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"manifest {path} repeats column(s) {dupes} in its header; expected unique names")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(
                f"{path} line {i + 2} has {len(row)} cells; expected {len(header)} (one per header column)"
            )
    return Table({h: [r[j] for r in body] for j, h in enumerate(header)}, str(path), root, csv_lines=True)
