"""The built-in word tokeniser: properties over arbitrary unicode texts, known values, one-line errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbalance.errors import ConfigError
from mmbalance.text import PAD, UNK, WordTokenizer, words

SOME_WORDS = ["the", "Cat", "sat", "ÉTÉ", "naïve", "x2", "数据", "on", "a", "mat"]
SEPARATORS = [" ", ", ", "-", "_", "!\n", "  ", "'"]
sentences = st.lists(st.tuples(st.sampled_from(SOME_WORDS), st.sampled_from(SEPARATORS)), max_size=12).map(
    lambda parts: "".join(w + s for w, s in parts)
)
texts = st.lists(st.one_of(sentences, st.text(max_size=30)), max_size=8)
lengths = st.integers(1, 12)
quick = settings(deadline=None, max_examples=60)


@quick
@given(texts, lengths)
def test_fitted_texts_never_encode_to_unknown(corpus: list[str], max_length: int) -> None:
    ids, _ = WordTokenizer().fit(corpus).encode(corpus, max_length)
    assert not (ids == UNK).any()


@quick
@given(texts, texts, lengths)
def test_ids_lie_in_the_vocabulary_and_padding_only_ends(fit_on: list[str], other: list[str], n: int) -> None:
    tok = WordTokenizer().fit(fit_on)
    ids, mask = tok.encode(other, n)
    assert ids.dtype == torch.long and ids.shape == (len(other), n) and mask.dtype == torch.bool
    assert ((ids >= 0) & (ids < tok.vocab_size)).all()
    assert torch.equal(mask, ids != PAD)
    real = torch.tensor([min(len(words(t)), n) for t in other], dtype=torch.long)
    assert torch.equal(mask, torch.arange(n) < real.reshape(-1, 1))  # a prefix of real words, then padding


@quick
@given(texts, texts, lengths)
def test_state_round_trips_through_json(fit_on: list[str], other: list[str], n: int) -> None:
    tok = WordTokenizer().fit(fit_on)
    state = json.loads(json.dumps(tok.state_dict()))
    replayed = WordTokenizer.from_state(state)
    assert replayed.state_dict() == tok.state_dict() and replayed.vocab_size == tok.vocab_size
    for got, want in zip(replayed.encode(other, n), tok.encode(other, n), strict=True):
        assert torch.equal(got, want)


@quick
@given(texts, st.randoms(use_true_random=False))
def test_vocabulary_depends_on_the_counts_only(corpus: list[str], rnd: object) -> None:
    shuffled = list(corpus)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    tokens = WordTokenizer().fit(corpus).state_dict()["tokens"]
    assert WordTokenizer().fit(shuffled).state_dict()["tokens"] == tokens
    counts = Counter(w for t in corpus for w in words(t))
    assert set(tokens) == set(counts)
    assert tokens == sorted(tokens, key=lambda w: (-counts[w], w))  # by count, then code-point order


@quick
@given(texts, st.integers(1, 4), st.one_of(st.none(), st.integers(0, 6)))
def test_min_count_and_max_size_keep_the_most_frequent_words(
    corpus: list[str], min_count: int, size: int | None
) -> None:
    counts = Counter(w for t in corpus for w in words(t))
    tok = WordTokenizer().fit(corpus, min_count=min_count, max_size=size)
    want = [w for w in WordTokenizer().fit(corpus).state_dict()["tokens"] if counts[w] >= min_count][:size]
    assert tok.state_dict()["tokens"] == want and tok.vocab_size == len(want) + 2


def test_known_ids_truncation_and_unknown_words() -> None:
    tok = WordTokenizer().fit(["b a b", "c b a"], max_size=2)
    assert tok.state_dict() == {"tokens": ["b", "a"]}
    ids, mask = tok.encode(["A c B a", "", "b"], max_length=3)
    assert ids.tolist() == [[3, UNK, 2], [0, 0, 0], [2, 0, 0]]
    assert mask.sum(1).tolist() == [3, 0, 1]
    assert words("Über_naïve—数据 2x") == ["über", "naïve", "数据", "2x"]


def test_no_text_gives_an_empty_batch() -> None:
    ids, mask = WordTokenizer().fit([]).encode([], max_length=5)
    assert ids.shape == (0, 5) and mask.shape == (0, 5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: WordTokenizer().fit("one text"), "expected a sequence of texts"),
        (lambda: WordTokenizer().fit(["a", 3]), "expected every text to be a str"),
        (lambda: WordTokenizer().fit(["a"], min_count=0), "min_count=0"),
        (lambda: WordTokenizer().fit(["a"], max_size=-1), "max_size=-1"),
        (lambda: WordTokenizer().fit(["a"]).encode(["a"], max_length=0), "max_length=0"),
        (lambda: WordTokenizer().encode(["a"], max_length=3), "not fitted"),
        (lambda: WordTokenizer.from_state({"words": []}), "list of 'tokens'"),
        (lambda: WordTokenizer.from_state({"tokens": ["ok", "Not ok"]}), "'Not ok'"),
        (lambda: WordTokenizer.from_state({"tokens": ["a", "a"]}), "repeats"),
    ],
)
def test_bad_values_are_one_line_errors(call: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        call()  # type: ignore[operator]
    assert "\n" not in str(info.value)
