from __future__ import annotations

import pytest

from mmbalance.errors import ConfigError, UnknownNameError
from mmbalance.registry import Registry


def test_register_build_params() -> None:
    reg: Registry[object] = Registry("thing")

    @reg.register("t")
    def make(a: int, b: str = "x") -> tuple[int, str]:
        return a, b

    assert reg.names() == ["t"]
    assert reg.build("t", a=1) == (1, "x")
    assert reg.params("t")["b"] == "x"
    with pytest.raises(ValueError, match="already registered"):
        reg.register("t")(make)
    with pytest.raises(UnknownNameError, match="unknown thing 'u'; expected one of: t"):
        reg.get("u")
    with pytest.raises(UnknownNameError, match="'c'"):
        reg.build("t", a=1, c=2)
    with pytest.raises(ConfigError, match="cannot build thing 't'"):
        reg.build("t")
