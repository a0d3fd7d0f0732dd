"""DAFT: the block's algebra, conditioned encoders, and the ``daft`` strategy's model."""

from __future__ import annotations

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder, build_model
from mmbalance.models.daft import DAFTBlock
from mmbalance.strategies import build_strategy
from mmbalance.testing import tiny_problem


def _zero_(layer: torch.nn.Linear) -> None:
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (3, 4)])
def test_zero_conditioning_output_weights_make_daft_the_identity(shape: tuple[int, ...]) -> None:
    block = DAFTBlock(channels=4, condition_dim=7)
    _zero_(block.mlp[2])
    fmap = torch.randn(shape)
    torch.testing.assert_close(block(fmap, torch.randn(3, 7)), fmap)


def test_known_scale_and_shift() -> None:
    block = DAFTBlock(channels=2, condition_dim=3, reduction=1)
    _zero_(block.mlp[2])
    with torch.no_grad():
        block.mlp[2].bias.copy_(torch.tensor([0.5, -1.0, 2.0, 3.0]))  # Δα = (0.5, -1), β = (2, 3)
    fmap = torch.randn(2, 2, 3, 3)
    expected = torch.stack([1.5 * fmap[:, 0] + 2.0, 0.0 * fmap[:, 1] + 3.0], dim=1)
    torch.testing.assert_close(block(fmap, torch.randn(2, 3)), expected)


def test_zero_weights_on_the_tabular_input_remove_its_influence() -> None:
    block = DAFTBlock(channels=4, condition_dim=3)
    with torch.no_grad():
        block.mlp[0].weight[:, 4:].zero_()  # the columns that read the condition
    fmap = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(block(fmap, torch.randn(2, 3)), block(fmap, torch.randn(2, 3)))


def test_bottleneck_width_follows_the_official_reduction() -> None:
    assert DAFTBlock(channels=64, condition_dim=129).mlp[0].out_features == (64 + 129) // 7
    with pytest.raises(ConfigError, match="film_reduction=0 is invalid"):
        DAFTBlock(channels=4, condition_dim=3, reduction=0)


def test_conditioned_cnn_reads_the_tabular_input_through_the_model() -> None:
    model = build_model(
        {"image": {"name": "cnn", "channels": (4, 8), "condition": "tabular"}},
        {"image": (1, 8, 8), "tabular": (5,)},
        3,
        {"name": "concat"},
        6,
    ).eval()
    assert model.modalities == ["image"] and model.input_modalities == ["image", "tabular"]
    assert model.encoders["image"].film.block.channels == 4  # the last block's input channels
    image = torch.randn(2, 1, 8, 8)
    a = model({"image": image, "tabular": torch.randn(2, 5)}).logits
    b = model({"image": image, "tabular": torch.randn(2, 5)}).logits
    assert not torch.allclose(a, b)
    with pytest.raises(ConfigError, match="conditioned on 'tabular' and was called without it"):
        model.encoders["image"](image)


def test_unconditioned_encoders_are_unchanged() -> None:
    enc = build_encoder("cnn", (1, 8, 8), 6, channels=(4, 8))
    assert enc.film is None and enc.condition is None
    assert not any(k.startswith("film") for k in enc.state_dict())


def test_condition_on_an_unknown_modality_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="condition='text'; expected one of"):
        build_model({"image": {"name": "mlp", "condition": "text"}}, {"image": (4,)}, 3, {"name": "concat"})


def test_daft_strategy_builds_an_image_model_conditioned_on_tabular() -> None:
    p = tiny_problem(lambda: build_strategy("daft", image="a", tabular="b"))
    assert p.model.modalities == ["a"] and p.model.encoders["a"].condition == "b"
    with pytest.raises(ConfigError, match="daft tabular='tab'; expected one of"):
        build_strategy("daft", tabular="tab").modalities(["image", "tabular"])
    assert build_strategy("daft").roles(["tabular", "text", "image"]) == ("image", "tabular")
    assert build_strategy("daft").roles(["x", "y"]) == ("x", "y")


@pytest.mark.parametrize("shape", [(1, 32, 32), (2, 3, 32, 32)])  # an image, and a clip of two frames
def test_a_conditioned_resnet_acts_on_its_last_block_and_is_the_plain_resnet_when_the_block_is_zero(
    shape: tuple[int, ...],
) -> None:
    torch.manual_seed(0)
    plain = build_encoder("resnet18", shape, 6).eval()
    daft = build_encoder("resnet18", shape, 6, condition="tabular", condition_shape=(5,)).eval()
    assert daft.film.block.channels == 512 and daft.film.split == 1  # the input of layer4's last block
    daft.load_state_dict(plain.state_dict(), strict=False)  # the same trunk and projection
    x = torch.randn(2, *shape)
    a, b = daft(x, torch.randn(2, 5)), daft(x, torch.randn(2, 5))
    assert not torch.allclose(a, b)
    _zero_(daft.film.block.mlp[-1])
    assert torch.allclose(daft(x, torch.randn(2, 5)), plain(x), atol=1e-6)


def test_a_conditioned_frozen_resnet_is_never_feature_cached() -> None:
    from mmbalance.models.feature_cache import cacheable

    frozen = build_encoder("resnet18", (1, 32, 32), 6, freeze=True)
    conditioned = build_encoder("resnet18", (1, 32, 32), 6, freeze=True, condition="t", condition_shape=(3,))
    assert cacheable(frozen) and not cacheable(conditioned)
    assert all(p.requires_grad for p in conditioned.film.parameters())  # the new block trains
