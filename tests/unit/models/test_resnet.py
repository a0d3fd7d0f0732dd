"""ResNet-18/50 encoders: torchvision's layout, initialisation, output shapes, frames, freezing, registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmbalance.catalog import catalog, format_catalog
from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder, build_model
from mmbalance.models.resnet import ResNet, ResNet18, ResNet50

ARCH = {"resnet18": ((2, 2, 2, 2), 1), "resnet50": ((3, 4, 6, 3), 4)}
FC_CLASSES = 1000


def torchvision_layout(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``name`` state dict, generated from the architecture rules: a 7x7 stem
    of 64, four stages of widths 64..512 with blocks ``ARCH[name][0]``, bottleneck expansion 4, a 1x1
    projection shortcut on a stage's first block when it strides or widens, and ``fc``."""
    blocks, expansion = ARCH[name]
    keys: dict[str, tuple[int, ...]] = {}

    def conv(key: str, c_out: int, c_in: int, k: int) -> None:
        keys[f"{key}.weight"] = (c_out, c_in, k, k)

    def bn(key: str, c: int) -> None:
        keys.update({f"{key}.{s}": (c,) for s in ("weight", "bias", "running_mean", "running_var")})
        keys[f"{key}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    width = 64
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            if expansion == 1:
                convs = [(planes, width, 3), (planes, planes, 3)]
            else:
                convs = [(planes, width, 1), (planes, planes, 3), (planes * expansion, planes, 1)]
            for i, (c_out, c_in, k) in enumerate(convs, start=1):
                conv(f"{p}.conv{i}", c_out, c_in, k)
                bn(f"{p}.bn{i}", c_out)
            if b == 0 and (s > 0 or width != planes * expansion):
                conv(f"{p}.downsample.0", planes * expansion, width, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            width = planes * expansion
    keys["fc.weight"], keys["fc.bias"] = (FC_CLASSES, width), (FC_CLASSES,)
    return keys


def _param_count(layout: dict[str, tuple[int, ...]]) -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(torch.Size(s).numel() for k, s in layout.items() if not k.endswith(buffers))


@pytest.mark.parametrize(("name", "params"), [("resnet18", 11_689_512), ("resnet50", 25_557_032)])
def test_state_dict_equals_torchvision_layout(name: str, params: int) -> None:
    enc = build_encoder(name, (3, 32, 32), out_dim=None)
    layout = torchvision_layout(name)
    got = [(k, tuple(v.shape)) for k, v in enc.state_dict().items()]
    assert got == [(k, s) for k, s in layout.items() if not k.startswith("fc.")]  # same keys, shapes, order
    assert _param_count(layout) == params  # the generator agrees with torchvision's known totals
    fc = FC_CLASSES * enc.out_dim + FC_CLASSES
    assert sum(p.numel() for p in enc.parameters()) + fc == params


def test_known_keys_and_shapes() -> None:
    r18 = build_encoder("resnet18", (3, 32, 32), out_dim=None).state_dict()
    r50 = build_encoder("resnet50", (3, 32, 32), out_dim=None).state_dict()
    assert r18["layer3.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert r18["layer4.1.bn2.running_var"].shape == (512,) and "layer1.0.downsample.0.weight" not in r18
    assert r50["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert r50["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert r50["layer3.5.bn3.weight"].shape == (1024,) and "layer3.6.conv1.weight" not in r50
    assert r50["conv1.weight"].shape == r18["conv1.weight"].shape == (64, 3, 7, 7)


def test_bottleneck_strides_its_3x3_and_maps_shrink_32x() -> None:
    enc = build_encoder("resnet50", (3, 64, 64), out_dim=None)
    first = enc.layer2[0]
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert first.downsample[0].stride == (2, 2)
    assert enc.feature_maps(torch.randn(2, 3, 64, 64)).shape == (2, 2048, 2, 2)


def test_initialisation_follows_torchvision() -> None:
    torch.manual_seed(0)
    enc = build_encoder("resnet18", (3, 32, 32), out_dim=None)
    w = enc.layer4[1].conv2.weight  # 512 x 512 x 3 x 3: fan_out 512 * 9
    assert abs(w.std().item() - (2.0 / (512 * 9)) ** 0.5) < 1e-3 and abs(w.mean().item()) < 1e-3
    bns = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_makes_each_block_an_identity(name: str) -> None:
    enc = build_encoder(name, (3, 32, 32), out_dim=None, zero_init_residual=True).eval()
    block = enc.layer1[1]  # no downsample: the output is relu(x) = x for a non-negative input
    x = torch.relu(torch.randn(2, 64 * ARCH[name][1], 8, 8)).contiguous(memory_format=torch.channels_last)
    assert torch.equal(block(x), x)


def test_output_shapes_for_image_spectrogram_and_frames() -> None:
    image = build_encoder("resnet18", (3, 32, 32), out_dim=16)
    assert isinstance(image, ResNet18) and image.out_dim == 16 and image.pretrained is False
    out = image(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 16) and torch.all(out >= 0)
    spec = build_encoder("resnet50", (1, 40, 30), out_dim=None)
    assert isinstance(spec, ResNet50) and spec.conv1.weight.shape == (64, 1, 7, 7) and spec.out_dim == 2048
    assert spec(torch.randn(2, 1, 40, 30)).shape == (2, 2048)
    frames = build_encoder("resnet18", (3, 3, 32, 32), out_dim=None)
    assert frames.frames and frames(torch.randn(2, 3, 3, 32, 32)).shape == (2, 512)
    assert image.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_frame_mean_equals_the_papers_3d_average_pool(device: str) -> None:
    """Per-frame spatial mean then temporal mean == reshape (B*T, F, h, w) -> (B, F, T, h, w), 3-D pool."""
    torch.manual_seed(0)
    enc = build_encoder("resnet18", (4, 3, 64, 48), out_dim=None).to(device).eval()
    x = torch.randn(2, 4, 3, 64, 48, device=device)
    maps = enc.feature_maps(x.flatten(0, 1))  # [8, 512, 2, 2]
    video = maps.view(2, 4, *maps.shape[1:]).permute(0, 2, 1, 3, 4)  # [2, 512, 4, 2, 2]
    papers = F.adaptive_avg_pool3d(video, 1).flatten(1)
    assert torch.allclose(enc(x), papers, atol=1e-6)


def test_frame_max_is_the_max_over_per_frame_features(device: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder("resnet18", (3, 3, 32, 32), out_dim=None, temporal_pool="max").to(device).eval()
    x = torch.randn(2, 3, 3, 32, 32, device=device)
    per_frame = torch.stack([enc.feature_maps(x[:, t]).mean(dim=(2, 3)) for t in range(3)], dim=1)
    assert torch.allclose(enc(x), per_frame.amax(dim=1), atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "options", "fragment"),
    [
        ((16, 15), {}, "expected (channels, height, width) or (frames"),
        ((1, 16, 15), {"in_channels": 3}, "in_channels=3 does not match input_shape=(1, 16, 15); expected 1"),
        ((2, 3, 8, 8), {"temporal_pool": "median"}, "temporal_pool='median' is invalid"),
    ],
)
def test_bad_options_are_one_line_errors(shape: tuple[int, ...], options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_encoder("resnet18", shape, out_dim=8, **options)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def _bn_stats(enc: ResNet) -> list[torch.Tensor]:
    return [b.clone() for k, b in enc.named_buffers() if k.endswith(("running_mean", "running_var"))]


def test_freeze_fixes_parameters_and_batchnorm_statistics(device: str) -> None:
    enc = build_encoder("resnet18", (3, 32, 32), out_dim=None, freeze=True).to(device)
    assert not any(p.requires_grad for p in enc.parameters())
    before = _bn_stats(enc)
    enc.train()
    assert enc.training and not any(m.training for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d))
    enc(torch.randn(2, 3, 32, 32, device=device) * 3 + 1)
    assert all(torch.equal(a, b) for a, b in zip(before, _bn_stats(enc), strict=True))


def test_frozen_trunk_gets_no_gradient_but_its_projection_trains(device: str) -> None:
    model = (
        build_model(
            {"image": {"name": "resnet18", "freeze": True}, "tab": {"name": "mlp"}},
            {"image": (3, 32, 32), "tab": (5,)},
            num_classes=3,
            head={"name": "concat"},
            feature_dim=8,
        )
        .to(device)
        .train()
    )
    enc = model.encoders["image"]
    before = _bn_stats(enc)
    out = model({"image": torch.randn(2, 3, 32, 32, device=device), "tab": torch.randn(2, 5, device=device)})
    out.logits.sum().backward()
    assert all(p.grad is None for p in enc.conv1.parameters()) and all(
        p.grad is None for p in enc.layer4.parameters()
    )
    assert all(p.grad is not None for p in enc.proj.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, _bn_stats(enc), strict=True))


def test_registered_built_by_build_model_and_listed() -> None:
    model = build_model(
        {"image": {"name": "resnet18"}}, {"image": (1, 16, 15)}, num_classes=4, head={"name": "concat"}
    )
    enc = model.encoders["image"]
    assert isinstance(enc, ResNet18) and enc.conv1.in_channels == 1 and enc.out_dim == 128
    assert model({"image": torch.randn(2, 1, 16, 15)}).logits.shape == (2, 4)
    text = format_catalog(catalog())
    assert "resnet18" in text and "resnet50" in text and "temporal_pool='mean'" in text
