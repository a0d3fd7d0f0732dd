"""The base ``Strategy`` checks the fusion head: a method that lists ``supported_heads`` refuses any other
head with one line naming the method, the head and the supported ones, when the run is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbalance import config
from mmbalance.catalog import catalog
from mmbalance.errors import ConfigError
from mmbalance.experiment import train_run
from mmbalance.models import HEADS
from mmbalance.strategies import STRATEGIES, build_strategy, list_strategies

TINY = [
    "dataset__name=synthetic",
    "dataset__n_samples=60",
    "model__feature_dim=8",
    "train__epochs=1",
    "train__device=cpu",
]
LIMITED = [n for n in list_strategies() if STRATEGIES.get(n).supported_heads is not None]
# Methods whose head is a constructor argument (the others fix it as a class attribute).
CHOSEN = [n for n in LIMITED if "head" in STRATEGIES.params(n)]


def unsupported(name: str) -> str:
    """A registered head that ``name`` does not support."""
    supported = STRATEGIES.get(name).supported_heads
    return next(h for h in HEADS.names() if h not in supported)


def assert_names_it(err: pytest.ExceptionInfo[ConfigError], name: str, head: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    assert f"method {name!r}" in msg and f"head={head!r}" in msg
    assert all(h in msg for h in STRATEGIES.get(name).supported_heads)


def test_the_registry_has_methods_with_a_chosen_and_a_fixed_head() -> None:
    assert {"joint", "ogm_ge", "agm", "mses", "mslr", "domfn", "mmpareto", "pmr", "smv"} <= set(CHOSEN)
    assert {"gblending", "daft", "mmcl", "tip"} <= set(LIMITED) - set(CHOSEN)


@pytest.mark.parametrize("name", CHOSEN)
def test_an_unsupported_head_is_refused_before_anything_is_trained(name: str, tmp_path: Path) -> None:
    head = unsupported(name)
    cfg = config.resolve({}, [*TINY, f"strategy__name={name}", f"strategy__head={head}"])
    with pytest.raises(ConfigError) as err:
        train_run(cfg, tmp_path / "run")
    assert_names_it(err, name, head)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", LIMITED)
def test_validate_refuses_an_unsupported_head(name: str) -> None:
    s = build_strategy(name)
    s.head = unsupported(name)
    with pytest.raises(ConfigError) as err:
        s.validate(["image", "tabular"])
    assert_names_it(err, name, s.head)
    with pytest.raises(ConfigError):
        s.head_config()


@pytest.mark.parametrize("name", LIMITED)
def test_list_shows_the_supported_heads(name: str) -> None:
    assert catalog()["methods"][name]["heads"] == list(STRATEGIES.get(name).supported_heads)


def test_a_method_without_a_list_takes_any_registered_head_and_no_other() -> None:
    s = build_strategy("igm")
    assert type(s).supported_heads is None
    s.validate(["a", "b"])
    s.head = "nonexistent"
    with pytest.raises(ConfigError, match="nonexistent"):
        s.validate(["a", "b"])
