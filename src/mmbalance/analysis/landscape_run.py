"""A finished run's loss landscape and sharpness, written to a folder (``mmbalance landscape RUN_DIR``).

Files, in ``RUN_DIR/landscape/`` unless another folder is given: ``landscape_1d.csv`` (``alpha, fused,
<m>...``), ``landscape_2d.csv`` (``alpha, beta, fused, <m>...``), ``landscape_1d.png`` and
``landscape_2d.png`` (when matplotlib is installed) and ``sharpness.json``
(:func:`mmbalance.analysis.sharpness.measure_sharpness`, with its settings and the SHA-256 of the
``best.pt`` it measured). Everything is computed on the same fixed subset of the training split, with the
model of ``best.pt`` in eval mode. :func:`run_sharpness` reuses ``RUN_DIR/landscape/sharpness.json`` when
it was measured with the same settings on the same checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mmbalance.analysis.landscape import axis, filter_normalized_direction, surface, trainable
from mmbalance.analysis.sharpness import SharpnessSettings, generator, measure_sharpness
from mmbalance.data import BatchLoader
from mmbalance.experiment import Setup, load_run, write_csv
from mmbalance.types import Batch

FOLDER, SHARPNESS_FILE = "landscape", "sharpness.json"
Log = Callable[[str], None]


def training_subset(s: Setup, samples: int, seed: int) -> list[Batch]:
    """``samples`` rows of the training split (all of them when it has fewer), drawn with ``seed`` and kept
    in row order, as batches of the run's evaluation batch size on the run's device."""
    train = s.split["train"]
    chosen = torch.randperm(len(train), generator=generator(seed, 0))[:samples]
    rows = train[chosen].sort().values
    loader = BatchLoader(s.dataset, rows, s.config["data"]["eval_batch_size"])
    return [b.to(s.device) for b in loader]


def checkpoint_digest(run_dir: Path) -> str:
    return hashlib.sha256((run_dir / "best.pt").read_bytes()).hexdigest()


def read_sharpness(run_dir: str | Path, settings: SharpnessSettings) -> dict[str, Any] | None:
    """``RUN_DIR/landscape/sharpness.json`` if it holds ``settings`` and the digest of the current
    ``best.pt``, else ``None``."""
    run_dir = Path(run_dir)
    path = run_dir / FOLDER / SHARPNESS_FILE
    if not path.is_file() or not (run_dir / "best.pt").is_file():
        return None
    saved = json.loads(path.read_text())
    same = saved.get("settings") == settings.as_dict()
    return saved if same and saved.get("checkpoint_sha256") == checkpoint_digest(run_dir) else None


def _measure(run_dir: Path, s: Setup, batches: list[Batch], settings: SharpnessSettings, out: Path) -> dict:
    result = {**measure_sharpness(s.model, s.strategy, batches, settings)}
    result["checkpoint_sha256"] = checkpoint_digest(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SHARPNESS_FILE).write_text(json.dumps(result, indent=2))
    return result


def run_sharpness(
    run_dir: str | Path, settings: SharpnessSettings, device: str | None = None, log: Log | None = None
) -> dict[str, Any]:
    """The sharpness of a finished run, read back when ``RUN_DIR/landscape/sharpness.json`` was measured
    with ``settings`` on this ``best.pt``, otherwise measured (on ``device``, the run's own when ``None``)
    and written there."""
    run_dir = Path(run_dir)
    saved = read_sharpness(run_dir, settings)
    if saved is not None:
        return saved
    if log:
        log(f"{run_dir}: measuring sharpness on {settings.samples} training samples")
    s = load_run(run_dir, device)
    return _measure(
        run_dir, s, training_subset(s, settings.samples, settings.seed), settings, run_dir / FOLDER
    )


def landscape_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    points: int = 21,
    span: float = 1.0,
    settings: SharpnessSettings | None = None,
    device: str | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Write the 1-D and 2-D landscapes (``points`` per axis over ``[-span, span]``), their figures and the
    sharpness of ``RUN_DIR/best.pt`` into ``out`` (default ``RUN_DIR/landscape``); return the sharpness."""
    say: Log = log or (lambda msg: None)
    settings = settings or SharpnessSettings()
    coords = axis(points, span)
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / FOLDER
    s = load_run(run_dir, device)
    batches = training_subset(s, settings.samples, settings.seed)
    say(f"landscape of {run_dir}: {sum(b.size for b in batches)} training samples, on {s.device}")
    params = trainable(s.model)
    gen = generator(settings.seed, 1)
    d1, d2 = filter_normalized_direction(params, gen), filter_normalized_direction(params, gen)
    line = surface(s.model, s.strategy, batches, [d1], [(a,) for a in coords])
    say(f"1-D: {points} points, fused loss {line[points // 2]['fused']:.4g} at the checkpoint")
    grid = [(a, b) for b in coords for a in coords]
    tick = max(1, len(grid) // 10)

    def progress(i: int) -> None:
        if (i + 1) % tick == 0 or i + 1 == len(grid):
            say(f"2-D: {i + 1}/{len(grid)} points")

    plane = surface(s.model, s.strategy, batches, [d1, d2], grid, progress)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "landscape_1d.csv", line)
    write_csv(out / "landscape_2d.csv", plane)
    _figures(out, line, plane, str(run_dir), say)
    say(f"sharpness: power iteration (<= {settings.iterations}) and {settings.steps} ascent steps")
    result = _measure(run_dir, s, batches, settings, out)
    say(
        f"hessian_max_eig {result['hessian_max_eig']:.4g} ({result['hessian_iterations']} iterations), "
        f"rho_sharpness {result['rho_sharpness']:.4g} (rho {settings.rho}); files in {out}"
    )
    return result


def _figures(out: Path, line: list[dict], plane: list[dict], title: str, say: Log) -> None:
    try:
        from mmbalance.analysis.landscape_plots import contour_figure, line_figure
        from mmbalance.plots import save_png

        save_png(line_figure(line, title), out / "landscape_1d.png")
        save_png(contour_figure(plane, title), out / "landscape_2d.png")
    except ImportError as exc:  # matplotlib is an optional extra
        say(f"landscape PNGs skipped ({exc}); pip install 'mmbalance[report]'")
