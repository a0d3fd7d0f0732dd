"""``mmbalance compare``: every (dataset, method, seed) with one budget, resumable, summarised.

Layout of the report directory: ``runs/<dataset>/<dir>/seed<k>/`` (standard run directories; ``<dir>`` is
the method's label, or for a variant such as ``igm[sam_mode=off]`` a name derived from it by
:func:`mmbalance.variants.run_dir_name`; a finished run is reused on re-run only if its config is identical,
and a directory holding another config stops the comparison before anything runs), ``results.csv`` (one
row per run, with its epochs and config hash), ``summary.csv`` and ``summary.md`` (mean ± std over seeds)
and ``report.html`` (:mod:`mmbalance.report`). A ``logreg`` run directory is :mod:`mmbalance.logreg`'s.
The command line of ``compare`` (and of ``plot``) is :mod:`mmbalance.cli.compare`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbalance import config as config_mod
from mmbalance.data import build_dataset
from mmbalance.logreg import LOGREG, check_logreg_dir, logreg_run
from mmbalance.results_table import modality_columns
from mmbalance.run_many import RunOptions, train_specs
from mmbalance.variants import check_variant, parse_variant, run_dir_name


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    label: str  # e.g. "joint", "unimodal-image" or "igm[sam_mode=off]"
    overrides: tuple[str, ...]
    seed: int

    def directory(self, root: Path) -> Path:
        return root / "runs" / self.dataset / run_dir_name(self.label) / f"seed{self.seed}"


def split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def expand_methods(
    dataset: str, methods: Sequence[str], dataset_kwargs: Sequence[str]
) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """``(label, overrides before the shared ones, overrides after them)`` per method: ``unimodal`` expands
    to one entry per modality of the dataset, ``logreg`` is the logistic regression on the raw features
    (:mod:`mmbalance.logreg`); any registered strategy is accepted, and a variant
    ``METHOD[KEY=VALUE,...]`` (:mod:`mmbalance.variants`) keeps its label and sets its options last."""
    out = []
    for variant in map(parse_variant, methods):
        if variant.method == LOGREG and not variant.options:
            out.append((LOGREG, (), ()))
            continue
        check_variant(variant)  # one-line error for unknown methods and options
        if variant.method == "unimodal" and not variant.options:
            cfg = config_mod.resolve({}, [f"dataset__name={dataset}", *dataset_kwargs])
            for m in build_dataset(**cfg["dataset"]).modalities:
                out.append((f"unimodal-{m}", ("strategy__name=unimodal", f"strategy__modality={m}"), ()))
        else:
            name, *options = variant.overrides()
            out.append((variant.label, (name,), tuple(options)))
    return out


def plan(
    datasets: Sequence[str],
    methods: Sequence[str],
    seeds: Iterable[int],
    overrides: Sequence[str],
    method_options: Mapping[str, Sequence[str]] | None = None,
) -> list[RunSpec]:
    """The runs of a comparison. ``method_options[method]`` (a recipe's strategy options) apply to that
    method and its variants only, before the shared overrides and the variant's own options."""
    data_over = [o for o in overrides if o.startswith("dataset__")]
    specs = []
    for ds in datasets:
        for label, first, last in expand_methods(ds, methods, data_over):
            method = "unimodal" if label.startswith("unimodal-") else parse_variant(label).method
            own = (method_options or {}).get(method, ())
            over = (f"dataset__name={ds}", *first, *own, *overrides, *last)
            specs += [RunSpec(ds, label, over, seed) for seed in seeds]
    return specs


def run_config(spec: RunSpec, epochs: int) -> dict[str, Any]:
    """The resolved config of a planned run; compare asks for deterministic kernels unless told not to."""
    over = [*spec.overrides, f"train__seed={spec.seed}", f"train__epochs={epochs}"]
    if not any(o.startswith("train__deterministic=") for o in over):
        over.insert(0, "train__deterministic=true")
    return config_mod.resolve({}, over)


def check_plan(specs: Sequence[RunSpec], root: Path, epochs: int) -> None:
    """Before any run starts: every (dataset, method) builds, and no run directory holds another config."""
    from mmbalance.experiment import build, check_run_dir, check_runs

    firsts = {(s.dataset, s.label): s for s in reversed(specs)}.values()  # one per setting; seeds alike
    check_runs([run_config(s, epochs) for s in firsts])
    for spec in specs:
        if spec.label == LOGREG:
            check_logreg_dir(spec.directory(root), run_config(spec, epochs))
        elif (spec.directory(root) / "config.yaml").exists():
            check_run_dir(spec.directory(root), build(run_config(spec, epochs)).config)


def run_all(
    specs: Sequence[RunSpec],
    root: Path,
    epochs: int,
    log: Any,
    progress: bool = False,
    missing: Sequence[Mapping[str, float]] = (),
    options: RunOptions | None = None,
) -> list[dict[str, Any]]:
    """Check the plan, then train each run (a finished run with the same config is reused), one at a time
    or ``options.jobs`` at once (:mod:`mmbalance.run_many`); with ``missing`` settings, also evaluate each
    run's test split with those modalities missing."""
    check_plan(specs, root, epochs)
    configs = [run_config(spec, epochs) for spec in specs]
    deep = [i for i, spec in enumerate(specs) if spec.label != LOGREG]
    trained = train_specs(
        [specs[i] for i in deep], root, [configs[i] for i in deep], log, progress, options or RunOptions()
    )
    found = dict(zip(deep, trained, strict=True))
    rows = []
    for i, spec in enumerate(specs):
        out = spec.directory(root)
        if i not in found:  # a logistic regression on the raw features: seconds, in this process
            log(f"{spec.dataset} {spec.label} seed {spec.seed}: fitting")
            found[i] = logreg_run(configs[i], out)
        metrics = found[i]
        rows.append(result_row(spec, metrics, out) | missing_columns(out, missing))
    return rows


def base_overrides(path: str | None) -> tuple[list[str], list[str]]:
    """A config file (``--config``/``--recipe``) as overrides shared by every run, without its ``strategy``
    section (applied to that method only, :func:`recipe_method_options`) and its dataset name (returned
    apart: the comparison's dataset unless ``--datasets`` names others); ``([], [])`` without a file."""
    if not path:
        return [], []
    cfg = config_mod.load_file(path)
    dataset = dict(cfg.get("dataset") or {})
    name = dataset.pop("name", None)
    over = config_mod.as_overrides({**cfg, "dataset": dataset}, skip=("strategy",))
    return [o for o in over if o != "dataset={}"], [name] if name else []


def recipe_method_options(path: str | None) -> dict[str, list[str]]:
    """``{method: [strategy__k=v, ...]}``: a config file's strategy options, for that method's runs."""
    if not path:
        return {}
    strategy = dict(config_mod.load_file(path).get("strategy") or {})
    name = strategy.pop("name", None)
    if not name:
        return {}
    return {name: config_mod.as_overrides({"strategy": strategy}) if strategy else []}


def missing_columns(out: Path, settings: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """``{"test_missing:<setting>_acc": ...}`` for each missing-modality setting the run can be evaluated
    with (a setting naming a modality the run has not, or removing all of its modalities, is skipped).
    Results are kept in ``out/missing.json``, so a reused run is not evaluated again."""
    from mmbalance.data.missing import missing_label
    from mmbalance.experiment import evaluate_run

    cache_path = out / "missing.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    mods = list(json.loads((out / "metrics.json").read_text())["test"]["modalities"])
    mods += [m for m in _run_inputs(out) if m not in mods]  # and the inputs a conditioned encoder reads
    row = {}
    for spec in settings:
        if any(m not in mods for m in spec) or all(spec.get(m, 0.0) >= 1.0 for m in mods):
            continue
        label = missing_label(spec)
        if label not in cache:
            cache[label] = evaluate_run(out, missing=spec)["test"]
            cache_path.write_text(json.dumps(cache, indent=2))
        row[f"test_missing:{label}_acc"] = cache[label]["acc"]
    return row


def _run_inputs(out: Path) -> list[str]:
    """The modalities a run's model reads (``resolved.inputs`` of its config; none for older runs)."""
    import yaml

    resolved = yaml.safe_load((out / "config.yaml").read_text()).get("resolved") or {}
    return list(resolved.get("inputs", []))


def result_row(spec: RunSpec, m: dict[str, Any], out: Path | None = None) -> dict[str, Any]:
    """One results.csv row; with the run directory ``out``, also its epochs budget and config hash."""
    row = {
        "dataset": spec.dataset,
        "method": spec.label,
        "seed": spec.seed,
    }
    if out is not None:
        import yaml

        saved = yaml.safe_load((out / "config.yaml").read_text())
        row["epochs"] = saved["train"]["epochs"]
        row["config_hash"] = saved.get(config_mod.DERIVED, {}).get("config_hash", "")
    row |= {
        "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"],
        "train_seconds": m["train_seconds"],
    }
    for split in ("val", "test"):
        row.update({f"{split}_{k}": m[split][k] for k in ("acc", "macro_f1", "map", "auroc")})
    probe = m.get("probe", {}).get("test", {})  # runs written before probes existed have none
    for mod, sub in m["test"]["modalities"].items():
        row[f"test_{mod}_acc"] = sub["acc"]
        if mod in probe:
            row[f"test_{mod}_probe_acc"] = probe[mod]["acc"]
    return row


SUMMARY_FIELDS = (
    "test_acc",
    "test_macro_f1",
    "test_map",
    "train_seconds",
    "hessian_max_eig",
    "rho_sharpness",
)
SHARPNESS_COLUMNS = (("λ_max", "hessian_max_eig"), ("ρ-sharpness", "rho_sharpness"))


def sharpness_note() -> str:
    """What the sharpness columns mean, with the default settings they are measured with."""
    from mmbalance.analysis.sharpness import SharpnessSettings

    d = SharpnessSettings()
    return (
        f" Sharpness of the fused training loss at the best checkpoint ({d.samples} training rows, eval "
        "mode): λ_max, the largest Hessian eigenvalue, and ρ-sharpness, the worst loss increase found within "
        f"an L2 ball of radius {d.rho:g} around the weights (see mmbalance landscape)."
    )


def sharpness_columns(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(header, key)`` of the sharpness columns (``compare --sharpness``) that some summary entry has."""
    entries = list(entries)
    return [
        (h, k) for h, k in SHARPNESS_COLUMNS if any(e.get(f"{k}_mean") not in (None, "") for e in entries)
    ]


def add_sharpness(
    specs: Sequence[RunSpec], rows: Sequence[dict[str, Any]], root: Path, device: Any, log: Any
) -> None:
    """Add each finished run's ``hessian_max_eig`` and ``rho_sharpness`` to its row, measured with the default
    :class:`~mmbalance.analysis.sharpness.SharpnessSettings` once per checkpoint and kept in the run
    directory (``landscape/sharpness.json``), so a re-run reads them back."""
    from mmbalance.analysis.landscape_run import run_sharpness
    from mmbalance.analysis.sharpness import SharpnessSettings

    for spec, row in zip(specs, rows, strict=True):
        if spec.label == LOGREG:  # no network, no loss landscape
            continue
        found = run_sharpness(spec.directory(root), SharpnessSettings(), device, log)
        row.update({key: found[key] for _, key in SHARPNESS_COLUMNS})


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds of each metric, per (dataset, method), in first-seen order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for (ds, method), rs in groups.items():
        entry: dict[str, Any] = {"dataset": ds, "method": method, "seeds": len(rs)}
        keys = [k for k in rs[0] if k in SUMMARY_FIELDS or (k.startswith("test_") and k.endswith("_acc"))]
        for k in dict.fromkeys(keys):
            vals = [float(r[k]) for r in rs if r.get(k) not in (None, "")]
            if not vals:  # e.g. another modality's accuracy in a unimodal run read back from results.csv
                continue
            entry[f"{k}_mean"] = statistics.fmean(vals)
            entry[f"{k}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(entry)
    return out


def mean_pm(entry: dict[str, Any], key: str, scale: float = 100.0, digits: int = 2) -> str:
    if f"{key}_mean" not in entry:
        return "–"
    if entry["seeds"] == 1:
        return f"{entry[f'{key}_mean'] * scale:.{digits}f}"
    return f"{entry[f'{key}_mean'] * scale:.{digits}f} ± {entry[f'{key}_std'] * scale:.{digits}f}"


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    columns, sharp = modality_columns(summary, sort=True), sharpness_columns(summary)
    head = [
        "dataset",
        "method",
        "seeds",
        "test acc %",
        "macro-F1 %",
        "MAP %",
        *[header for header, _ in columns],
        *[header for header, _ in sharp],
        "train s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [
            e["dataset"],
            e["method"],
            str(e["seeds"]),
            mean_pm(e, "test_acc"),
            mean_pm(e, "test_macro_f1"),
            mean_pm(e, "test_map"),
            *[mean_pm(e, key) for _, key in columns],
            *[mean_pm(e, key, 1.0, 3) for _, key in sharp],
            mean_pm(e, "train_seconds", 1.0, 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
