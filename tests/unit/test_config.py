from __future__ import annotations

import pytest

from mmbalance import config
from mmbalance.errors import ConfigError, UnknownNameError


def test_defaults_resolve() -> None:
    cfg = config.resolve()
    assert cfg["dataset"]["name"] == "mfeat" and cfg["strategy"]["name"] == "joint"
    assert cfg["train"]["epochs"] == 30


def test_overrides_route_to_sections() -> None:
    cfg = config.resolve(
        {},
        [
            "strategy__head=sum",
            "optim__lr=1e-3",
            "data__batch_size=32",
            "model__encoders__image__name=cnn",
            "model__encoders__image__channels=[8, 16]",
        ],
    )
    assert cfg["strategy"]["head"] == "sum"
    assert cfg["optim"]["lr"] == pytest.approx(1e-3)
    assert cfg["data"]["batch_size"] == 32
    assert cfg["model"]["encoders"]["image"] == {"name": "cnn", "channels": [8, 16]}


def test_config_file_then_overrides() -> None:
    cfg = config.resolve({"train": {"epochs": 3}}, ["train__epochs=4"])
    assert cfg["train"]["epochs"] == 4


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("dataset__name=nope", "unknown dataset 'nope'"),
        ("strategy__name=nope", "unknown method 'nope'"),
        ("strategy__bogus=1", "'bogus'"),
        ("optim__name=lbfgs", "unknown optimizer 'lbfgs'"),
        ("train__nope=1", "'nope'"),
        ("nosection__x=1", "unknown config section 'nosection'"),
        ("model__encoders__image__name=transformer", "unknown encoder 'transformer'"),
        ("train__epochs=-1", "train.epochs=-1"),
        ("data__split=[0.5, 1.5, 0.0]", "out of range"),
        ("optim__lr=-0.1", "optim.lr=-0.1"),
        ("train__select_metric=loss", "unknown select_metric 'loss'"),
        ("strategy", "no '='"),
    ],
)
def test_bad_values_give_one_line_errors(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.resolve({}, [override])
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(UnknownNameError) as info:
        config.resolve({}, ["dataset__name=nope"])
    assert "synthetic" in str(info.value) and "mfeat" in str(info.value)


def test_parse_value() -> None:
    assert config.parse_value("3") == 3
    assert config.parse_value("0.5") == 0.5
    assert config.parse_value("true") is True
    assert config.parse_value("null") is None
    assert config.parse_value("[1, 2]") == [1, 2]
    assert config.parse_value("concat") == "concat"


@pytest.mark.parametrize("word", ["off", "on", "yes", "no", "Off", "NO"])
def test_yaml11_boolean_words_stay_strings(word: str) -> None:
    assert config.parse_value(word) == word
    assert config.parse_value("false") is False and config.parse_value("True") is True
    cfg = config.resolve({}, ["strategy__name=igm", "strategy__sam_mode=off"])
    assert cfg["strategy"]["sam_mode"] == "off"
