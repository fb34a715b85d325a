"""Tokenizer rules on fixed sentences, character mode, detokenizing and the vocabulary."""

from __future__ import annotations

import pytest

import text.tokenizer as tokmod
from text import Tokenizer, Vocab, detokenize
from text.tokenizer import SPECIAL_TOKENS


def tok(s: str, **kw) -> list[str]:
    return Tokenizer(**kw)([s])[0]


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("I loved it.", ["xxbos", "i", "loved", "it", "."]),
        ("The Movie", ["xxbos", "xxmaj", "the", "xxmaj", "movie"]),
        ("this is GREAT", ["xxbos", "this", "is", "xxup", "great"]),
        ("wow!!!!", ["xxbos", "wow", "xxrep", "4", "!"]),
        ("sooooo", ["xxbos", "s", "xxrep", "5", "o"]),
        ("very very very good", ["xxbos", "xxwrep", "3", "very", "good"]),
        ("good.<br /><br />Bad", ["xxbos", "good", ".", "xxmaj", "bad"]),
        ("fish &amp; chips", ["xxbos", "fish", "&", "chips"]),
        ("don't", ["xxbos", "do", "n't"]),
        ("", ["xxbos"]),
        ("a/b #1", ["xxbos", "a", "/", "b", "#", "1"]),
    ],
)
def test_word_rules_on_fixed_sentences(sentence, expected):
    assert tok(sentence) == expected


def test_two_repeats_are_left_alone_and_markers_survive_spacy():
    assert tok("very very nice!!") == ["xxbos", "very", "very", "nice", "!", "!"]
    assert tok("xxbos xxunk", bos=False) == ["xxbos", "xxunk"]


def test_character_level_keeps_every_character():
    assert tok("Hi, yo!", level="char") == ["xxbos", "H", "i", ",", " ", "y", "o", "!"]
    assert tok("a<br />b", level="char", bos=False) == ["a", "\n", "b"]


def test_detokenize_undoes_the_markers():
    tokens = tok("The FILM was sooooo good!!!! Very very very good.")
    # Words are joined with spaces, so a repeat inside a word comes back split off.
    assert detokenize(tokens) == "The FILM was s ooooo good !!!! Very very very good ."
    assert detokenize(["xxbos", "a", " ", "b"], level="char") == "a b"


def test_parallel_tokenization_matches_serial(monkeypatch):
    texts = [f"Text number {i}: GREAT stuff!!!! <br />Really." for i in range(40)]
    serial = Tokenizer(n_jobs=1)(texts)
    monkeypatch.setattr(tokmod, "_PARALLEL_MIN_CHARS", 10)
    assert Tokenizer(n_jobs=2)(texts) == serial


def test_bad_level():
    with pytest.raises(ValueError, match="level"):
        Tokenizer(level="sentence")


def test_vocab_orders_specials_then_frequency_with_min_freq_and_max_vocab():
    docs = [["b", "a", "a", "c", "c", "c", "d"], ["a", "xxmaj"]]
    v = Vocab(min_freq=2).fit(docs)
    assert v.itos_ == [*SPECIAL_TOKENS, "a", "c"]
    assert v.encode(["c", "zzz", "xxpad"]).tolist() == [8, 0, 1]
    assert v.decode([7, 0]) == ["a", "xxunk"]
    small = Vocab(min_freq=1, max_vocab=len(SPECIAL_TOKENS) + 1).fit(docs)
    assert small.itos_[-1] == "a" and len(small) == len(SPECIAL_TOKENS) + 1


def test_vocab_does_not_depend_on_document_order():
    docs = [["x", "y"], ["y", "x"], ["z"]]
    assert Vocab(1).fit(docs).itos_ == Vocab(1).fit(docs[::-1]).itos_


@pytest.mark.parametrize("kw", [{"min_freq": 0}, {"max_vocab": 3}])
def test_vocab_bad_params(kw):
    with pytest.raises(ValueError):
        Vocab(**kw).fit([["a"]])
