"""SMV: Shapley values (released two-player formula, efficiency), copy counts, the enlarged-batch loss,
warm-up equivalence with joint training."""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from mmbalance import testing
from mmbalance.errors import ConfigError
from mmbalance.strategies.smv import SMV, copy_counts, shapley_matrix
from mmbalance.testing import check_strategy, params_of, run_steps, same_tensors

# Equivalences compare steps bit for bit: no dropout, whose masks would depend on RNG use.
tiny_problem = partial(testing.tiny_problem, dropout=0.0)


def test_contract(device: str) -> None:
    check_strategy(lambda: SMV(warmup_epochs=0), device=device)
    check_strategy(lambda: SMV(head="sum", warmup_epochs=0), device=device)


def test_three_modalities(device: str) -> None:
    p = tiny_problem(lambda: SMV(warmup_epochs=0), modalities=3, device=device)
    logs = run_steps(p, 3)
    assert p.strategy.copies_ is not None and p.strategy.copies_.shape[1] == 3
    assert {"smv_extra", "smv_value_a", "smv_value_b", "smv_value_c"} <= set(logs[0].logs)


def test_two_player_values_equal_the_released_formula() -> None:
    A = shapley_matrix(2)
    for correct_all, correct_a, correct_v in itertools.product([0.0, 1.0], repeat=3):
        v = torch.tensor([0.0, correct_a, correct_v, 2 * correct_all], dtype=torch.float64)
        phi_a, phi_v = (A @ v).tolist()
        assert phi_a == (correct_a + 2 * correct_all - correct_v) / 2
        assert phi_v == (correct_v + 2 * correct_all - correct_a) / 2


@pytest.mark.parametrize("m", [3, 4])
def test_values_are_efficient_and_match_the_permutation_definition(m: int) -> None:
    g = torch.Generator().manual_seed(m)
    correct = torch.randint(0, 2, (2**m,), generator=g).double()
    v = correct * torch.tensor([bin(s).count("1") for s in range(2**m)], dtype=torch.float64)
    v[0] = 0.0
    phi = shapley_matrix(m) @ v
    assert float(phi.sum()) == pytest.approx(float(v[-1]))  # efficiency: the values share v(all)
    for i in range(m):  # the average marginal contribution over all orders of the players
        total = 0.0
        for order in itertools.permutations(range(m)):
            before = sum(1 << j for j in order[: order.index(i)])
            total += float(v[before | 1 << i] - v[before])
        assert float(phi[i]) == pytest.approx(total / math.factorial(m))


def test_copy_counts_thresholds() -> None:
    values = torch.tensor([1.5, 1.0, 0.99, 0.5, 0.41, 0.4, 0.0, -0.05, -0.1, -0.5])
    assert copy_counts(values).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]


def test_enlarged_loss_is_the_mean_over_explicit_copies() -> None:
    p = tiny_problem(lambda: SMV(warmup_epochs=0))
    batch = p.batches[0]
    feats = p.model.encode(batch.inputs)
    copies = torch.randint(0, 4, (batch.size, 2), generator=torch.Generator().manual_seed(0))
    loss, logs = p.strategy.enlarged_loss(feats, p.model.head(feats), batch.label, copies)
    rows, labels = [p.model.head(feats)], [batch.label]
    for i, j in itertools.product(range(batch.size), range(2)):
        keep = "ab"[j]
        only = {m: f[i : i + 1] if m == keep else torch.zeros_like(f[i : i + 1]) for m, f in feats.items()}
        for _ in range(int(copies[i, j])):
            rows.append(p.model.head(only))
            labels.append(batch.label[i : i + 1])
    torch.testing.assert_close(loss, F.cross_entropy(torch.cat(rows), torch.cat(labels)))
    assert float(logs["smv_extra"]) == pytest.approx(float(copies.sum()) / batch.size)


def test_valuation_sets_copies_per_dataset_row() -> None:
    p = tiny_problem(lambda: SMV(warmup_epochs=1))
    p.strategy.on_epoch_start(0, p.loader)
    assert p.strategy.copies_ is None  # warm-up: no valuation
    p.strategy.on_epoch_start(1, p.loader)
    copies = p.strategy.copies_
    assert copies is not None and copies.shape == (len(p.dataset), 2)
    p.model.eval()
    with torch.no_grad():
        batch = p.batches[1]
        feats = p.model.encode(batch.inputs)
        only_a = p.model.head({"a": feats["a"], "b": torch.zeros_like(feats["b"])}).argmax(1) == batch.label
        only_b = p.model.head({"a": torch.zeros_like(feats["a"]), "b": feats["b"]}).argmax(1) == batch.label
        both = p.model.head(feats).argmax(1) == batch.label
    phi_a = (only_a.double() + 2 * both.double() - only_b.double()) / 2
    assert torch.equal(copies[batch.index, 0], copy_counts(phi_a))


def test_warm_up_is_joint_training_bit_for_bit() -> None:
    a = tiny_problem(lambda: SMV(warmup_epochs=5))
    b = tiny_problem(lambda: SMV(warmup_epochs=5))
    run_steps(a, 3)
    for batch in b.batches[:3]:
        b.strategy.optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(b.model(batch.inputs).logits, batch.label).backward()
        b.strategy.optimizer.step()
    assert same_tensors(params_of(a.model), params_of(b.model))


def test_a_batch_without_row_ids_is_refused() -> None:
    from mmbalance.types import Batch

    p = tiny_problem(lambda: SMV(warmup_epochs=0))
    run_steps(p, 1)
    batch = p.batches[0]
    with pytest.raises(ConfigError, match="needs dataset row ids"):
        p.strategy.training_step(Batch(batch.inputs, batch.label, None), 0)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"head": "shared"}, "head='shared'"), ({"warmup_epochs": -1}, "warmup_epochs=-1")],
)
def test_bad_values_give_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        SMV(**kwargs).validate(["a", "b"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="takes 2 to 8 modalities"):
        SMV().validate(list("abcdefghi"))
