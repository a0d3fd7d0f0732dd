"""Loading torchvision-format weights into the ResNet encoders: round trip, fc, errors, 3 -> 1 channel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder
from mmbalance.models.resnet import ResNet

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _trained_looking(name: str = "resnet18", shape: tuple[int, ...] = (3, 32, 32)) -> ResNet:
    """An encoder whose BatchNorm statistics and affine parameters are not the defaults."""
    torch.manual_seed(0)
    enc = build_encoder(name, shape, out_dim=None)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    return enc.eval()


def _save(state: dict[str, torch.Tensor], path: Path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, name: str, device: str) -> None:
    src = _trained_looking(name)
    path = _save(src.state_dict(), tmp_path / "w.pt")  # out_dim=None: the state dict is the trunk's
    loaded = build_encoder(name, (3, 32, 32), out_dim=None, weights=path).eval()
    assert loaded.pretrained is True and src.pretrained is False
    assert torch.equal(loaded.to(device)(X.to(device)), src.to(device)(X.to(device)))
    got, want = loaded.state_dict(), src.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_projected_encoder_loads_the_trunk_and_keeps_its_projection(tmp_path: Path) -> None:
    src = _trained_looking()
    path = _save(src.backbone_state_dict(), tmp_path / "w.pt")
    loaded = build_encoder("resnet18", (3, 32, 32), out_dim=8, weights=path).eval()
    assert set(loaded.backbone_state_dict()) == set(src.state_dict())
    assert torch.equal(loaded.feature_maps(X), src.feature_maps(X)) and loaded(X).shape == (2, 8)


def test_fc_keys_are_ignored_and_old_files_without_counters_load(tmp_path: Path) -> None:
    src = _trained_looking()
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    state.update({"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)})
    loaded = build_encoder("resnet18", (3, 32, 32), out_dim=None, weights=_save(state, tmp_path / "w.pt"))
    assert torch.equal(loaded.eval()(X), src(X))


def test_three_channel_conv1_is_summed_for_a_one_channel_encoder(tmp_path: Path) -> None:
    """Summing over input channels: a grey input g through the 1-channel net equals [g, g, g] through RGB."""
    src = _trained_looking()
    path = _save(src.state_dict(), tmp_path / "w.pt")
    mono = build_encoder("resnet18", (1, 32, 32), out_dim=None, weights=path).eval()
    assert torch.equal(mono.conv1.weight, src.conv1.weight.sum(dim=1, keepdim=True))
    grey = X[:, :1]
    assert torch.allclose(mono(grey), src(grey.expand(-1, 3, -1, -1)), atol=1e-5)


def _error(path: str, name: str = "resnet18", shape: tuple[int, ...] = (3, 32, 32)) -> str:
    with pytest.raises(ConfigError) as err:
        build_encoder(name, shape, out_dim=None, weights=path)
    message = str(err.value)
    assert "\n" not in message and path in message
    return message


def test_bad_state_dicts_are_one_line_errors_naming_the_first_keys(tmp_path: Path) -> None:
    state = _trained_looking().state_dict()
    missing = {k: v for k, v in state.items() if k != "layer2.1.conv2.weight"}
    assert "missing keys layer2.1.conv2.weight" in _error(_save(missing, tmp_path / "m.pt"))
    extra = {**state, "head.weight": torch.zeros(3)}
    assert "unexpected keys head.weight" in _error(_save(extra, tmp_path / "u.pt"))
    wrong = {**state, "layer1.0.bn1.bias": torch.zeros(65)}
    assert "shape mismatch layer1.0.bn1.bias (65,) (model: (64,))" in _error(_save(wrong, tmp_path / "s.pt"))
    message = _error(_save(state, tmp_path / "r18.pt"), name="resnet50")  # another architecture
    assert "missing keys layer1.0.conv3.weight" in message and "more)" in message
    assert "(model: (64, 2, 7, 7))" in _error(str(tmp_path / "r18.pt"), shape=(2, 32, 32))


def test_unreadable_or_foreign_files_are_one_line_errors(tmp_path: Path) -> None:
    assert "no such file" in _error(str(tmp_path / "absent.pt"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert "not readable by torch.load" in _error(str(garbage))
    assert "holds a list" in _error(_save([torch.zeros(2)], tmp_path / "list.pt"))  # type: ignore[arg-type]


def test_weights_then_freeze(tmp_path: Path) -> None:
    src = _trained_looking()
    path = _save(src.state_dict(), tmp_path / "w.pt")
    frozen = build_encoder("resnet18", (3, 32, 32), out_dim=None, weights=path, freeze=True).train()
    assert frozen.pretrained and not any(p.requires_grad for p in frozen.parameters())
    assert torch.equal(frozen(X), src(X))  # train mode, yet BatchNorm uses the loaded running statistics
