"""Encoder and head registries."""

from __future__ import annotations

from torch import nn

from mmbalance.registry import Registry

ENCODERS: Registry[nn.Module] = Registry("encoder")
HEADS: Registry[nn.Module] = Registry("head")
