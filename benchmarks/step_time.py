"""Median training-step time and peak step memory of every registered strategy against ``joint``.

    python -m benchmarks.step_time [--json PATH] [--steps N] [--device cpu] [--setting resnet18-av]

All strategies run on copies of one model (``--setting small``: a small CNN for a 1x28x28 image and an MLP
for 129 tabular features, as on mfeat/avdigits; ``resnet18-av``: two ResNet-18s on a CREMA-D-sized
spectrogram and video frame, for GPUs) and on the same batches. Steps are interleaved round-robin after a
warm-up, so machine noise hits every method alike; the ratio is median(step) / median(joint step).
After the timed steps, two more steps of each strategy, each begun with no gradients held, are measured
for their peak working memory (:mod:`benchmarks.memory`: tensor memory allocated during the step beyond the
parameters, optimizer state and batch it starts with); ``peak_mem_ratio`` is that peak over joint's.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from benchmarks.memory import peak_bytes
from mmbalance.data import BatchLoader, MultimodalDataset
from mmbalance.errors import MMBalanceError
from mmbalance.models import build_model, parameter_groups
from mmbalance.strategies import Strategy, build_strategy, list_strategies
from mmbalance.types import Batch

# Variants measured beside each strategy's defaults (label -> (method, kwargs)).
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "gaal (stale)": ("gaal", {"ref_features": "stale"}),
    "gaal (order=cost)": ("gaal", {"order": "cost"}),
    "gaal (released ghost steps)": ("gaal", {"ghost_steps": True}),
    "igm (batch alternation)": ("igm", {"schedule": "batch"}),
}
REQUIRED: dict[str, dict[str, object]] = {"unimodal": {"modality": "image"}}


def make_dataset(
    n: int, seed: int = 0, setting: str = "small", av_size: int | None = None
) -> MultimodalDataset:
    """``small``: a 1x28x28 image (CNN) and 129 tabular features (MLP), as on mfeat/avdigits.
    ``resnet18-av``: a 1x257x188 spectrogram and one 3x224x224 frame, each through a ResNet-18 with 512
    pooled features, as in the audio-visual papers' CREMA-D setting (``av_size`` shrinks both inputs to
    ``av_size`` x ``av_size`` for a quick check on a CPU)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    if setting == "resnet18-av":
        audio, frame = ((av_size, av_size), (av_size, av_size)) if av_size else ((257, 188), (224, 224))
        inputs = {
            "audio": torch.rand(n, 1, *audio, generator=g),
            "visual": torch.rand(n, 1, 3, *frame, generator=g),
        }
        encoders = {
            "audio": {"name": "resnet18", "in_channels": 1, "out_dim": None},
            "visual": {"name": "resnet18", "out_dim": None},
        }
    else:
        inputs = {"image": torch.rand(n, 1, 28, 28, generator=g), "tabular": torch.randn(n, 129, generator=g)}
        encoders = {"image": {"name": "cnn"}, "tabular": {"name": "mlp"}}
    return MultimodalDataset(
        name="bench", inputs=inputs, labels=labels, num_classes=10, default_encoders=encoders
    )


def setups(
    device: torch.device,
    batch_size: int,
    setting: str = "small",
    av_size: int | None = None,
    methods: Sequence[str] = (),
) -> dict[str, tuple[Strategy, BatchLoader]]:
    """Every strategy (and variant) the setting's modalities allow, on copies of one model; the others are
    named on stdout as skipped (e.g. the tabular-image methods in the audio-visual setting). ``methods``
    restricts them to those methods (with their variants) and joint."""
    ds = make_dataset(batch_size * (8 if setting == "small" else 2), 0, setting, av_size)
    ds.inputs = {m: x.to(device) for m, x in ds.inputs.items()}
    ds.labels = ds.labels.to(device)
    required = {**REQUIRED, "unimodal": {"modality": ds.modalities[0]}}
    plans = {name: (name, required.get(name, {})) for name in list_strategies()}
    plans.update({k: v for k, v in VARIANTS.items() if v[0] in plans})
    if methods:
        plans = {k: v for k, v in plans.items() if v[0] in {*methods, "joint"}}
    out = {}
    for label, (method, kwargs) in plans.items():
        torch.manual_seed(0)
        strategy = build_strategy(method, **kwargs)
        try:
            mods = strategy.modalities(ds.modalities)
            strategy.validate(mods)
            model = build_model(
                {m: {**ds.default_encoders[m], **strategy.encoder_options(m, ds.modalities)} for m in mods},
                {m: ds.input_shape(m) for m in ds.modalities},
                10,
                strategy.head_config(),
            ).to(device)
        except MMBalanceError as exc:  # the method does not apply to this setting's modalities or encoders
            print(f"skipped {label}: {exc}")
            continue
        make: Callable[[], torch.optim.Optimizer] = lambda model=model: torch.optim.Adam(  # noqa: E731
            parameter_groups(model),
            lr=1e-3,  # named per-modality groups, as in a run
        )
        strategy.epochs = 30  # the run's budget, as the trainer sets it (the library's usual 30 epochs)
        strategy.setup(model, make(), make)
        loader = BatchLoader(ds, torch.arange(len(ds), device=device), batch_size, shuffle=False)
        model.train()
        strategy.on_epoch_start(0, loader)
        out[label] = (strategy, loader)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_peak(strategy: Strategy, batches: list[Batch], device: torch.device) -> int:
    """The largest :func:`peak_bytes` of steps on ``batches``, each begun without gradients (two steps cover
    a strategy that alternates modalities step by step)."""
    peaks = []
    for batch in batches:
        strategy.optimizer.zero_grad(set_to_none=True)
        step = copy.copy(batch)
        peaks.append(peak_bytes(lambda b=step: strategy.training_step(b, 0), device))
    return max(peaks)


def measure(
    device: torch.device,
    steps: int,
    warmup: int,
    batch_size: int,
    setting: str = "small",
    av_size: int | None = None,
    methods: Sequence[str] = (),
) -> tuple[dict[str, float], dict[str, int]]:
    """Median step milliseconds and peak step bytes of every strategy."""
    runs = setups(device, batch_size, setting, av_size, methods)
    batches = {k: list(loader) for k, (_, loader) in runs.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for i in range(warmup + steps):
        for label, (strategy, _) in runs.items():
            batch = copy.copy(batches[label][i % len(batches[label])])
            _sync(device)
            start = time.perf_counter()
            strategy.training_step(batch, 0)
            _sync(device)
            if i >= warmup:
                times[label].append(time.perf_counter() - start)
    peaks = {label: step_peak(strategy, batches[label][:2], device) for label, (strategy, _) in runs.items()}
    return {k: statistics.median(v) * 1000 for k, v in times.items()}, peaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json",
        help="write {'device', 'results': {method: {step_ms, ratio, peak_mem_ratio, peak_mem_bytes}}} here",
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--setting",
        choices=("small", "resnet18-av"),
        default="small",
        help="small: CNN + MLP on mfeat-sized inputs; resnet18-av: two ResNet-18s on a CREMA-D-sized "
        "spectrogram and frame (a GPU setting)",
    )
    parser.add_argument("--av-size", type=int, help="resnet18-av only: shrink both inputs to N x N")
    parser.add_argument("--methods", default="", help="comma list of methods (default: every one)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    methods = [m for m in args.methods.split(",") if m]
    ms, peaks = measure(device, args.steps, args.warmup, args.batch_size, args.setting, args.av_size, methods)
    results = {
        k: {
            "step_ms": round(v, 3),
            "ratio": round(v / ms["joint"], 3),
            "peak_mem_ratio": round(peaks[k] / peaks["joint"], 3),
            "peak_mem_bytes": peaks[k],
        }
        for k, v in ms.items()
    }
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"device: {name}; setting {args.setting}; median of {args.steps} interleaved steps after "
        f"{args.warmup} warm-up, batch {args.batch_size}"
    )
    print(f"{'method':<30} {'step ms':>9} {'x joint':>8} {'peak MiB':>9} {'x joint':>8}")
    for k, r in sorted(results.items(), key=lambda kv: kv[1]["ratio"]):
        mib = r["peak_mem_bytes"] / 2**20
        print(f"{k:<30} {r['step_ms']:>9.2f} {r['ratio']:>8.2f} {mib:>9.2f} {r['peak_mem_ratio']:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "setting": args.setting, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
