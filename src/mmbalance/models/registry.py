"""Encoder and head registries."""

from __future__ import annotations

from torch import nn

from mmbalance.registry import Registry

ENCODERS: Registry[nn.Module] = Registry("encoder", entry_points="mmbalance.encoders")
HEADS: Registry[nn.Module] = Registry("head", entry_points="mmbalance.heads")
