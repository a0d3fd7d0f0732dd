from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_head, build_model

DIMS = {"a": 4, "b": 4}


def features(n: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}


def test_concat_fused_equals_sum_of_unimodal() -> None:
    head = build_head("concat", DIMS, 3)
    f = features()
    fused = head(f)
    torch.testing.assert_close(fused, head.unimodal("a", f["a"]) + head.unimodal("b", f["b"]))


def test_sum_head_branches_and_groups() -> None:
    head = build_head("sum", DIMS, 3, hidden=(6,))
    f = features()
    torch.testing.assert_close(head(f), head.unimodal("a", f["a"]) + head.unimodal("b", f["b"]))
    ids_a = {id(p) for p in head.modality_parameters("a")}
    ids_b = {id(p) for p in head.modality_parameters("b")}
    assert ids_a and ids_a.isdisjoint(ids_b) and len(ids_a | ids_b) == len(list(head.parameters()))


def test_shared_head_is_one_classifier() -> None:
    head = build_head("shared", DIMS, 3)
    f = features()
    torch.testing.assert_close(head(f), (head.fc(f["a"]) + head.fc(f["b"])) / 2)
    with pytest.raises(ConfigError, match="equal feature dims"):
        build_head("shared", {"a": 4, "b": 5}, 3)


@pytest.mark.parametrize("head", ["concat", "sum", "shared", "multitask", "boost"])
def test_parameter_groups_partition_the_model(head: str) -> None:
    model = build_model({m: {"name": "mlp"} for m in DIMS}, {m: (7,) for m in DIMS}, 3, {"name": head}, 8)
    groups = [model.encoder_parameters(m) for m in DIMS] + [model.head_parameters()]
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    shared = {id(p) for p in model.shared_parameters()}
    owned = {id(p) for m in DIMS for p in model.head.modality_parameters(m)}
    assert shared | owned == {id(p) for p in model.head_parameters()} and not shared & owned
    out = model({m: torch.randn(2, 7) for m in DIMS})
    assert out.logits.shape == (2, 3) and set(out.unimodal_logits) == set(DIMS)


def test_multitask_head_scores_fused_and_unimodal_with_separate_classifiers() -> None:
    head = build_head("multitask", DIMS, 3, hidden=(6,))
    f = features()
    concat = torch.cat([f["a"], f["b"]], dim=1)
    torch.testing.assert_close(head(f), head.fused(concat))
    torch.testing.assert_close(head.unimodal("b", f["b"]), head.branches["b"](f["b"]))
    fused = {id(p) for p in head.fused.parameters()}
    owned = {id(p) for m in DIMS for p in head.modality_parameters(m)}
    assert fused and owned and fused.isdisjoint(owned)
    assert fused | owned == {id(p) for p in head.parameters()}
    with torch.no_grad():
        head.branches["a"].weight.add_(1.0)  # a unimodal classifier never changes the fused logits
    torch.testing.assert_close(head(f), head.fused(concat))


def test_boost_head_scales_the_sum_of_one_shared_classifier() -> None:
    head = build_head("boost", DIMS, 3, hidden=(6,), boost_rate=0.5)
    f = features()
    expected = 0.5 * (head.classifier(f["a"]) + head.classifier(f["b"]))
    torch.testing.assert_close(head(f), expected)
    torch.testing.assert_close(head.unimodal("a", f["a"]), head.classifier(f["a"]))
    assert head.boost_rate.ndim == 0 and head.boost_rate.requires_grad
    assert not head.modality_parameters("a")
    with pytest.raises(ConfigError, match="boost head needs equal feature dims"):
        build_head("boost", {"a": 4, "b": 5}, 3)


def test_cnn_rejects_flat_input_shape() -> None:
    with pytest.raises(ConfigError, match="channels, height, width"):
        build_model({"a": {"name": "cnn"}}, {"a": (7,)}, 3, {"name": "concat"})


def test_cnn_memory_layout_does_not_change_the_function() -> None:
    from mmbalance.models import build_encoder

    torch.manual_seed(0)
    a = build_encoder("cnn", (1, 16, 15), 6, channels=(4, 8), channels_last=True)
    b = build_encoder("cnn", (1, 16, 15), 6, channels=(4, 8), channels_last=False)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 1, 16, 15)
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", ["concat", "sum", "shared", "multitask", "boost"])
def test_optimizer_groups_partition_the_parameters_by_modality(head: str) -> None:
    from mmbalance.experiment import parameter_groups

    model = build_model({m: {"name": "mlp"} for m in DIMS}, {m: (7,) for m in DIMS}, 3, {"name": head}, 8)
    groups = parameter_groups(model)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    names = [g["name"] for g in groups]
    assert names == (["a", "b"] if head == "sum" else ["a", "b", "shared"])


@pytest.mark.parametrize("head", ["sum", "shared", "boost"])
def test_fusing_heads_leave_an_absent_modality_out_per_row(head: str) -> None:
    torch.manual_seed(0)
    h = build_head(head, {"a": 4, "b": 4}, 3)
    f = {"a": torch.randn(3, 4), "b": torch.randn(3, 4)}
    present = {"b": torch.tensor([True, False, True])}
    fused = h(f, present)
    za, zb = h.unimodal("a", f["a"]), h.unimodal("b", f["b"])
    if head == "sum":
        torch.testing.assert_close(fused[1], za[1])
        torch.testing.assert_close(fused[0], za[0] + zb[0])
    elif head == "shared":
        torch.testing.assert_close(fused[1], za[1])  # the mean over the one present modality
        torch.testing.assert_close(fused[0], (za[0] + zb[0]) / 2)
    else:
        torch.testing.assert_close(fused[1], h.boost_rate * za[1])
    torch.testing.assert_close(h(f, {"b": torch.ones(3, dtype=torch.bool)}), h(f))  # all present: unchanged


def test_strategy_fusion_of_a_row_without_any_modality_stays_finite() -> None:
    from mmbalance.strategies import build_strategy
    from mmbalance.types import ModelOutput

    z = {"a": torch.tensor([[9.0, -9.0], [0.1, 0.2]]), "b": torch.tensor([[0.0, 3.0], [1.0, 0.0]])}
    none = {"a": torch.tensor([False, True]), "b": torch.tensor([False, False])}
    out = ModelOutput({}, z["a"] + z["b"], z, none)
    for method in ("mla", "igm"):
        scores = build_strategy(method).predict(out)
        assert scores.isfinite().all(), method
        # row 1 has only a: its prediction is a's
        assert scores[1].argmax() == z["a"][1].argmax()
