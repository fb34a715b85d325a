"""The estimator contract, once for every estimator deepfit ships (STYLE.md, Tests).

Each case builds a tiny estimator and tiny generated data with a known answer, and says how
its inputs can be reordered, how an unseen category looks, and what bad input looks like.
The domain test folders go deeper; this file makes sure no estimator misses the basics:
``clone``/``get_params`` round trip, ``fit`` returns ``self``, ``NotFittedError`` before
fit, a pickle round trip predicts the same, the same ``random_state`` gives the same
predictions, column order does not matter, unseen categories are handled, and bad input
raises a clear error before any training starts.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import deepfit.learner


@dataclass
class Case:
    name: str
    make: Callable[..., Any]  # random_state -> unfitted estimator
    data: Callable[[], tuple[Any, Any]]  # -> (X, y); y is None for unsupervised
    output: Callable[[Any, Any], np.ndarray]  # (estimator, X) -> what it predicts
    reorder: Callable[[Any], Any] | None = None  # X with its columns in another order
    unseen: Callable[[Any], Any] | None = None  # X holding values never seen in fit
    bad: list[tuple[Callable[[Any, Any], tuple[Any, Any]], str]] = field(
        default_factory=list
    )  # (X, y) -> bad (X, y), and a regex the error message must match
    extra: str | None = None  # the optional dependency it needs (skipped without it)


# ---- tabular -------------------------------------------------------------------------


def _tabular_data(kind: str) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 300
    shop = rng.choice(["north", "south", "east", "west"], size=n)
    x = rng.normal(size=n)
    effect = pd.Series(shop).map(
        {"north": 1.5, "south": -1.5, "east": 0.5, "west": -0.5}
    )
    score = effect.to_numpy() + x
    X = pd.DataFrame({"shop": shop, "x": x, "n": rng.integers(0, 3, size=n)})
    y = (score > 0).astype(int) if kind == "clf" else score
    return X, pd.Series(y, name="target")


def _tabular(cls_name: str) -> Callable[..., Any]:
    def make(random_state: int = 0) -> Any:
        import tabular

        cls = getattr(tabular, cls_name)
        return cls(
            layers=(16,),
            epochs=3,
            lr=1e-2,
            batch_size=64,
            verbose=0,
            random_state=random_state,
        )

    return make


def _tabular_unseen(X: pd.DataFrame) -> pd.DataFrame:
    X = X.head(5).copy()
    X["shop"] = ["atlantis", None, "north", "mars", "south"]
    return X


_TABULAR_BAD = [
    (lambda X, y: (X, y[:-1]), r"length|rows|samples"),
    (lambda X, y: (X.drop(columns="x").iloc[:0], y.iloc[:0]), r"empty|0 rows|no rows"),
]


def _proba(est: Any, X: Any) -> np.ndarray:
    return np.asarray(est.predict_proba(X))


def _predict(est: Any, X: Any) -> np.ndarray:
    return np.asarray(est.predict(X), dtype=float)


# ---- collab --------------------------------------------------------------------------


def _ratings() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    pairs = [(u, i) for u in range(40) for i in range(30) if rng.random() < 0.4]
    u, i = np.array(pairs).T
    r = np.clip(3 + (users[u] * items[i]).sum(1) + rng.normal(0, 0.1, len(u)), 1, 5)
    X = pd.DataFrame({"user": [f"u{k}" for k in u], "item": i})
    return X, pd.Series(r, name="rating")


def _collab(random_state: int = 0) -> Any:
    from collab import CollabRegressor

    return CollabRegressor(
        n_factors=4, epochs=3, batch_size=128, verbose=0, random_state=random_state
    )


def _collab_unseen(X: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"user": ["u1", "nobody", "nobody"], "item": [999, 0, 999]})


def _recommender(random_state: int = 0) -> Any:
    from collab import CollabRecommender

    # mix > 0: the closed-form map and the trained network both (the default, the
    # closed form alone, trains nothing and is tested in tests/collab/).
    return CollabRecommender(
        hidden=(16, 4),
        epochs=3,
        batch_size=16,
        mix=0.5,
        verbose=0,
        random_state=random_state,
    )


def _recommendations(est: Any, X: Any) -> np.ndarray:
    """The scores of the top-5 lists of the users in X (and of a user with a history
    given at predict time), in a fixed order."""
    users = sorted(pd.unique(X["user"]))[:10]
    recs = est.recommend(users, k=5)
    folded = est.recommend_history(X[X["user"] == users[0]], k=5)
    return np.concatenate([recs["score"].to_numpy(), folded["score"].to_numpy()])


def _recommender_unseen(X: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"user": ["nobody", "u1"], "item": [0, 999]})


# ---- text ----------------------------------------------------------------------------

_TINY_TEXT = {"emb_size": 16, "hidden_size": 24, "n_layers": 1, "verbose": 0}


def _reviews() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    good, bad = ["great", "superb", "lovely"], ["awful", "boring", "poor"]
    filler = ["the", "film", "plot", "was", "a", "story"]
    texts, labels = [], []
    for k in range(48):
        words = list(rng.choice(filler, size=5))
        words.insert(int(rng.integers(6)), str(rng.choice(good if k % 2 else bad)))
        texts.append(" ".join(words).capitalize() + ".")
        labels.append("pos" if k % 2 else "neg")
    frame = pd.DataFrame({"stars": rng.integers(1, 6, size=48), "review": texts})
    return frame, np.array(labels)


def _lm(random_state: int = 0) -> Any:
    from text import LanguageModel

    return LanguageModel(
        epochs=1,
        batch_size=4,
        bptt=8,
        min_freq=1,
        text_col="review",
        random_state=random_state,
        **_TINY_TEXT,
    )


def _text_clf(random_state: int = 0) -> Any:
    from text import TextClassifier

    return TextClassifier(
        lm_epochs=0,
        freeze_epochs=0,
        epochs=1,
        lr=1e-2,
        batch_size=16,
        text_col="review",
        random_state=random_state,
        **_TINY_TEXT,
    )


def _generative_clf(random_state: int = 0) -> Any:
    from text import GenerativeTextClassifier

    return GenerativeTextClassifier(
        epochs=1,
        lr=1e-2,
        batch_size=4,
        bptt=8,
        min_freq=1,
        text_col="review",
        random_state=random_state,
        **_TINY_TEXT,
    )


def _lm_output(est: Any, X: Any) -> np.ndarray:
    return np.array([est.score_tokens(X)])


def _text_unseen(X: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"stars": [1, 2], "review": ["Zyzzyva quokka!", ""]})


_TEXT_BAD = [
    (lambda X, y: (X.drop(columns="review"), y), r"review"),
]


# ---- vision --------------------------------------------------------------------------


def _images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 60, size=(48, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=48)
    X[y == 1, 4:12, 4:12, 0] = 230
    return X, np.array(["plain", "red"])[y]


def _vision(random_state: int = 0) -> Any:
    from vision import ImageClassifier

    return ImageClassifier(
        "small_resnet",
        arch_kwargs={"width": 8},
        sizes=16,
        augment=None,
        batch_size=16,
        epochs=1,
        lr=3e-3,
        verbose=0,
        random_state=random_state,
    )


CASES = [
    Case(
        "TabularClassifier",
        _tabular("TabularClassifier"),
        lambda: _tabular_data("clf"),
        _proba,
        reorder=lambda X: X[X.columns[::-1]],
        unseen=_tabular_unseen,
        bad=_TABULAR_BAD,
    ),
    Case(
        "TabularRegressor",
        _tabular("TabularRegressor"),
        lambda: _tabular_data("reg"),
        _predict,
        reorder=lambda X: X[X.columns[::-1]],
        unseen=_tabular_unseen,
        bad=_TABULAR_BAD,
    ),
    Case(
        "CollabRegressor",
        _collab,
        _ratings,
        _predict,
        reorder=lambda X: X[["item", "user"]],
        unseen=_collab_unseen,
        bad=[
            (lambda X, y: (X.drop(columns="item"), y), r"item"),
            (lambda X, y: (X, y.where(y.index != 3, np.nan)), r"NaN|finite"),
            (lambda X, y: (X, y[:-1]), r"length|rows"),
        ],
    ),
    Case(
        "CollabRecommender",
        _recommender,
        lambda: (_ratings()[0], None),
        _recommendations,
        reorder=lambda X: X[["item", "user"]],
        unseen=_recommender_unseen,
        bad=[
            (lambda X, y: (X.drop(columns="item"), y), r"item"),
            (lambda X, y: (X.assign(user=np.nan), y), r"missing"),
            (lambda X, y: (X.iloc[:0], y), r"empty"),
        ],
    ),
    Case(
        "LanguageModel",
        _lm,
        lambda: (_reviews()[0], None),
        _lm_output,
        reorder=lambda X: X[X.columns[::-1]],
        unseen=_text_unseen,
        bad=_TEXT_BAD,
        extra="spacy",
    ),
    Case(
        "TextClassifier",
        _text_clf,
        _reviews,
        _proba,
        reorder=lambda X: X[X.columns[::-1]],
        unseen=_text_unseen,
        bad=[*_TEXT_BAD, (lambda X, y: (X, y[:-1]), r"length|rows|labels")],
        extra="spacy",
    ),
    Case(
        "GenerativeTextClassifier",
        _generative_clf,
        _reviews,
        _proba,
        reorder=lambda X: X[X.columns[::-1]],
        unseen=_text_unseen,
        bad=[*_TEXT_BAD, (lambda X, y: (X, y[:-1]), r"length|rows|labels")],
        extra="spacy",
    ),
    Case(
        "ImageClassifier",
        _vision,
        _images,
        _proba,
        bad=[
            (lambda X, y: (X, y[:-1]), r"length|images|labels"),
            (lambda X, y: (X[:, :, :, :, None], y), r"shape|dimension|ndim"),
        ],
        extra="torchvision",
    ),
]


def _needs(case: Case) -> None:
    if case.extra:
        pytest.importorskip(
            case.extra, reason=f"{case.name} needs the optional {case.extra}"
        )


def _fit(case: Case, random_state: int = 0) -> tuple[Any, Any, Any]:
    _needs(case)
    X, y = case.data()
    est = case.make(random_state)
    out = est.fit(X) if y is None else est.fit(X, y)
    assert out is est, "fit must return self"
    return est, X, y


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.name)
def fitted(request) -> tuple[Case, Any, Any, Any]:
    torch.manual_seed(0)
    return (request.param, *_fit(request.param))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_clone_and_get_params_round_trip(case: Case) -> None:
    _needs(case)
    est = case.make(0)
    twin = clone(est)
    assert twin is not est
    assert twin.get_params() == est.get_params()
    assert type(twin)(**est.get_params()).get_params() == est.get_params()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_one_fit_signature_and_every_parameter_declared(case: Case) -> None:
    """fit(X, y, *, sample_weight, eval_set, ...): what follows X and y is keyword-only
    everywhere (the order differed between domains); and every parameter of
    __init__ has a declared constraint, checked at the top of fit."""
    import inspect

    _needs(case)
    cls = type(case.make(0))
    params = list(inspect.signature(cls.fit).parameters.values())[1:]
    assert [p.name for p in params[:2]] == ["X", "y"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params[2:]), params
    undeclared = set(cls._get_param_names()) - set(cls._parameter_constraints)
    assert not undeclared, f"{cls.__name__}: no constraint for {sorted(undeclared)}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_not_fitted_error_before_fit(case: Case) -> None:
    _needs(case)
    X, _ = case.data()
    with pytest.raises(NotFittedError):
        case.output(case.make(0), X)


def test_fit_returns_self_and_predicts_finite(fitted) -> None:
    case, est, X, _ = fitted
    out = case.output(est, X)
    assert np.isfinite(out).all()
    assert hasattr(est, "module_") and not hasattr(clone(est), "module_")


def test_class_probabilities_are_float64_rows_summing_to_one(fitted) -> None:
    """What scikit-learn's log_loss checks (it warns at 1.5e-8 off one)."""
    _, est, X, _ = fitted
    if not hasattr(est, "predict_proba") or getattr(est, "multilabel_", False):
        pytest.skip("no single-label class probabilities")
    proba = est.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=0, atol=1e-12)


def test_pickle_round_trip_predicts_the_same(fitted) -> None:
    case, est, X, _ = fitted
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(case.output(loaded, X), case.output(est, X), rtol=1e-6)


def test_same_random_state_same_predictions(fitted) -> None:
    case, est, X, _ = fitted
    again, _, _ = _fit(case, random_state=0)
    np.testing.assert_allclose(case.output(again, X), case.output(est, X), rtol=1e-6)


def test_column_order_does_not_matter(fitted) -> None:
    case, est, X, _ = fitted
    if case.reorder is None:
        pytest.skip(f"{case.name} takes arrays, not named columns")
    np.testing.assert_allclose(
        case.output(est, case.reorder(X)), case.output(est, X), rtol=1e-6
    )


def test_unseen_categories_are_handled(fitted) -> None:
    case, est, X, _ = fitted
    if case.unseen is None:
        pytest.skip(f"{case.name} has no categories: its inputs are pixels")
    out = case.output(est, case.unseen(X))
    assert np.isfinite(out).all()


@pytest.mark.parametrize(
    ("case", "k"),
    [(c, k) for c in CASES for k in range(len(c.bad))],
    ids=lambda v: v.name if isinstance(v, Case) else str(v),
)
def test_bad_input_raises_before_training(case: Case, k: int, monkeypatch) -> None:
    _needs(case)

    def no_training(*args, **kw):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(deepfit.learner.Learner, "fit", no_training)
    monkeypatch.setattr(deepfit.learner.Learner, "lr_find", no_training)
    X, y = case.data()
    X_before = X.copy()
    make_bad, match = case.bad[k]
    bad_X, bad_y = make_bad(X, y)
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        est = case.make(0)
        est.fit(bad_X) if bad_y is None else est.fit(bad_X, bad_y)
    if isinstance(X, pd.DataFrame):
        pd.testing.assert_frame_equal(X, X_before)
    else:
        np.testing.assert_array_equal(X, X_before)


def _fitted_state(est: Any) -> dict[str, Any]:
    """The fitted attributes' identities and the weights' values."""
    ids = {k: id(v) for k, v in vars(est).items() if k.endswith("_")}
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    return {"ids": ids, "weights": weights}


def _assert_same_state(est: Any, before: dict[str, Any]) -> None:
    after = _fitted_state(est)
    assert after["ids"] == before["ids"]
    assert after["weights"].keys() == before["weights"].keys()
    for k, v in before["weights"].items():
        torch.testing.assert_close(after["weights"][k], v, rtol=0, atol=0)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm_start"])
def test_failed_refit_leaves_the_model_as_it_was(fitted, warm, monkeypatch) -> None:
    case, fitted_est, X, y = fitted
    est = copy.deepcopy(fitted_est)
    if warm:
        est.set_params(warm_start=True)
    expected = case.output(est, X)
    before = _fitted_state(est)
    for make_bad, match in case.bad:  # refused before training
        bad_X, bad_y = make_bad(X, y)
        with pytest.raises((ValueError, TypeError, KeyError), match=match):
            est.fit(bad_X) if bad_y is None else est.fit(bad_X, bad_y)
        _assert_same_state(est, before)
    train_epoch = deepfit.learner.Learner._train_epoch

    def fault(self, *args, **kwargs):  # an error in the middle of training
        train_epoch(self, *args, **kwargs)
        raise RuntimeError("fault injected after an epoch")

    monkeypatch.setattr(deepfit.learner.Learner, "_train_epoch", fault)
    with pytest.raises(RuntimeError, match="fault injected"):
        est.fit(X) if y is None else est.fit(X, y)
    _assert_same_state(est, before)
    np.testing.assert_array_equal(case.output(est, X), expected)


def test_tags_say_what_each_estimator_takes():
    from collab import CollabRegressor
    from tabular import TabularClassifier
    from text import GenerativeTextClassifier, LanguageModel, TextClassifier
    from vision import ImageClassifier

    lm = LanguageModel().__sklearn_tags__()
    assert lm.input_tags.string and not lm.input_tags.two_d_array
    assert not lm.target_tags.required  # texts alone
    for est in (TextClassifier(), ImageClassifier()):
        tags = est.__sklearn_tags__()
        assert tags.classifier_tags.multi_label and tags.target_tags.multi_output
    image = ImageClassifier().__sklearn_tags__().input_tags
    assert image.three_d_array and image.string and not image.two_d_array
    generative = GenerativeTextClassifier().__sklearn_tags__()
    assert not generative.classifier_tags.multi_label  # one class per text
    tab = TabularClassifier().__sklearn_tags__()
    assert tab.input_tags.categorical and tab.input_tags.string
    assert CollabRegressor().__sklearn_tags__().input_tags.categorical  # ids


@pytest.mark.parametrize(
    "name", ["TabularClassifier", "TextClassifier", "ImageClassifier"]
)
def test_every_classifier_takes_the_same_target_forms(name: str) -> None:
    """Labels one per row, label lists, or an indicator matrix: each classifier learns
    its classes from each form and predicts in the form it was given (issue 42)."""
    case = next(c for c in CASES if c.name == name)
    _needs(case)
    X, _ = case.data()
    n = len(X)
    lists = [[["a"], ["b"], ["a", "b"], []][i % 4] for i in range(n)]
    indicator = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * n)[:n]
    listed = case.make(0).fit(X, lists)
    assert list(listed.classes_) == ["a", "b"] and listed.multilabel_
    out = listed.predict(X)
    assert out.dtype == object and all(isinstance(v, list) for v in out)
    assert set().union(*map(set, out)) <= {"a", "b"}
    assert case.make(0).fit(X, indicator).predict(X).shape == (n, 2)
    single = case.make(0).fit(X, np.array(["a", "b"] * n)[:n])
    assert list(single.classes_) == ["a", "b"] and not single.multilabel_
