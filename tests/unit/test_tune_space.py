"""The search-space grammar of ``mmbalance tune``: known values, round trips, and one-line errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbalance.config import parse_value, resolve
from mmbalance.errors import ConfigError
from mmbalance.tune.space import Dimension, parse_dimension, parse_space


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("strategy__margin=uniform(0,1)", Dimension("strategy__margin", "uniform", (0.0, 1.0))),
        ("optim__lr=loguniform(1e-4, 1e-2)", Dimension("optim__lr", "loguniform", (1e-4, 1e-2))),
        (" data__batch_size = int( 8 , 64 ) ", Dimension("data__batch_size", "int", (8, 64))),
        ("strategy__head=choice(sum,concat)", Dimension("strategy__head", "choice", ("sum", "concat"))),
        ("train__patience=choice(0, 2, 5)", Dimension("train__patience", "choice", (0, 2, 5))),
        (
            "train__deterministic=choice(true,false)",
            Dimension("train__deterministic", "choice", (True, False)),
        ),
    ],
)
def test_known_texts_parse(text: str, expected: Dimension) -> None:
    dim = parse_dimension(text)
    assert dim == expected
    assert parse_dimension(str(dim)) == dim  # the canonical text reads back to the same dimension
    assert all(type(a) is type(b) for a, b in zip(dim.values, expected.values, strict=True))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("strategy__margin", "not of the form KEY=KIND(ARGS)"),
        ("strategy__margin=0.5", "not of the form KEY=KIND(ARGS)"),
        ("strategy__margin=uniform(0,1", "not of the form KEY=KIND(ARGS)"),
        ("=uniform(0,1)", "not of the form KEY=KIND(ARGS)"),
        ("optim__lr=normal(0,1)", "unknown distribution 'normal'"),
        ("optim__lr=uniform(1)", "uniform takes 2 arguments (low, high), got 1"),
        ("optim__lr=uniform(0,1,2)", "uniform takes 2 arguments (low, high), got 3"),
        ("optim__lr=uniform(0,)", "an argument is empty"),
        ("optim__lr=uniform(a,1)", "'a' is not a number"),
        ("optim__lr=uniform(0,inf)", "'inf' is not a finite number"),
        ("optim__lr=uniform(nan,1)", "'nan' is not a finite number"),
        ("optim__lr=uniform(1,1)", "low=1 must be below high=1"),
        ("optim__lr=uniform(2,1)", "low=2 must be below high=1"),
        ("optim__lr=loguniform(0,1)", "loguniform needs low > 0, got 0"),
        ("optim__lr=loguniform(-1,1)", "loguniform needs low > 0, got -1"),
        ("data__batch_size=int(8.5,64)", "'8.5' is not an integer"),
        ("data__batch_size=int(1e3,2e3)", "'1e3' is not an integer"),
        ("strategy__head=choice(sum)", "choice needs at least 2 values"),
        ("strategy__head=choice(sum,sum)", "a choice is repeated"),
        ("strategy__head=choice(sum,[1, 2])", "choice '[1' is not a number or a word"),
        ("strategy__head=choice(sum,{a: 1})", "choice '{a: 1}' is not a number or a word"),
        ("strategy__head=choice(sum,2020-01-01)", "is a date; expected a number or a word"),
        ("strategy__head=choice(sum,.nan)", "is not a finite number"),
    ],
)
def test_bad_texts_fail_with_one_line_naming_the_text(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dimension(text)
    message = str(info.value)
    assert "\n" not in message and fragment in message, message
    assert f"--space {' '.join(text.split())!r}" in message and "expected KEY=uniform(a,b)" in message


@given(st.text(max_size=40))
def test_any_text_parses_or_fails_with_one_config_line(text: str) -> None:
    try:
        dim = parse_dimension(text)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("--space ")
    else:
        assert parse_dimension(str(dim)) == dim


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(finite, finite)
def test_uniform_bounds_read_back_exactly(a: float, b: float) -> None:
    if a == b:
        return
    low, high = min(a, b), max(a, b)
    dim = parse_dimension(f"strategy__margin=uniform({low!r},{high!r})")
    assert dim.values == (low, high)
    assert parse_dimension(str(dim)) == dim


@given(finite)
def test_override_text_sets_the_value_exactly(value: float) -> None:
    dim = parse_dimension("optim__lr=uniform(0,1)")
    key, _, text = dim.override(value).partition("=")
    assert key == "optim__lr" and parse_value(text) == value


@given(
    st.lists(
        st.sampled_from(["sum", "concat", "shared", "0", "1.5", "true", "null"]), min_size=2, unique=True
    )
)
def test_choices_keep_order_and_parse_like_overrides(words: list[str]) -> None:
    dim = parse_dimension(f"strategy__head=choice({','.join(words)})")
    assert dim.values == tuple(parse_value(w) for w in words)
    for value in dim.values:  # each choice set as an override gives that very value back
        assert parse_value(dim.override(value).partition("=")[2]) == value


def test_override_values_resolve_into_the_config() -> None:
    dims = parse_space(["optim__lr=loguniform(1e-4,1e-2)", "strategy__head=choice(sum,concat)"])
    cfg = resolve({}, [dims[0].override(3.3e-4), dims[1].override("sum")])
    assert cfg["optim"]["lr"] == 3.3e-4 and cfg["strategy"]["head"] == "sum"


def test_space_refuses_repeats_reserved_keys_and_nothing() -> None:
    with pytest.raises(ConfigError, match=r"^--space optim__lr is given twice; expected each key once$"):
        parse_space(["optim__lr=uniform(0,1)", "optim__lr=loguniform(1e-4,1)"])
    with pytest.raises(
        ConfigError, match=r"^--space train__epochs cannot be searched; set it with --epochs$"
    ):
        parse_space(["train__epochs=int(1,5)"], {"train__epochs": "--epochs"})
    with pytest.raises(ConfigError, match=r"^mmbalance tune needs at least one --space; expected KEY="):
        parse_space([])


def test_suggested_values_lie_in_the_space() -> None:
    optuna = pytest.importorskip("optuna")
    dims = parse_space(
        [
            "strategy__margin=uniform(0.25,0.5)",
            "optim__lr=loguniform(1e-4,1e-2)",
            "data__batch_size=int(8,64)",
            "strategy__head=choice(sum,concat)",
        ]
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        margin, lr, batch, head = (d.suggest(trial) for d in dims)
        assert 0.25 <= margin <= 0.5 and 1e-4 <= lr <= 1e-2 and math.isfinite(lr)
        assert isinstance(batch, int) and 8 <= batch <= 64 and head in ("sum", "concat")
        assert trial.params == dict(zip([d.key for d in dims], [margin, lr, batch, head], strict=True))
        study.tell(trial, 0.0)
    assert study.trials[0].distributions["optim__lr"].log  # loguniform samples on the log scale
