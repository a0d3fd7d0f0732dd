"""The elementwise fusion heads ``max`` and ``mul``."""

from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_head, build_model
from mmbalance.strategies import build_strategy

DIMS = {"image": 6, "tabular": 4}


def features(n: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}


def test_max_head_is_tips_max_the_wider_modality_is_projected_to_the_narrower() -> None:
    head = build_head("max", DIMS, 3)
    f = features()
    assert head.width == 4 and isinstance(head.projections["tabular"], torch.nn.Identity)
    expected = head.fc(torch.maximum(head.projections["image"](f["image"]), f["tabular"]))
    torch.testing.assert_close(head(f), expected)


def test_mul_head_multiplies_the_projections() -> None:
    head = build_head("mul", DIMS, 3, width=5)
    f = features()
    p = {m: head.projections[m](f[m]) for m in DIMS}
    torch.testing.assert_close(head(f), head.fc(p["image"] * p["tabular"]))


@pytest.mark.parametrize("name", ["max", "mul"])
def test_a_row_with_one_modality_gets_that_modalitys_unimodal_logits(name: str) -> None:
    head = build_head(name, DIMS, 3)
    f = features(4)
    present = {"tabular": torch.tensor([True, False, True, False])}
    fused = head(f, present)
    whole = head(f)
    image_alone = head.unimodal("image", f["image"])
    torch.testing.assert_close(fused[[1, 3]], image_alone[[1, 3]])
    torch.testing.assert_close(fused[[0, 2]], whole[[0, 2]])
    assert not torch.allclose(whole[[1, 3]], image_alone[[1, 3]])  # the absent modality did matter


@pytest.mark.parametrize("name", ["max", "mul"])
def test_absent_modality_inputs_do_not_change_the_prediction(name: str) -> None:
    head = build_head(name, DIMS, 3)
    f = features(3)
    present = {"tabular": torch.zeros(3, dtype=torch.bool)}
    changed = {**f, "tabular": f["tabular"] + 100.0}
    torch.testing.assert_close(head(f, present), head(changed, present))


@pytest.mark.parametrize("name", ["max", "mul"])
def test_projections_belong_to_their_modality_and_the_classifier_is_shared(name: str) -> None:
    model = build_model(
        {m: {"name": "mlp"} for m in DIMS}, {m: (7,) for m in DIMS}, 3, {"name": name, "width": 5}, 8
    )
    owned = {m: {id(p) for p in model.head.modality_parameters(m)} for m in DIMS}
    shared = {id(p) for p in model.shared_parameters()}
    assert owned["image"] and owned["tabular"] and owned["image"].isdisjoint(owned["tabular"])
    assert shared == {id(model.head.fc.weight), id(model.head.fc.bias)}


def test_bad_width_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="head width=0 is invalid"):
        build_head("max", DIMS, 3, width=0)


@pytest.mark.parametrize("method", ["joint", "pmr", "mmpareto"])
def test_strategies_that_take_a_head_accept_max_and_mul(method: str) -> None:
    for head in ("max", "mul"):
        s = build_strategy(method, head=head)
        s.validate(["image", "tabular"])
        assert s.head_config() == {"name": head}


@pytest.mark.parametrize("head", ["max", "mul"])
def test_joint_training_with_elementwise_heads_meets_the_strategy_contract(head: str) -> None:
    from mmbalance.testing import check_strategy

    check_strategy(lambda: build_strategy("joint", head=head))
