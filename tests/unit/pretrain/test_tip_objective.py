"""TIP's objective: hard negatives, the reconstruction mask, and a loss that trains every module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmbalance.errors import ConfigError
from mmbalance.models import build_model
from mmbalance.pretrain import PRETRAINERS
from mmbalance.pretrain.mmcl import clip_loss
from mmbalance.pretrain.tip import hard_negatives, reconstruction_mask
from mmbalance.types import Batch


def test_hard_negatives_are_never_the_pair_itself_and_follow_the_similarity() -> None:
    torch.manual_seed(0)
    sim = torch.randn(6, 6)
    for _ in range(20):
        j = hard_negatives(sim)
        assert not bool((j == torch.arange(6)).any())
    peaked = torch.full((4, 4), -100.0)
    peaked[0, 2] = peaked[1, 3] = peaked[2, 0] = peaked[3, 1] = 100.0
    assert hard_negatives(peaked).tolist() == [2, 3, 0, 1]
    assert hard_negatives(torch.eye(2) * 50).tolist() == [1, 0]  # the only other column, however unlikely


def test_reconstruction_mask_draws_its_share_among_the_observed_features() -> None:
    torch.manual_seed(0)
    missing = torch.zeros(5, 10, dtype=torch.bool)
    assert reconstruction_mask(missing, 0.5).sum(1).tolist() == [5] * 5
    missing[:, :4] = True
    chosen = reconstruction_mask(missing, 0.5)
    assert not bool((chosen & missing).any()) and bool((chosen.sum(1) <= 5).all())
    assert not bool(reconstruction_mask(missing, 0.0).any())


def tip_setup() -> tuple[object, nn.Module, nn.Module, Batch]:
    torch.manual_seed(0)
    pre = PRETRAINERS.build("tip", projection_dim=4, fusion_layers=1)
    mods = pre.modalities(["image", "tabular"])
    encoders = {
        "image": {"name": "mlp", "hidden": (8,)},
        "tabular": {"name": "tab_transformer", "dim": 8, "heads": 2},
    }
    model = build_model(encoders, {"image": (5,), "tabular": (6,)}, 3, {"name": "concat"}, feature_dim=8)
    extra = pre.build_for(model, mods)
    x = {"image": torch.randn(8, 5), "tabular": torch.randn(8, 6)}
    x["tabular"][:, 0] = 0.0  # a missing feature
    return pre, model, extra, Batch(x, torch.zeros(8, dtype=torch.long))


def test_the_tip_loss_trains_both_encoders_and_all_three_objectives() -> None:
    pre, model, extra, batch = tip_setup()
    loss = pre.loss(model, extra, batch, train=True)
    loss.backward()
    assert torch.isfinite(loss)
    for name, module in [*model.encoders.items(), *extra.items()]:
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads), name
    assert pre.encoder_options("tabular", ["image", "tabular"]) == {"name": "tab_transformer"}
    assert pre.encoder_options("image", ["image", "tabular"]) == {}


def test_the_contrastive_term_is_mmcls_clip_loss() -> None:
    pre, model, extra, batch = tip_setup()
    model.eval()
    extra.eval()
    enc = model.encoders["tabular"]
    u = extra["image"](model.encoders["image"](batch.inputs["image"]))
    t = extra["tabular"](enc(batch.inputs["tabular"]))
    itc = clip_loss(u, t, pre.temperature, pre.weight)
    pre._itm = lambda *a: torch.tensor(0.0)  # type: ignore[method-assign]  # the other two terms left out
    pre._mtr = lambda *a: torch.tensor(0.0)  # type: ignore[method-assign]
    torch.testing.assert_close(pre.loss(model, extra, batch, train=False), itc / 3)


def test_tip_options_have_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="mask_rate"):
        PRETRAINERS.build("tip", mask_rate=1.5).modalities(["image", "tabular"])
    with pytest.raises(ConfigError, match="fusion_layers=0 is invalid"):
        PRETRAINERS.build("tip", fusion_layers=0).modalities(["image", "tabular"])
