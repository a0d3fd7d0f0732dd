"""Shared fixtures of the gradient-math tests: the device comes from ``MMBALANCE_TEST_DEVICE``."""

from __future__ import annotations

import os

import pytest
import torch

DEVICE_ENV = "MMBALANCE_TEST_DEVICE"


def pick_device() -> torch.device:
    """The device named by ``MMBALANCE_TEST_DEVICE`` (default ``"cpu"``); skips when it is unavailable."""
    device = torch.device(os.environ.get(DEVICE_ENV, "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"{DEVICE_ENV}={device} but CUDA is not available")
    return device


@pytest.fixture
def device() -> torch.device:
    return pick_device()


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded CPU generator: draw on the CPU, then move to ``device``, so values match across devices."""
    return torch.Generator().manual_seed(1234)
