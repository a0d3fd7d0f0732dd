"""Held-out training rows: the row choice, and per-head losses as per-sample means in eval mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmbalance.data import BatchLoader
from mmbalance.errors import ConfigError
from mmbalance.strategies._heldout import head_losses, heldout_rows, row_ids
from mmbalance.strategies.joint import Joint
from mmbalance.testing import tiny_problem
from mmbalance.types import Batch


def test_rows_are_a_pure_function_of_the_row_id_and_spread_evenly() -> None:
    ids = torch.arange(5000)
    held = heldout_rows(ids, 0.1)
    assert torch.equal(held[ids.flip(0)], heldout_rows(ids.flip(0), 0.1))  # order does not matter
    for block in held.split(100):  # every block of consecutive ids holds out about 10 of its rows
        assert 8 <= int(block.sum()) <= 12
    assert not heldout_rows(ids[1:], 0.0).any() and heldout_rows(ids, 1.0).all()


def test_head_losses_are_per_sample_means_in_eval_mode(device: str) -> None:
    p = tiny_problem(lambda: Joint(head="sum"), device=device)
    p.model.train()
    losses = head_losses(p.model, p.loader, 0.25)
    assert p.model.training  # the mode is restored
    p.model.eval()
    with torch.no_grad():
        rows = torch.arange(len(p.dataset), device=device)
        held = heldout_rows(rows, 0.25)
        out = p.model(p.dataset.get(rows))
        y = p.dataset.labels
        for k, z in enumerate([out.unimodal_logits["a"], out.unimodal_logits["b"], out.logits]):
            torch.testing.assert_close(losses["train"][k], F.cross_entropy(z[~held], y[~held]))
            torch.testing.assert_close(losses["heldout"][k], F.cross_entropy(z[held], y[held]))
    only = head_losses(p.model, p.loader, 0.25, heldout_only=True)
    assert set(only) == {"heldout"}
    torch.testing.assert_close(only["heldout"], losses["heldout"])


def test_an_empty_part_and_missing_row_ids_give_one_line() -> None:
    p = tiny_problem(lambda: Joint())
    loader = BatchLoader(p.dataset, torch.arange(1, 6), batch_size=4)  # ids 1..5: none below 1%
    with pytest.raises(ConfigError, match=r"holdout=0.01 leaves .* 0 heldout rows"):
        head_losses(p.model, loader, 0.01)
    with pytest.raises(ConfigError, match=r"needs Batch\.index"):
        row_ids(Batch(p.batches[0].inputs, p.batches[0].label))
