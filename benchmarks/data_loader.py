"""The file-backed data layer: loader throughput and memory as the manifest grows.

    python -m benchmarks.data_loader [--rows 5000 50000] [--dir reports/bench-data] [--json PATH]

For each size it writes (once; reused afterwards) a manifest of 64x64 JPEG images and two numeric
columns, then reports

* the loader's samples/s over the training view (decoding, resizing, augmentation, collation) with 0 and
  2 worker processes, beside the samples/s a joint training step consumes on the same batches, and
* the peak resident memory of a one-epoch ``mmbalance train`` run on the whole manifest (in a fresh
  process; maximum over the process and its workers), and its ratio between the largest and the
  smallest manifest. Reading lazily from disk, memory should stay nearly flat as rows grow tenfold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from mmbalance.data import BatchLoader
from mmbalance.data.generate import write_manifest
from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.table import read_table

MODALITIES = "image=image:photo,tabular=columns:age,bp"
TRAIN = ["data__batch_size=64", "model__encoders__image__channels=[8,16]", "train__device=cpu", "--quiet"]
CHILD = """
import resource, sys
from mmbalance.cli import main
code = main(sys.argv[1:])
usage = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
peak = max(usage)
print("PEAK_KB", peak, file=sys.stderr)
sys.exit(code)
"""


def manifest(folder: Path, rows: int) -> Path:
    path = folder / f"jpeg{rows}" / "manifest.csv"
    if not path.exists():
        write_manifest(path.parent, rows, kinds=("image", "numeric"), image_size=64, image_format="jpg")
    return path


def loader_rate(path: Path, workers: int, rows: int) -> float:
    ds = ManifestDataset(read_table(path), MODALITIES)
    ds.fit(torch.arange(len(ds)))
    loader = BatchLoader(
        ds.train_view(0), torch.arange(min(rows, len(ds))), 64, shuffle=True, num_workers=workers
    )
    it = iter(loader)
    next(it)  # workers started and warm
    start, n = time.perf_counter(), 0
    for batch in it:
        n += batch.size
    return n / (time.perf_counter() - start)


def step_rate(path: Path, steps: int = 20) -> float:
    from mmbalance import config as config_mod
    from mmbalance.experiment import build, loaders, make_trainer

    cfg = config_mod.resolve(
        {"dataset": {"name": "manifest", "path": str(path), "modalities": MODALITIES}},
        [t for t in TRAIN if "=" in t],
    )
    s = build(cfg)
    make_trainer(s)
    train, batches = loaders(s)["train"], []
    while len(batches) < steps + 2:  # as many epochs as it takes
        batches += list(train)
    s.model.train()
    for b in batches[:2]:
        s.strategy.training_step(b, 0)
    timed = batches[2 : steps + 2]
    start = time.perf_counter()
    for b in timed:
        s.strategy.training_step(b, 0)
    return sum(b.size for b in timed) / (time.perf_counter() - start)


def peak_rss_mb(path: Path, out: Path) -> float:
    args = [
        "train",
        "--data",
        str(path),
        "--modalities",
        MODALITIES,
        "--epochs",
        "1",
        "--out",
        str(out),
        *TRAIN,
    ]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB"))
    return kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--dir", default="reports/bench-data")
    parser.add_argument("--rate-rows", type=int, default=2560, help="rows per throughput pass")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    root = Path(args.dir)
    results: dict[str, dict[str, float]] = {}
    for rows in args.rows:
        path = manifest(root, rows)
        r = {f"loader_samples_per_s_{w}_workers": loader_rate(path, w, args.rate_rows) for w in (0, 2)}
        r["train_step_samples_per_s"] = step_rate(path)
        run = root / f"run{rows}"
        subprocess.run(["rm", "-rf", str(run)], check=True)
        r["peak_rss_mb"] = peak_rss_mb(path, run)
        results[str(rows)] = r
        print(rows, {k: round(v, 1) for k, v in r.items()}, flush=True)
    sizes = [str(n) for n in args.rows]
    summary = {
        "device": "cpu",
        "results": results,
        "peak_rss_ratio": results[sizes[-1]]["peak_rss_mb"] / results[sizes[0]]["peak_rss_mb"],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
