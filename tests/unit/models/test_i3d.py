"""The i3d encoder: the PyTorch I3D port's layout, output sizes per stream, weights, freezing, registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmbalance.catalog import catalog, format_catalog
from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder, build_model, parameter_groups
from mmbalance.models.i3d import I3D

SMALL = 0.125  # width of the fast networks
MIXED = {  # the port's Inception modules: (b0, b1a, b1b, b2a, b2b, b3b) and input width
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def port_layout(channels: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the port's ``InceptionI3d`` trunk (without ``logits``), from its layer table."""
    keys: dict[str, tuple[int, ...]] = {}

    def unit(name: str, c_in: int, c_out: int, k: int) -> None:
        keys[f"{name}.conv3d.weight"] = (c_out, c_in, k, k, k)
        keys.update({f"{name}.bn.{s}": (c_out,) for s in ("weight", "bias", "running_mean", "running_var")})
        keys[f"{name}.bn.num_batches_tracked"] = ()

    unit("Conv3d_1a_7x7", channels, 64, 7)
    unit("Conv3d_2b_1x1", 64, 64, 1)
    unit("Conv3d_2c_3x3", 64, 192, 3)
    for name, (c_in, w) in MIXED.items():
        unit(f"{name}.b0", c_in, w[0], 1)
        unit(f"{name}.b1a", c_in, w[1], 1)
        unit(f"{name}.b1b", w[1], w[2], 3)
        unit(f"{name}.b2a", c_in, w[3], 1)
        unit(f"{name}.b2b", w[3], w[4], 3)
        unit(f"{name}.b3b", c_in, w[5], 1)
    return keys


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_state_dict_equals_the_port_layout(channels: int) -> None:
    enc = I3D((8, channels, 32, 32), out_dim=None)
    got = {k: tuple(v.shape) for k, v in enc.backbone_state_dict().items()}
    assert got == port_layout(channels)
    assert enc.out_dim == enc.feature_dim == 1024
    assert set(enc.state_dict()) == set(got)  # no projection without out_dim


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_output_sizes_for_each_stream(channels: int, device: str) -> None:
    x = torch.randn(2, 8, channels, 32, 32, device=device)
    assert I3D((8, channels, 32, 32), out_dim=5, width=SMALL).to(device)(x).shape == (2, 5)
    plain = I3D((8, channels, 32, 32), out_dim=None, width=SMALL).to(device)
    assert plain(x).shape == (2, plain.feature_dim) and plain.feature_dim == 128


def test_the_papers_clip_ends_as_8x7x7_and_the_mean_is_igms_average_pool() -> None:
    enc = I3D((64, 3, 224, 224), out_dim=None, width=1 / 16).eval()
    x = torch.randn(1, 64, 3, 224, 224)
    with torch.no_grad():
        maps = enc.feature_maps(x)
        assert maps.shape == (1, 64, 8, 7, 7)
        pooled = torch.nn.functional.avg_pool3d(maps, (8, 7, 7)).flatten(1)
        torch.testing.assert_close(enc(x), pooled)


def test_any_clip_size_gives_ceil_division_maps() -> None:
    enc = I3D((5, 1, 40, 33), out_dim=None, width=SMALL)
    assert enc.feature_maps(torch.randn(1, 5, 1, 40, 33)).shape == (1, 128, 1, 2, 2)


def _saved(tmp_path: Path, enc: I3D, extra: dict | None = None) -> str:
    path = tmp_path / "i3d.pt"
    torch.save({**enc.backbone_state_dict(), **(extra or {})}, path)
    return str(path)


def test_saved_weights_load_back_and_give_identical_outputs(tmp_path: Path) -> None:
    src = I3D((8, 2, 32, 32), out_dim=None, width=SMALL)
    for name, b in src.named_buffers():  # non-default statistics, so that a load that skipped them shows
        if name.endswith(("running_mean", "running_var")):
            b.copy_(torch.rand_like(b) + 0.5)
    path = _saved(tmp_path, src, {"logits.conv3d.weight": torch.zeros(4, 128, 1, 1, 1)})
    dst = I3D((8, 2, 32, 32), out_dim=None, width=SMALL, weights=path)
    assert dst.pretrained and not src.pretrained
    x = torch.randn(2, 8, 2, 32, 32)
    torch.testing.assert_close(dst.eval()(x), src.eval()(x), rtol=0, atol=0)


def test_files_without_batchnorm_counters_load(tmp_path: Path) -> None:
    src = I3D((4, 3, 32, 32), out_dim=None, width=SMALL)
    sd = {k: v for k, v in src.backbone_state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pt"
    torch.save(sd, path)
    assert I3D((4, 3, 32, 32), out_dim=None, width=SMALL, weights=str(path)).pretrained


def test_rgb_stem_is_summed_for_a_depth_network(tmp_path: Path) -> None:
    rgb = I3D((4, 3, 32, 32), out_dim=None, width=SMALL)
    depth = I3D((4, 1, 32, 32), out_dim=None, width=SMALL, weights=_saved(tmp_path, rgb))
    want = rgb.Conv3d_1a_7x7.conv3d.weight.sum(dim=1, keepdim=True)
    assert torch.equal(depth.Conv3d_1a_7x7.conv3d.weight, want)
    assert torch.equal(depth.Mixed_5c.b0.conv3d.weight, rgb.Mixed_5c.b0.conv3d.weight)


def test_mismatched_weights_are_one_line_errors(tmp_path: Path) -> None:
    rgb = _saved(tmp_path, I3D((4, 3, 32, 32), out_dim=None, width=SMALL))
    with pytest.raises(ConfigError, match=r"i3d weights=.*i3d\.pt.*shape mismatch Conv3d_1a_7x7") as err:
        I3D((4, 2, 32, 32), out_dim=None, width=SMALL, weights=rgb)  # RGB weights on a flow network
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"shape mismatch .*expected a state dict of the PyTorch I3D"):
        I3D((4, 3, 32, 32), out_dim=None, width=0.25, weights=rgb)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pt")
    with pytest.raises(ConfigError, match=r"missing keys Conv3d_1a_7x7.*unexpected keys conv1.weight"):
        I3D((4, 3, 32, 32), out_dim=None, width=SMALL, weights=str(tmp_path / "resnet.pt"))
    with pytest.raises(ConfigError, match="no such file"):
        I3D((4, 3, 32, 32), weights=str(tmp_path / "absent.pt"))


@pytest.mark.parametrize(
    ("shape", "options", "fragment"),
    [
        ((3, 32, 32), {}, "expected \\(frames, channels, height, width\\)"),
        ((4, 3, 32, 32), {"in_channels": 2}, "in_channels=2 does not match"),
        ((4, 3, 32, 32), {"width": 0}, "width=0; expected a positive number"),
    ],
)
def test_bad_options_are_one_line_errors(shape: tuple[int, ...], options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        I3D(shape, **options)


def test_freeze_excludes_the_trunk_and_keeps_batchnorm_statistics(device: str) -> None:
    model = (
        build_model(
            {
                "rgb": {"name": "i3d", "freeze": True, "width": SMALL},
                "depth": {"name": "i3d", "width": SMALL},
            },
            {"rgb": (4, 3, 32, 32), "depth": (4, 1, 32, 32)},
            num_classes=3,
            head={"name": "concat"},
            feature_dim=8,
        )
        .to(device)
        .train()
    )
    enc = model.encoders["rgb"]
    trunk = [p for n in enc.names for p in getattr(enc, n).parameters()]
    grouped = {id(q) for g in parameter_groups(model) for q in g["params"]}
    assert trunk and not grouped & {id(p) for p in trunk}
    assert all(id(p) in grouped for p in enc.proj.parameters())
    assert not any(m.training for m in enc.modules() if isinstance(m, torch.nn.BatchNorm3d))
    stats = [b.clone() for k, b in enc.named_buffers() if k.endswith("running_mean")]
    x = {
        "rgb": torch.randn(2, 4, 3, 32, 32, device=device),
        "depth": torch.randn(2, 4, 1, 32, 32, device=device),
    }
    out = model(x)
    out.logits.sum().backward()
    assert all(p.grad is None for p in trunk) and all(p.grad is not None for p in enc.proj.parameters())
    assert all(
        torch.equal(a, b)
        for a, b in zip(stats, (b for k, b in enc.named_buffers() if k.endswith("running_mean")), strict=True)
    )
    assert model.encoders["depth"].Conv3d_1a_7x7.conv3d.weight.grad is not None


def test_registered_and_listed() -> None:
    enc = build_encoder("i3d", (4, 1, 32, 32), out_dim=7, width=SMALL)
    assert isinstance(enc, I3D) and enc.Conv3d_1a_7x7.conv3d.in_channels == 1 and enc.out_dim == 7
    assert "i3d" in format_catalog(catalog()) and "width=1.0" in format_catalog(catalog())
