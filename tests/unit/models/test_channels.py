"""Channel maps read by a hook: the pooled maps are the encoder's own pooling, its output is unchanged."""

from __future__ import annotations

import torch

from mmbalance.models import build_encoder
from mmbalance.models.channels import ChannelMaps


def test_cnn_maps_are_the_input_of_its_pooling_and_the_output_is_unchanged() -> None:
    torch.manual_seed(0)
    enc = build_encoder("cnn", (1, 16, 15), 8, channels=(4, 6)).eval()
    x = torch.randn(3, 1, 16, 15)
    plain = enc(x)
    maps = ChannelMaps(enc)
    with maps:
        features = enc(x)
    assert torch.equal(features, plain)
    assert maps.channels == 6 and maps.cells(features).shape == (3, 6, 8 * 7)
    last_block = enc.net[:-4](x.contiguous(memory_format=torch.channels_last))  # up to the pooling
    torch.testing.assert_close(maps.pooled(features), last_block.mean((2, 3)))
    assert not enc.net[-4]._forward_pre_hooks  # the hook is gone after the block


def test_resnet_pooled_maps_equal_its_trunk_for_images_and_frames() -> None:
    torch.manual_seed(0)
    for shape in ((3, 32, 32), (2, 3, 32, 32)):
        enc = build_encoder("resnet18", shape, 8).eval()
        x = torch.randn(2, *shape)
        with ChannelMaps(enc) as maps:
            features = enc(x)
        assert maps.channels == 512
        torch.testing.assert_close(maps.pooled(features), enc.trunk(x))


def test_an_encoder_without_maps_gives_its_features_as_channels() -> None:
    enc = build_encoder("mlp", (5,), 4)
    x = torch.randn(3, 5)
    with ChannelMaps(enc) as maps:
        features = enc(x)
    assert maps.channels == 4 and torch.equal(maps.cells(features), features.unsqueeze(-1))


def test_a_loss_on_the_pooled_channels_trains_the_convolutions() -> None:
    enc = build_encoder("cnn", (1, 8, 8), 4, channels=(3,))
    with ChannelMaps(enc) as maps:
        features = enc(torch.randn(2, 1, 8, 8))
    maps.pooled(features).sum().backward()
    assert enc.net[0].weight.grad is not None and bool(enc.net[0].weight.grad.abs().sum() > 0)
