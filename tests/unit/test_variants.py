"""Method variants of ``compare``: the ``--methods`` parser and the run directory names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbalance.errors import ConfigError
from mmbalance.variants import Variant, check_variant, parse_variant, run_dir_name, split_top

METHODS = ["joint", "igm", "mla", "gaal", "unimodal", "ogm_ge"]
KEYS = ["sam_mode", "temperature", "ratios__image", "head_hidden", "margin", "a"]
VALUES = ["off", "0", "0.5", "1e-3", "-1", "[16, 32]", "[1,[2,3]]", "Off", "x y", "a=b", "é/\\:*?"]
options = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
variants = st.tuples(st.sampled_from(METHODS), options).map(
    lambda mo: Variant(
        mo[0] + (f"[{','.join(f'{k}={v}' for k, v in mo[1].items())}]" if mo[1] else ""),
        mo[0],
        tuple(mo[1].items()),
    )
)
quick = settings(deadline=None, max_examples=150)
COMPONENT = re.compile(r"[A-Za-z0-9_.=+-]+")


@quick
@given(st.lists(variants, max_size=6), st.sampled_from([",", ", ", " ,"]))
def test_a_methods_list_splits_only_outside_brackets_and_parses_back(vs: list[Variant], sep: str) -> None:
    labels = split_top(sep.join(v.label for v in vs))
    assert labels == [v.label for v in vs]
    assert [parse_variant(label) for label in labels] == vs


@quick
@given(variants)
def test_a_variant_becomes_its_method_then_its_options_as_strategy_overrides(v: Variant) -> None:
    assert v.overrides() == (f"strategy__name={v.method}", *(f"strategy__{k}={x}" for k, x in v.options))


@quick
@given(st.lists(variants, unique_by=lambda v: v.label, max_size=8))
def test_run_dir_names_are_safe_deterministic_and_distinct(vs: list[Variant]) -> None:
    names = [run_dir_name(v.label) for v in vs]
    assert all(COMPONENT.fullmatch(n) and n.strip(".") for n in names)
    assert names == [run_dir_name(v.label) for v in vs]
    assert len({n.lower() for n in names}) == len(names)  # distinct even where case does not count


def test_run_dir_names_known_values() -> None:
    assert run_dir_name("joint") == "joint" and run_dir_name("unimodal-image") == "unimodal-image"
    assert run_dir_name("igm[sam_mode=off]") == "igm+sam_mode=off"
    assert run_dir_name("igm[sam_mode=off,temperature=0]") == "igm+sam_mode=off+temperature=0"
    spaced = run_dir_name("igm[sam_mode=off, temperature=0]")  # another spelling: another directory
    assert spaced.startswith("igm+sam_mode=off+temperature=0+") and len(spaced.rsplit("+", 1)[1]) == 10
    assert run_dir_name("igm[sam_mode=Off]") != run_dir_name("igm[sam_mode=off]")
    assert "/" not in run_dir_name("igm[select_metric=../x]")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("igm[sam_mode=off", "'joint,igm[sam_mode=off' has an unclosed '['"),
        ("igm]", "'joint,igm]' has an unmatched ']'"),
        ("igm[]", "empty brackets"),
        ("igm[temperature]", "option 'temperature' of method 'igm[temperature]' is invalid"),
        ("igm[temperature=0,temperature=1]", "option 'temperature' is given twice"),
        ("igm[a=1]x", "expected METHOD or METHOD[KEY=VALUE,...]"),
        ("igm[a=[1]]]", "unmatched ']'"),
        ("igm[a=[1,2]", "unclosed '['"),
    ],
)
def test_bad_syntax_is_one_line_naming_the_entry(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        [parse_variant(entry) for entry in split_top(f"joint,{text}")]
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_check_variant_names_the_label_and_the_valid_options() -> None:
    check_variant(parse_variant("gaal[ratios__image=0.1,margin=0]"))  # a nested option checks its top key
    with pytest.raises(ConfigError) as info:
        check_variant(parse_variant("igm[temperatur=0]"))
    assert str(info.value).startswith("method 'igm[temperatur=0]': unknown parameter of method 'igm':")
    assert "'temperatur'; expected one of:" in str(info.value) and "temperature" in str(info.value)
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        check_variant(parse_variant("nope[x=1]"))
