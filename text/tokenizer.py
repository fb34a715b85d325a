"""Raw text -> tokens -> ids: spaCy's rule-based English tokenizer with fastai-style
markers, and a vocabulary.

The markers keep what lower-casing and run-length rules throw away, so the model sees
``xxmaj`` before a capitalised word, ``xxup`` before a word in capitals, ``xxrep 4 !``
for ``!!!!`` and ``xxwrep 3 very`` for ``very very very`` (Howard & Ruder 2018, "Universal
Language Model Fine-tuning for Text Classification", and fastai's ``text.core``).
"""

from __future__ import annotations

import html
import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np

from deepfit.persist import persistable

__all__ = [
    "BOS",
    "MAJ",
    "PAD",
    "REP",
    "SPECIAL_TOKENS",
    "UNK",
    "UP",
    "WREP",
    "Tokenizer",
    "Vocab",
    "detokenize",
]

UNK, PAD, BOS, MAJ, UP, REP, WREP = (
    "xxunk",
    "xxpad",
    "xxbos",
    "xxmaj",
    "xxup",
    "xxrep",
    "xxwrep",
)
SPECIAL_TOKENS = (UNK, PAD, BOS, MAJ, UP, REP, WREP)

_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{1,40}>")
_SPACES = re.compile(r"[ \t\r\f\v]{2,}")
_SPECIAL_CHARS = re.compile(r"([/#\\])")
# A character repeated at least 4 times ("!!!!", "sooooo"): fastai's replace_rep.
_REP = re.compile(r"(\S)(\1{3,})")
# A word repeated at least 3 times ("very very very"): fastai's replace_wrep.
_WREP = re.compile(r"(?:\s|^)(\w+)\s+((?:\1\s+)+)\1(\s|\W|$)")
# Tokenising in worker processes only pays for their start-up on big inputs.
_PARALLEL_MIN_CHARS = 2_000_000


def _clean(text: str) -> str:
    """HTML clean-up (``<br />`` -> newline, entities, stray tags) and spacing."""
    text = _BR.sub("\n", text)
    text = html.unescape(text).replace("\xa0", " ")
    text = _TAG.sub(" ", text)
    return _SPACES.sub(" ", text)


def _pre_rules(text: str) -> str:
    text = _SPECIAL_CHARS.sub(r" \1 ", text)

    def rep(m: re.Match) -> str:
        return f" {REP} {len(m.group(2)) + 1} {m.group(1)} "

    def wrep(m: re.Match) -> str:
        count = len(m.group(2).split()) + 2
        return f" {WREP} {count} {m.group(1)} {m.group(3)}"

    text = _REP.sub(rep, text)
    return _WREP.sub(wrep, text)


def _post_rules(tokens: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in tokens:
        if t.isspace() or not t:
            continue
        if len(t) > 1 and t.isupper() and t not in SPECIAL_TOKENS:
            out += [UP, t.lower()]
        elif len(t) > 1 and t[0].isupper() and t[1:].islower():
            out += [MAJ, t.lower()]
        else:
            out.append(t.lower())
    return out


@lru_cache(maxsize=4)
def _spacy_tokenizer(lang: str):
    import spacy

    # A blank pipeline holds only the rule-based tokenizer: nothing is downloaded.
    nlp = spacy.blank(lang)
    for special in SPECIAL_TOKENS:
        nlp.tokenizer.add_special_case(special, [{"ORTH": special}])
    return nlp.tokenizer


def _tokenize_chunk(args: tuple[list[str], str, str, bool]) -> list[list[str]]:
    texts, level, lang, bos = args
    start = [BOS] if bos else []
    if level == "char":
        return [start + list(_clean(t)) for t in texts]
    tok = _spacy_tokenizer(lang)
    cleaned = (_pre_rules(_clean(t)) for t in texts)
    return [start + _post_rules(d.text for d in doc) for doc in tok.pipe(cleaned)]


@persistable
class Tokenizer:
    """Split raw texts into tokens.

    Word level uses spaCy's rule-based tokenizer (``spacy.blank(lang)``: no model is
    downloaded) and fastai's rules: HTML clean-up, ``xxbos`` at the start of each text,
    ``xxmaj`` / ``xxup`` before capitalised / all-caps words (which are lower-cased),
    ``xxrep n c`` for a character repeated ``n >= 4`` times and ``xxwrep n w`` for a word
    repeated ``n >= 3`` times. Character level keeps every character (after the HTML
    clean-up) as it is.

    Parameters
    ----------
    level : {"word", "char"}, default="word"
    lang : str, default="en"
        spaCy language code of the blank pipeline.
    bos : bool, default=True
        Start each text with ``xxbos``.
    n_jobs : int or None, default=None
        Worker processes for large inputs (``None``: all cores, used only when the texts
        hold more than two million characters; 1: never).

    Example
    -------
    >>> Tokenizer()(["I LOVE it!!!!"])
    [['xxbos', 'i', 'xxup', 'love', 'it', 'xxrep', '4', '!']]
    """

    def __init__(
        self,
        level: str = "word",
        lang: str = "en",
        bos: bool = True,
        n_jobs: int | None = None,
    ) -> None:
        if level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char', got {level!r}")
        self.level, self.lang, self.bos, self.n_jobs = level, lang, bos, n_jobs

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokens of each text, in order."""
        texts = list(texts)
        workers = self.n_jobs if self.n_jobs is not None else (os.cpu_count() or 1)
        total = sum(len(t) for t in texts)
        if workers <= 1 or len(texts) < 2 * workers or total < _PARALLEL_MIN_CHARS:
            return _tokenize_chunk((texts, self.level, self.lang, self.bos))
        # Contiguous chunks, several per worker so an uneven chunk does not stall one.
        n_chunks = min(len(texts), workers * 4)
        bounds = np.linspace(0, len(texts), n_chunks + 1).astype(int)
        jobs = [
            (texts[a:b], self.level, self.lang, self.bos)
            for a, b in itertools.pairwise(bounds)
        ]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_tokenize_chunk, jobs))
        return [tokens for part in parts for tokens in part]

    def __repr__(self) -> str:
        return f"Tokenizer(level={self.level!r}, lang={self.lang!r}, bos={self.bos})"


def detokenize(tokens: Sequence[str], level: str = "word") -> str:
    """Readable text from tokens: markers undone (``xxmaj w`` -> ``W``, ``xxup w`` ->
    ``W`` in capitals, ``xxrep n c`` -> ``c`` n times), ``xxbos``/``xxpad`` dropped, words
    joined with spaces (character level: joined as they are)."""
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t in (BOS, PAD):
            i += 1
        elif t in (MAJ, UP) and i + 1 < n:
            nxt = tokens[i + 1]
            out.append(nxt.capitalize() if t == MAJ else nxt.upper())
            i += 2
        elif t in (REP, WREP) and i + 2 < n and tokens[i + 1].isdigit():
            count, what = int(tokens[i + 1]), tokens[i + 2]
            sep = "" if t == REP else " "
            out.append(sep.join([what] * min(count, 50)))
            i += 3
        else:
            out.append(t)
            i += 1
    return "".join(out) if level == "char" else " ".join(out)


@persistable
class Vocab:
    """Token <-> id mapping learned from token lists.

    The special tokens come first (``xxunk`` = 0, ``xxpad`` = 1, ``xxbos`` = 2, ...), then
    the tokens seen at least ``min_freq`` times, most frequent first, up to ``max_vocab``
    in all. Unknown tokens map to ``xxunk``.

    Parameters
    ----------
    min_freq : int, default=2
    max_vocab : int, default=60000

    Attributes
    ----------
    itos_ : list of str
        Token of each id.
    stoi_ : dict of str to int

    Example
    -------
    >>> v = Vocab(min_freq=1).fit([["a", "b", "a"]])
    >>> v.encode(["a", "c"]).tolist()
    [7, 0]
    """

    def __init__(self, min_freq: int = 2, max_vocab: int = 60000) -> None:
        self.min_freq, self.max_vocab = min_freq, max_vocab

    def fit(self, token_lists: Iterable[Sequence[str]]) -> Vocab:
        if not (isinstance(self.min_freq, int) and self.min_freq >= 1):
            raise ValueError(f"min_freq must be an int >= 1, got {self.min_freq!r}")
        if not (
            isinstance(self.max_vocab, int) and self.max_vocab > len(SPECIAL_TOKENS)
        ):
            raise ValueError(
                f"max_vocab must be an int > {len(SPECIAL_TOKENS)}, got "
                f"{self.max_vocab!r}"
            )
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        room = self.max_vocab - len(SPECIAL_TOKENS)
        # Ties broken by the token so the vocabulary does not depend on input order.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [
            w for w, c in ranked if c >= self.min_freq and w not in SPECIAL_TOKENS
        ][:room]
        return self.set_itos([*SPECIAL_TOKENS, *words])

    def set_itos(self, itos: Sequence[str]) -> Vocab:
        """Use ``itos`` (which must start with the special tokens) as the vocabulary."""
        itos = list(itos)
        if tuple(itos[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(
                f"a vocabulary must start with the special tokens {SPECIAL_TOKENS}"
            )
        self.itos_ = itos
        self.stoi_ = {s: i for i, s in enumerate(itos)}
        return self

    def __len__(self) -> int:
        return len(self.itos_)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Ids of ``tokens`` (``xxunk``'s id for unknown ones) as an int64 array."""
        get = self.stoi_.get
        return np.fromiter(
            (get(t, 0) for t in tokens), dtype=np.int64, count=len(tokens)
        )

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos_[int(i)] for i in ids]

    def __repr__(self) -> str:
        size = len(self.itos_) if hasattr(self, "itos_") else "unfitted"
        return f"Vocab({size})"
