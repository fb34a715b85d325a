"""Loaders and the seeded 80/20 holdout for the five logs of ``recsys-suite/``.

    python -m benchmarks.recsys_suite

checks the loaders: it prints, for seed 0, the train / test / relevant-test sizes and
the number of users evaluated, next to the README's table ("Split sizes with seed 0").

The data sit in ``<data_dir()>/recsys-suite/<folder>`` (``$DEEPFIT_DATA`` or
``../shared/data`` beside the repository; see ``benchmarks._common.data_dir``). The split
follows the README's "Protocol" exactly:

- users in the README's order per log, which is the ascending order of the ``user``
  column built here (Last.fm ``userID``, CiteULike line number, msweb case id,
  restaurant ``userID`` string, Jester matrix row);
- each user's items sorted ascending, ``perm = rng.permutation(n)`` drawn for every
  user (``n == 1`` included) from one ``np.random.default_rng(seed)``;
- ``k = (n + 4) // 5`` items held out (none when ``n == 1``): ``items[perm[:k]]``.

Jester is an R save file, read with the ``rdata`` package (``pip install rdata``), a
benchmark-only dependency.
"""

from __future__ import annotations

import csv
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import data_dir

LOGS = ("lastfm-hetrec2011", "citeulike-a", "msweb", "restaurant-consumer", "jester5k")

# README "Split sizes with seed 0": train, test, relevant test, users evaluated, users.
EXPECTED = {
    "lastfm-hetrec2011": (74_249, 18_585, 18_585, 1_884, 1_892),
    "citeulike-a": (161_764, 43_222, 43_222, 5_551, 5_551),
    "msweb": (71_030, 27_624, 27_624, 22_716, 32_711),
    "restaurant-consumer": (881, 280, 209, 116, 138),
    "jester5k": (289_020, 74_189, 19_147, 4_047, 5_000),
}

# The side-feature columns kept for the restaurant log (both tables have more).
USER_COLUMNS = [
    "latitude",
    "longitude",
    "smoker",
    "drink_level",
    "dress_preference",
    "ambience",
    "transport",
    "marital_status",
    "birth_year",
    "budget",
]
PLACE_COLUMNS = [
    "latitude",
    "longitude",
    "alcohol",
    "smoking_area",
    "dress_code",
    "accessibility",
    "price",
    "Rambience",
    "franchise",
    "area",
    "other_services",
]


@dataclass
class Split:
    """One log split by the README's protocol.

    ``train`` and ``test`` have columns ``user``, ``item`` and ``value`` (the raw play
    count or rating; NaN for the binary logs), one row per interaction. ``relevant`` is
    the part of ``test`` that counts as relevant (``user``, ``item``). ``catalogue`` is
    every item id of the main file, the candidates to rank.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    relevant: pd.DataFrame
    catalogue: pd.Index
    user_features: pd.DataFrame | None = None
    item_features: pd.DataFrame | None = None

    @property
    def users_evaluated(self) -> int:
        """Users with at least one relevant test item (the ones ranking is scored on)."""
        return int(self.relevant["user"].nunique())


def folder(name: str) -> Path:
    """``<data_dir()>/recsys-suite/<name>``; FileNotFoundError when it is absent."""
    root = data_dir()
    path = root / "recsys-suite" / name if root is not None else None
    if path is None or not path.is_dir():
        raise FileNotFoundError(
            f"recsys-suite/{name} not found: set DEEPFIT_DATA or put the data in "
            "../shared/data beside the repository"
        )
    return path


# ---- readers: each returns (interactions, user features, item features) ---------------

Read = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]


def _frame(user, item, value=None) -> pd.DataFrame:
    """Columns user, item (int64) and value (float64; NaN when the log is binary)."""
    item = np.asarray(item, dtype=np.int64)
    value = np.full(len(item), np.nan) if value is None else value
    return pd.DataFrame(
        {"user": user, "item": item, "value": np.asarray(value, dtype=float)}
    )


def _lastfm(path: Path) -> Read:
    """``user_artists.dat``: tab-separated, header, CRLF; value = play count."""
    df = pd.read_csv(path / "user_artists.dat", sep="\t")
    return _frame(df["userID"], df["artistID"], df["weight"]), None, None


def _citeulike(path: Path) -> Read:
    """``users.dat``: line k is user k, ``n item_1 … item_n`` (the first number is a count)."""
    lines = (path / "users.dat").read_text().splitlines()
    users, items = [], []
    for u, line in enumerate(lines):
        count, *ids = map(int, line.split())
        assert count == len(ids), f"users.dat line {u}: count {count} != {len(ids)}"
        users += [u] * count
        items += ids
    return _frame(users, items), None, None


def _msweb(path: Path) -> Read:
    """``anonymous-msweb.data`` (DST): ``A`` = vroot, ``C`` starts a user, ``V`` = visit.

    Item features: the vroot ``title`` and ``url`` of the ``A`` lines (all 294 vroots,
    including the 9 that nobody visited in ``.data``).
    """
    users, items, vroots = [], [], {}
    case = None
    with open(path / "anonymous-msweb.data") as f:
        for line in f:
            kind, _, rest = line.rstrip("\n").partition(",")
            if kind == "V":
                users.append(case)
                items.append(int(rest.split(",")[0]))
            elif kind == "C":
                case = int(rest.rsplit(",", 1)[1])
            elif kind == "A":
                vid, _, title, url = next(csv.reader([rest]))
                vroots[int(vid)] = (title, url)
    feats = pd.DataFrame.from_dict(vroots, orient="index", columns=["title", "url"])
    return _frame(users, items), None, feats.sort_index().rename_axis("item")


def _restaurant(path: Path) -> Read:
    """``rating_final.csv``; value = ``rating`` (0, 1, 2). ``?`` is missing."""
    df = pd.read_csv(path / "rating_final.csv")
    users = pd.read_csv(path / "userprofile.csv", na_values="?", index_col="userID")
    places = pd.read_csv(
        path / "geoplaces2.csv", na_values="?", index_col="placeID", encoding="latin-1"
    )
    return (
        _frame(df["userID"], df["placeID"], df["rating"]),
        users[USER_COLUMNS].rename_axis("user"),
        places[PLACE_COLUMNS].rename_axis("item"),
    )


def _jester(path: Path) -> Read:
    """``Jester5k.rda``: users = matrix rows 0…4999, items = columns 0…99, value = rating.

    Item features: the joke ``text``. Ratings of 0 are stored as 2.2e-308 and mapped to 0.
    """
    try:
        import rdata
    except ImportError as e:
        raise ImportError(
            "reading jester5k (an R .rda file) needs the rdata package: pip install rdata"
        ) from e
    with warnings.catch_warnings():  # "Missing constructor" for the S4 classes
        warnings.simplefilter("ignore")
        obj = rdata.conversion.convert(rdata.parser.parse_file(path / "Jester5k.rda"))
    m = obj["Jester5k"].data  # dgCMatrix slots: i, p, x, Dim, Dimnames
    x = np.asarray(m.x, dtype=float).copy()
    x[np.abs(x) < 1e-300] = 0.0
    cols = np.repeat(np.arange(m.Dim[1]), np.diff(np.asarray(m.p)))
    jokes = pd.DataFrame({"text": np.asarray(obj["JesterJokes"], dtype=str)})
    return (
        _frame(np.asarray(m.i, dtype=np.int64), cols, x),
        None,
        jokes.rename_axis("item"),
    )


_READERS = {
    "lastfm-hetrec2011": (_lastfm, None),
    "citeulike-a": (_citeulike, None),
    "msweb": (_msweb, None),
    "restaurant-consumer": (_restaurant, 1.0),  # relevant: rating >= 1
    "jester5k": (_jester, 5.0),  # relevant: rating >= 5.0
}


def holdout(df: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Boolean test mask over ``df`` (columns user, item): the README's per-user 80/20.

    Users are taken in ascending ``user`` order, items ascending per user; one
    permutation is drawn per user, ``n == 1`` included, and ``(n + 4) // 5`` items are
    held out when ``n >= 2``.
    """
    rng = np.random.default_rng(seed)
    order = np.lexsort((df["item"].to_numpy(), df["user"].to_numpy()))
    _, starts, counts = np.unique(
        df["user"].to_numpy()[order], return_index=True, return_counts=True
    )
    test = np.zeros(len(df), dtype=bool)
    for start, n in zip(starts, counts, strict=True):
        perm = rng.permutation(n)
        k = (n + 4) // 5 if n >= 2 else 0
        test[order[start + perm[:k]]] = True
    return test


def load(name: str, seed: int = 0) -> Split:
    """Read log ``name`` (one of ``LOGS``) and split it with seed ``seed``.

    ``seed`` 0 is the README's split; seeds 1, 2, … give further folds.
    """
    if name not in _READERS:
        raise ValueError(f"unknown log {name!r}; expected one of {LOGS}")
    reader, threshold = _READERS[name]
    df, user_features, item_features = reader(folder(name))
    assert not df.duplicated(["user", "item"]).any(), f"{name}: duplicate pairs"
    is_test = holdout(df, seed)
    train = df[~is_test].sort_values(["user", "item"], ignore_index=True)
    test = df[is_test].sort_values(["user", "item"], ignore_index=True)
    keep = test["value"] >= threshold if threshold is not None else slice(None)
    return Split(
        name=name,
        train=train,
        test=test,
        relevant=test.loc[keep, ["user", "item"]].reset_index(drop=True),
        catalogue=pd.Index(np.sort(df["item"].unique()), name="item"),
        user_features=user_features,
        item_features=item_features,
    )


def main() -> None:
    """Print seed-0 split sizes next to the README's table, and the load times."""
    header = (
        f"{'log':<20} {'train':>15} {'test':>15} {'relevant':>15} "
        f"{'evaluated':>15} {'users':>13} {'items':>6} {'load s':>6}  ok"
    )
    print("got / README, seed 0\n" + header)
    all_ok = True
    for name in LOGS:
        t0 = time.perf_counter()
        s = load(name)
        dt = time.perf_counter() - t0
        users = pd.concat([s.train["user"], s.test["user"]]).nunique()
        got = (len(s.train), len(s.test), len(s.relevant), s.users_evaluated, users)
        want = EXPECTED[name]
        ok = got == want
        all_ok &= ok
        cells = [f"{g:,}/{w:,}" for g, w in zip(got, want, strict=True)]
        print(
            f"{name:<20} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15} {cells[3]:>15} "
            f"{cells[4]:>13} {len(s.catalogue):>6} {dt:>6.2f}  {'yes' if ok else 'NO'}"
        )
    print("all match the README" if all_ok else "MISMATCH with the README")


if __name__ == "__main__":
    main()
