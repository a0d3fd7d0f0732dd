"""Projector spectra of IGM and MLA: the rows, the values against the projectors actually applied, and the
state round trip that makes them survive a checkpoint."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from mmbalance.grad import InputCovariance
from mmbalance.strategies import Strategy
from mmbalance.strategies._igm_stages import modality_linears
from mmbalance.strategies.igm import IGM
from mmbalance.strategies.mla import MLA
from mmbalance.testing import params_of, run_epochs, same_tensors, tiny_problem

TAU = 0.7
IGM_KW = {"head_hidden": (16, 8), "stage_epochs": 1, "temperature": TAU}
HEAD_INPUTS = {"head.branches.{}.0": 8, "head.branches.{}.2": 16, "head.branches.{}.4": 8}  # feature dim 8


def spectra(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Rows grouped by (stage, epoch, modality, layer, source), in order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["stage"], r["epoch"], r["modality"], r["layer"], r["source"]), []).append(r)
    return groups


def test_igm_records_every_stage_layer_and_dimension(device: str) -> None:
    p = tiny_problem(lambda: IGM(**IGM_KW), device=device, dropout=0.0)
    run_epochs(p, 3)  # stage 0 builds nothing; stage 1: "b" from "a"; stage 2: "a" from "b"
    rows = p.strategy.records()["spectra"]
    want = {
        (stage, stage, target, layer.format(target), layer.format(source))
        for stage, target, source in ((1, "b", "a"), (2, "a", "b"))
        for layer in HEAD_INPUTS
    }
    dims = {layer.format(m): n for m in "ab" for layer, n in HEAD_INPUTS.items()}
    groups = spectra(rows)
    assert set(groups) == want and len(rows) == 2 * sum(HEAD_INPUTS.values())
    for key, group in groups.items():
        assert [r["index"] for r in group] == list(range(dims[key[3]]))
        assert all(r["method"] == "igm" for r in group)
        lam = [r["eigenvalue"] for r in group]
        shrink = [r["shrink"] for r in group]
        assert min(lam) >= 0 and lam == sorted(lam, reverse=True) and lam[0] > lam[-1]
        assert all(math.exp(-TAU) - 1e-12 <= s <= 1 for s in shrink) and shrink == sorted(shrink)
        assert shrink[0] == pytest.approx(math.exp(-TAU)) and shrink[-1] == pytest.approx(1.0)


def source_statistics(p: Any, source: str) -> dict[torch.nn.Module, torch.Tensor]:
    """IGM's statistic of ``source``'s head layers, recomputed here from the model as it stands."""
    layers = modality_linears(p.model, source, with_encoder=False)
    p.model.eval()
    with torch.no_grad(), InputCovariance(layers) as stats:
        for b in p.batches:
            p.model.head.unimodal(source, p.model.encoders[source](b.inputs[source]))
    p.model.train()
    return stats.covariances


def test_igm_recorded_spectra_rebuild_the_applied_projectors(device: str) -> None:
    p = tiny_problem(lambda: IGM(**IGM_KW), device=device, dropout=0.0)
    run_epochs(p, 1)
    p.strategy.on_epoch_start(1, p.loader)  # stage 1: reload, then projectors of "b" from "a"
    covs = source_statistics(p, "a")
    names = dict(p.model.named_modules())
    groups = spectra(p.strategy.records()["spectra"])
    assert len(groups) == len(p.strategy.projectors_["b"]) == 3
    for i, ((_, _, _, layer, source), group) in enumerate(groups.items()):
        assert names[layer] is modality_linears(p.model, "b", with_encoder=False)[i]
        lam, vecs = torch.linalg.eigh(covs[names[source]].double())
        recorded = torch.tensor([r["eigenvalue"] for r in group], dtype=torch.float64)
        shrink = torch.tensor([r["shrink"] for r in group], dtype=torch.float64)
        scale = lam.abs().max().item()
        torch.testing.assert_close(recorded, lam.flip(0).clamp_min(0).cpu(), atol=1e-9 * scale, rtol=0)
        # the shrink factors are the flat map of the recorded eigenvalues ...
        torch.testing.assert_close(
            shrink, torch.exp(-TAU * (recorded - recorded[-1]) / (recorded[0] - recorded[-1]))
        )
        # ... and, on the statistic's eigenvectors, give the projector the strategy applies
        v = vecs.flip(1).cpu()
        rebuilt = (v * shrink) @ v.T
        applied = p.strategy.projectors_["b"][i].double().cpu()
        torch.testing.assert_close(rebuilt, applied, atol=1e-6, rtol=0)


def test_mla_records_its_projector_spectrum_after_every_epoch(device: str) -> None:
    p = tiny_problem(lambda: MLA(), device=device)
    projectors = []
    for epoch in range(2):
        run_epochs(p, 1, start=epoch)
        projectors.append(p.strategy.projector_.P_.double().cpu())
    groups = spectra(p.strategy.records()["spectra"])
    assert list(groups) == [(None, e, None, "head.fc", "head.fc") for e in range(2)]
    for P, group in zip(projectors, groups.values(), strict=True):
        assert [r["index"] for r in group] == list(range(8)) and all(r["method"] == "mla" for r in group)
        lam = [r["eigenvalue"] for r in group]
        assert lam == sorted(lam, reverse=True) and [r["shrink"] for r in group] == lam
        assert all(0 <= x <= 1 for x in lam) and lam[-1] < 0.5 * lam[0]  # OWM shrinks unevenly
        vals, vecs = torch.linalg.eigh(P)
        torch.testing.assert_close(torch.tensor(lam, dtype=torch.float64), vals.flip(0), atol=1e-12, rtol=0)
        v = vecs.flip(1)
        torch.testing.assert_close((v * torch.tensor(lam, dtype=torch.float64)) @ v.T, P, atol=1e-9, rtol=0)
    assert not torch.allclose(projectors[0], projectors[1])


def test_mla_without_projection_records_nothing(device: str) -> None:
    p = tiny_problem(lambda: MLA(projection="none"), device=device)
    run_epochs(p, 1)
    assert p.strategy.records() == {"spectra": []}


MAKERS: list[Callable[[], Strategy]] = [lambda: IGM(**IGM_KW), lambda: MLA()]


@pytest.mark.parametrize("make", MAKERS, ids=["igm", "mla"])
def test_records_survive_a_checkpoint_round_trip(make: Callable[[], Strategy], device: str) -> None:
    a = tiny_problem(make, device=device)
    run_epochs(a, 2)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": a.model.state_dict(),
            "opt": a.strategy.optimizer.state_dict(),
            "s": a.strategy.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # as experiment.load_checkpoint reads last.pt
    kept = copy.deepcopy(saved["s"]["spectra_"])
    b = tiny_problem(make, seed=1, device=device)
    b.model.load_state_dict(saved["model"])
    b.strategy.load_state_dict(saved["s"])
    b.strategy.optimizer.load_state_dict(saved["opt"])
    assert b.strategy.records() == a.strategy.records() and a.strategy.records()["spectra"]
    for q in (a, b):
        run_epochs(q, 1, start=2)  # a stage change for IGM, one more epoch for MLA: new spectra
    assert same_tensors(params_of(a.model), params_of(b.model))
    assert b.strategy.records() == a.strategy.records()
    assert len(a.strategy.records()["spectra"]) > len(spectra_rows_of(kept, a.strategy))
    assert len(saved["s"]["spectra_"]) == len(kept)  # the loaded state is not appended to


def spectra_rows_of(entries: list[dict[str, Any]], strategy: Strategy) -> list[dict[str, Any]]:
    from mmbalance.strategies._spectra import spectrum_rows

    return spectrum_rows(strategy.name, entries)


def test_a_strategy_without_records_has_none(device: str) -> None:
    p = tiny_problem(lambda: Strategy(), device=device)
    run_epochs(p, 1)
    assert p.strategy.records() == {}
