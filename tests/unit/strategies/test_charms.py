"""CHARMS: the matching masks are valid 0/1 channel sets, the attribute heads read only their channels,
predictions ignore the table, and the learned state (masks, clusters, heads) survives a round trip."""

from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_model, parameter_groups
from mmbalance.strategies import build_strategy
from mmbalance.strategies._charms_masks import attribute_masks, masks_from_plan, similarity_cost
from mmbalance.strategies.charms import CHARMS, AttributeHeads
from mmbalance.testing import check_strategy, run_epochs, run_steps, tiny_problem


def gram(x: torch.Tensor) -> torch.Tensor:
    x = x.double() / x.double().norm()
    return x @ x.T


def test_the_cost_is_the_distance_between_the_similarity_matrices() -> None:
    g = torch.Generator().manual_seed(0)
    attributes, clusters = torch.randn(3, 7, 2, generator=g), torch.randn(4, 7, 5, generator=g)
    direct = torch.tensor(
        [[float((gram(a) - gram(c)).pow(2).sum()) for c in clusters] for a in attributes], dtype=torch.float64
    )
    torch.testing.assert_close(similarity_cost(attributes, clusters), direct)
    same = similarity_cost(3 * clusters[:1], clusters)  # the scale of a group does not matter
    assert float(same[0, 0]) == pytest.approx(0.0, abs=1e-12) and bool((same[0, 1:] > 0).all())


def test_masks_from_a_plan_keep_the_channels_of_the_matched_clusters() -> None:
    plan = torch.tensor([[0.5, 0.0], [0.0, 0.25], [0.0, 0.25]], dtype=torch.float64)
    labels = torch.tensor([1, 0, 0, 1])
    expected = [[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]]
    assert masks_from_plan(plan, labels).tolist() == expected


def test_each_attribute_is_matched_with_the_channels_that_share_its_similarity_structure() -> None:
    """Channels 0, 2 carry pattern A across 6 samples and channels 1, 3 pattern B; attribute 0's token is
    A, attribute 1's is B: the optimal matching gives each attribute exactly its pattern's channels."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    cells = torch.stack([a, b, a, b], dim=1)  # [N=6, C=4, L=3]
    tokens = torch.stack([a, b], dim=1)  # [N=6, J=2, d=3]
    masks, labels = attribute_masks(tokens, cells, 2, torch.Generator().manual_seed(0))
    assert masks.tolist() == [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    assert labels[0] == labels[2] and labels[1] == labels[3] and labels[0] != labels[1]


@pytest.mark.parametrize("clusters", [1, 3, 40])
def test_masks_are_deterministic_0_1_and_give_every_attribute_a_channel(clusters: int) -> None:
    g = torch.Generator().manual_seed(1)
    tokens, cells = torch.randn(30, 9, 4, generator=g), torch.randn(30, 12, 5, generator=g).relu()
    cells[:, 5] = 0  # dead channels coincide
    cells[:, 7] = 0
    first = attribute_masks(tokens, cells, clusters, torch.Generator().manual_seed(3))
    again = attribute_masks(tokens, cells, clusters, torch.Generator().manual_seed(3))
    masks, labels = first
    assert torch.equal(masks, again[0]) and torch.equal(labels, again[1])
    assert masks.shape == (9, 12) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert bool((masks.sum(1) >= 1).all())
    assert labels.max() < min(clusters, 12) and labels[5] == labels[7]


def test_an_attribute_head_does_not_read_its_masked_out_channels() -> None:
    torch.manual_seed(0)
    heads = AttributeHeads(attributes=5, channels=8)
    masks = (torch.rand(5, 8) > 0.5).float()
    masks[:, 0] = 1  # every attribute keeps a channel
    h = torch.randn(4, 8)
    base = heads(h, masks)
    for c in range(8):
        changed = h.clone()
        changed[:, c] += 10.0
        moved = (heads(changed, masks) - base).abs().amax(0) > 0
        assert moved.tolist() == masks[:, c].bool().tolist()  # exactly the attributes that keep channel c


def test_the_contract_holds_with_a_mask_update_every_epoch(device: str) -> None:
    check_strategy(lambda: CHARMS(every=1, clusters=3), device=device)


def test_masks_change_only_at_multiples_of_every() -> None:
    p = tiny_problem(lambda: CHARMS(every=2, clusters=3, samples=24))
    ones = torch.ones(6, 8)
    assert torch.equal(p.strategy.masks_, ones) and bool((p.strategy.channel_clusters_ == -1).all())
    run_epochs(p, 2)
    assert torch.equal(p.strategy.masks_, ones)
    run_epochs(p, 1, start=2)
    masks = p.strategy.masks_
    assert not torch.equal(masks, ones) and bool((masks.sum(1) >= 1).all())
    assert p.strategy.channel_clusters_.tolist() != [-1] * 8


def test_the_attribute_heads_train_in_their_own_optimizer_group() -> None:
    p = tiny_problem(lambda: CHARMS())
    assert p.strategy.optimizer.param_groups[-1]["name"] == "charms_attributes"
    before = p.strategy._heads.linear.weight.detach().clone()
    logs = run_steps(p, 2)[-1].logs
    assert set(logs) == {"image_loss", "tab_loss", "attribute_loss"}
    assert not torch.equal(before, p.strategy._heads.linear.weight)
    assert "attribute_heads_" in p.strategy.state_dict()


def test_predictions_ignore_the_tabular_input_exactly() -> None:
    p = tiny_problem(lambda: CHARMS(every=1, clusters=3))
    run_epochs(p, 2)
    p.model.eval()
    inputs = p.batches[0].inputs
    with torch.no_grad():
        logits = p.strategy.predict(p.model(inputs))
        zeroed = p.strategy.predict(p.model({**inputs, "b": torch.zeros_like(inputs["b"])}))
        other = p.strategy.predict(p.model({**inputs, "b": torch.randn_like(inputs["b"])}))
        absent = p.model(inputs, {"b": torch.zeros(len(inputs["b"]), dtype=torch.bool)})
    assert torch.equal(logits, zeroed) and torch.equal(logits, other)
    assert torch.equal(logits, p.strategy.predict(absent))
    assert not torch.equal(logits, p.strategy.predict(p.model({**inputs, "a": inputs["a"] + 1})))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("tab_weight", -0.1, "a finite number >= 0"),
        ("attribute_weight", float("inf"), "a finite number >= 0"),
        ("every", 0, "an integer >= 1"),
        ("clusters", 2.5, "an integer >= 1"),
        ("samples", 1, "an integer >= 2"),
        ("seed", -1, "an integer >= 0"),
    ],
)
def test_a_bad_value_is_a_one_line_error(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=f"charms {key}=.*expected {expected}") as info:
        build_strategy("charms", **{key: value}).validate(["a", "b"])
    assert "\n" not in str(info.value)


def test_a_dataset_without_an_image_and_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs >= 2 modalities"):
        CHARMS().modalities(["image"])
    with pytest.raises(ConfigError, match=r"charms tabular='meta'; expected one of \['image', 'text'\]"):
        CHARMS(tabular="meta").modalities(["image", "text"])


def test_a_tabular_encoder_without_tokens_is_refused() -> None:
    model = build_model(
        {"a": {"name": "mlp"}, "b": {"name": "mlp"}}, {"a": (4,), "b": (3,)}, 2, {"name": "sum"}, 4
    )
    optimizer = torch.optim.SGD(parameter_groups(model), lr=0.1)
    with pytest.raises(ConfigError, match="charms: the 'b' encoder gives no per-attribute tokens"):
        CHARMS().setup(model, optimizer, lambda: optimizer)
