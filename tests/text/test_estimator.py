"""LanguageModel and TextClassifier: the sklearn contract, the ULMFiT recipe, the encoder
file, generation, perplexity and bad input.

``sklearn.utils.estimator_checks.parametrize_with_checks`` does not apply: its checks feed
numeric 2-D arrays, and these estimators take a list or column of raw texts.
"""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from deepfit import Callback
from text import LanguageModel, TextClassifier
from text.data import text_windows
from text.encoder import match_embeddings as _match_embeddings

TINY = {"emb_size": 24, "hidden_size": 32, "n_layers": 2, "verbose": 0}
GOOD = ["great", "wonderful", "superb", "brilliant", "lovely"]
BAD = ["awful", "terrible", "boring", "dreadful", "poor"]
FILLER = ["the", "film", "plot", "was", "really", "a", "cast", "and", "story", "it"]


def reviews(n: int = 120, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Generated reviews whose label is the kind of adjective they contain."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, size=rng.integers(4, 12)))
        pos = int(rng.integers(0, len(words) + 1))
        words.insert(pos, str(rng.choice(GOOD if label else BAD)))
        texts.append(" ".join(words).capitalize() + ".")
        labels.append("pos" if label else "neg")
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return reviews(200, seed=1)[0]


@pytest.fixture(scope="module")
def lm(corpus) -> LanguageModel:
    return LanguageModel(
        epochs=2, batch_size=8, bptt=16, min_freq=1, random_state=0, **TINY
    ).fit(corpus)


def clf(**kw) -> TextClassifier:
    params = {
        **TINY,
        "lm_epochs": 0,
        "epochs": 6,
        "lr": 3e-2,
        "batch_size": 16,
        "random_state": 0,
    }
    return TextClassifier(**{**params, **kw})


# ---- language model ----------------------------------------------------------------


def test_tiny_language_model_overfits_a_small_real_text(data_dir):
    text = (data_dir / "tiny-shakespeare" / "input.txt").read_text()[:1000]
    lm = LanguageModel(
        level="char",
        min_freq=1,
        emb_size=96,
        hidden_size=128,
        drop_mult=0,
        alpha=0,
        beta=0,
        bptt=25,
        batch_size=8,
        epochs=80,
        lr=3e-2,
        schedule="constant",
        clip=1.0,
        random_state=0,
        verbose=0,
    ).fit([text])
    losses = lm.history_["train_loss"].to_numpy()
    assert losses[0] > 3.0 and losses[-1] < 0.3
    assert lm.score_tokens([text]) < 0.3
    # The memorised text continues as it was written.
    assert lm.generate(text[:40], n_words=20, temperature=0).startswith(text[:55])


def test_history_perplexity_and_validation(corpus):
    lm = LanguageModel(
        epochs=2, batch_size=8, bptt=16, min_freq=1, random_state=0, **TINY
    )
    lm.fit(corpus[:150], eval_set=corpus[150:])
    assert list(lm.history_.columns[:3]) == ["epoch", "train_loss", "valid_loss"]
    ppl = lm.perplexity(corpus[150:])
    assert 1 < ppl < len(lm.vocab_)
    # The validation loss of the last epoch is the cross-entropy of the same stream.
    assert np.log(ppl) == pytest.approx(lm.history_["valid_loss"].iloc[-1], rel=1e-4)
    assert lm.score(corpus[150:]) == pytest.approx(-np.log(ppl))


def test_validation_fraction_of_a_single_document_holds_out_its_end():
    text = " ".join(FILLER * 30)
    lm = LanguageModel(
        validation_fraction=0.2, epochs=1, batch_size=4, bptt=8, min_freq=1, **TINY
    )
    lm.fit([text])
    assert "valid_loss" in lm.history_ and lm.n_train_tokens_ == pytest.approx(
        241, abs=2
    )


def test_generate(lm):
    a = lm.generate("The film", n_words=12, temperature=0.8, random_state=3)
    b = lm.generate("The film", n_words=12, temperature=0.8, random_state=3)
    assert a == b and a.startswith("The film")
    assert len(a.split()) >= 12
    greedy = {
        lm.generate("the", n_words=5, temperature=0, random_state=s) for s in range(3)
    }
    assert len(greedy) == 1
    assert "xxunk" not in lm.generate("", n_words=30, random_state=0)
    with pytest.raises(ValueError, match="n_words"):
        lm.generate("a", n_words=-1)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate("a", temperature=-1)
    with pytest.raises(TypeError, match="prompt"):
        lm.generate(None)


def test_language_model_reproducible_and_pickles(corpus, lm, tmp_path):
    again = LanguageModel(
        epochs=2, batch_size=8, bptt=16, min_freq=1, random_state=0, **TINY
    )
    again.fit(corpus)
    assert again.perplexity(corpus[:20]) == lm.perplexity(corpus[:20])
    loaded = pickle.loads(pickle.dumps(lm))
    assert loaded.perplexity(corpus[:20]) == lm.perplexity(corpus[:20])
    dec = loaded.module_.decoder.decoder
    assert dec.weight is loaded.module_.encoder.encoder.weight
    joblib.dump(lm, tmp_path / "lm.joblib")
    assert joblib.load(tmp_path / "lm.joblib").generate(
        "a", 5, random_state=0
    ) == lm.generate("a", 5, random_state=0)


def test_encoder_save_load_and_vocabulary_mismatch(corpus, lm, tmp_path):
    path = tmp_path / "enc.pt"
    lm.save_encoder(path)
    other = LanguageModel(
        epochs=1, batch_size=8, bptt=16, min_freq=1, random_state=1, **TINY
    )
    other.fit(corpus)
    before = other.perplexity(corpus[:20])
    other.load_encoder(path)  # same texts, same vocabulary
    assert other.perplexity(corpus[:20]) != before
    different = LanguageModel(epochs=1, batch_size=4, bptt=8, min_freq=1, **TINY)
    different.fit(["completely other words here"] * 20)
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        different.load_encoder(path)
    fitted = clf().fit(*reviews(40))
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        fitted.load_encoder(path)
    with pytest.raises(IsADirectoryError, match=f"encoder to '{tmp_path}'"):
        lm.save_encoder(tmp_path)
    payload = torch.load(path, weights_only=True)
    del payload["state"]["encoder_dp.emb.weight"]
    torch.save(payload, tmp_path / "cut.pt")
    with pytest.raises(ValueError, match=r"cut\.pt is tagged .* no state.*weights"):
        lm.load_encoder(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(Exception, match="junk"):
        TextClassifier(language_model=tmp_path / "junk.pt", **TINY).fit(*reviews(20))


# ---- classifier --------------------------------------------------------------------


def test_classifier_from_scratch_learns_generated_reviews():
    X, y = reviews(200)
    Xt, yt = reviews(100, seed=5)
    model = clf(epochs=8).fit(X, y, eval_set=(Xt, yt))
    assert model.score(Xt, yt) > 0.9
    assert "accuracy" in model.history_
    proba = model.predict_proba(Xt)
    assert proba.shape == (100, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert list(model.classes_) == ["neg", "pos"]


class StageRecorder(Callback):
    def __init__(self) -> None:
        self.stages: list[tuple[list[bool], list[float]]] = []

    def before_fit(self, learn) -> None:
        trainable = [all(p.requires_grad for p in g) for g in learn.layer_groups]
        self.stages.append((trainable, list(learn.base_lrs)))


def test_ulmfit_gradual_unfreezing_schedule(lm):
    rec = StageRecorder()
    X, y = reviews(60)
    model = TextClassifier(
        language_model=lm,
        lm_epochs=1,
        epochs=1,
        lr=1e-2,
        lr_ratio=2.6,  # ULMFiT's discriminative rates (the default is 1)
        batch_size=16,
        random_state=0,
        callbacks=[rec],
        **TINY,
    ).fit(X, y)
    assert model.lm_history_ is not None and len(model.lm_history_) == 1
    # Groups: embedding, LSTM 1, LSTM 2, head. Stage 1 trains the head alone, then one
    # more group per stage, last groups first, then everything.
    trainable = [t for t, _ in rec.stages[1:]]  # stage 0 is the LM fine-tuning
    assert trainable == [
        [False, False, False, True],
        [False, False, True, True],
        [False, True, True, True],
        [True, True, True, True],
    ]
    for k, (_, lrs) in enumerate(rec.stages[1:4]):
        assert lrs[-1] == pytest.approx(1e-2 / 2**k)
        assert lrs[-2] == pytest.approx(lrs[-1] / 2.6)  # discriminative rates
    assert rec.stages[-1][1][-1] == pytest.approx(1e-3)
    assert rec.stages[-1][1][0] == pytest.approx(1e-3 / 2.6**3)
    assert list(model.history_["model"]) == ["language model"] + ["classifier"] * 4


def test_history_holds_the_language_model_stage_and_epoch_lines_name_it(lm, caplog):
    X, y = reviews(40)
    with caplog.at_level("INFO", logger="deepfit"):
        model = clf(
            language_model=lm, lm_epochs=2, epochs=1, freeze_epochs=1, verbose=1
        ).fit(X, y)
    h = model.history_
    assert list(h["model"]) == ["language model"] * 2 + ["classifier"] * 4
    assert list(h["stage"]) == ["frozen", "unfrozen"] + ["frozen"] * 3 + ["unfrozen"]
    assert list(h["epoch"]) == list(range(6))
    # lm_history_ stays what it was: the language model's rows alone.
    lm_rows = h.iloc[:2][list(model.lm_history_.columns)]
    pd.testing.assert_frame_equal(lm_rows, model.lm_history_)
    assert model.n_epochs_ == 4  # the classifier's
    lines = [r.getMessage() for r in caplog.records if "epoch " in r.getMessage()]
    assert len(lines) == 6
    assert lines[0].startswith("language model, frozen: epoch 1/1")
    assert lines[1].startswith("language model, unfrozen: epoch 1/1")
    assert lines[2].startswith("classifier, frozen: epoch 1/1")
    assert lines[-1].startswith("classifier, unfrozen: epoch 1/1")
    # A warm start adds the classifier's epochs after them.
    model.set_params(warm_start=True, verbose=0).fit(X, y)
    assert list(model.history_["model"])[6:] == ["classifier"]
    assert list(model.history_["epoch"]) == list(range(7))


def test_pretrained_vectors_carry_over_and_new_words_start_at_the_mean(lm, tmp_path):
    path = tmp_path / "enc.pt"
    lm.save_encoder(path)
    X = ["the film was great", "zebra quagga film"] * 10
    model = TextClassifier(
        language_model=path, lm_epochs=0, freeze_epochs=0, epochs=1, **TINY
    )
    model.fit(X, [1, 0] * 10)
    # The classifier's vocabulary comes from its own texts; the encoder file's vectors
    # are re-indexed onto it.
    state = torch.load(path, weights_only=True)
    old = state["state"]["encoder_dp.emb.weight"]
    stoi = {s: i for i, s in enumerate(state["itos"])}
    new = _match_embeddings(state["state"], state["itos"], model.vocab_.itos_)
    w = new["encoder_dp.emb.weight"]
    film = model.vocab_.stoi_["film"]
    assert torch.equal(w[film], old[stoi["film"]])
    assert torch.allclose(w[model.vocab_.stoi_["zebra"]], old.mean(0))


def test_multiclass_and_multilabel():
    X, y = reviews(90)
    y3 = np.where(np.arange(90) % 3 == 0, "meh", y)
    model = clf(epochs=2).fit(X, y3)
    assert set(model.predict(X)) <= {"meh", "neg", "pos"}
    Y = pd.DataFrame(
        {"pos": (y == "pos").astype(int), "long": [int(len(t) > 40) for t in X]}
    )
    ml = clf(epochs=2).fit(X, Y)
    assert list(ml.classes_) == ["pos", "long"]
    pred = ml.predict(X)
    assert pred.shape == (90, 2) and set(np.unique(pred)) <= {0, 1}
    assert ml.predict_proba(X).shape == (90, 2)


def test_label_lists_are_multilabel_like_the_image_classifier():
    X, y = reviews(90)
    lists = [
        [lab] + (["long"] if len(t) > 40 else []) for t, lab in zip(X, y, strict=True)
    ]
    ml = clf(epochs=2).fit(X, lists)
    assert ml.multilabel_ and ml.label_format_ == "lists"
    assert list(ml.classes_) == ["long", "neg", "pos"]
    pred = ml.predict(X)
    assert pred.shape == (90,) and all(set(p) <= {"long", "neg", "pos"} for p in pred)
    assert 0 <= ml.score(X, lists) <= 1
    with pytest.raises(ValueError, match="not seen in fit"):
        ml.fit(X[:80], lists[:80], eval_set=(X[80:], [["other"]] * 10))
    # Labels of two types (1 beside "1") are refused before training.
    with pytest.raises(ValueError, match="mixes label types"):
        clf(epochs=1).fit(X, [[1, "1"], *lists[1:]])


def test_reproducible_pickle_and_clone():
    X, y = reviews(60)
    a = clf(epochs=2).fit(X, y)
    b = clf(epochs=2).fit(X, y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    c = clf(epochs=2, random_state=1).fit(X, y)
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))
    loaded = pickle.loads(pickle.dumps(a))
    assert np.array_equal(loaded.predict_proba(X), a.predict_proba(X))
    assert clone(a).get_params() == a.get_params()
    assert not hasattr(clone(a), "module_")


def test_series_dataframe_and_empty_texts_are_handled():
    X, y = reviews(40)
    df = pd.DataFrame({"review": [*X, ""], "stars": range(41)})
    model = clf(epochs=1, text_col="review").fit(df, [*y, "pos"])
    assert model.predict(df).shape == (41,)
    assert model.predict(pd.Series(["", "great"])).shape == (2,)
    assert model.predict_proba([]).shape == (0, 2)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        TextClassifier().predict(["a"])
    with pytest.raises(NotFittedError):
        LanguageModel().perplexity(["a"])
    with pytest.raises(NotFittedError):
        LanguageModel().generate("a")


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (
            ["a good film", None, "bad"],
            [1, 0, 1],
            ValueError,
            r"not text .*NoneType.*\[1\]",
        ),
        (["a", float("nan")], [1, 0], ValueError, "positions"),
        (pd.Series([1, 2, 3], name="n"), [1, 0, 1], TypeError, "'n' holds int64"),
        (["a", "b", "c"], [1, 0], ValueError, "3 texts but y has 2"),
        ("just one string", [1], TypeError, "single string"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), [1], ValueError, "text_col"),
        (["a", "b"], [1, 1], ValueError, "single class"),
        (["a", "b"], None, ValueError, "needs targets"),
    ],
)
def test_bad_input_is_a_clear_error(X, y, error, match):
    with pytest.raises(error, match=match):
        clf().fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"level": "sentence"}, "level"),
        ({"emb_size": 0}, "emb_size"),
        ({"lm_epochs": -1}, "lm_epochs"),
        ({"language_model": 3}, "language_model"),
        ({"language_model": LanguageModel()}, "unfitted LanguageModel"),
        ({"max_len": 0}, "max_len"),
        ({"crop": 0}, "crop"),
        ({"crop": 1.5}, "crop"),
        ({"crop": 10}, "crop"),
        ({"lr_ratio": 0}, "lr_ratio"),
        ({"adversarial": -0.1}, "adversarial"),
        ({"adversarial": True}, "adversarial"),
        ({"adversarial": "0.05"}, "adversarial"),
        ({"predict_window": 0}, "predict_window"),
    ],
)
def test_bad_parameters_fail_before_training(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        clf(**params).fit(*reviews(10))


def test_language_model_bad_input():
    with pytest.raises(ValueError, match="too few"):
        LanguageModel(batch_size=64, **TINY).fit(["tiny text"])
    with pytest.raises(ValueError, match="no texts"):
        LanguageModel(**TINY).fit([])
    with pytest.raises(FileNotFoundError):
        TextClassifier(language_model="/nonexistent/enc.pt", **TINY).fit(*reviews(10))


def test_grid_search_over_a_text_classifier():
    X, y = reviews(60)
    search = GridSearchCV(clf(epochs=1), {"lr": [1e-2, 3e-2]}, cv=2).fit(X, y)
    assert search.best_params_["lr"] in (1e-2, 3e-2)


def test_finder_warm_start_and_early_stopping():
    X, y = reviews(60)
    model = clf(lr=None, epochs=1).fit(X, y)
    assert model.lr_find_.lrs and model.lr_ == model.lr_find_.suggestion
    n = len(model.history_)
    model.set_params(warm_start=True).fit(X, y)
    assert len(model.history_) == n + 1
    stopped = clf(epochs=30, early_stopping=1, validation_fraction=0.3, lr=1e-6).fit(
        X, y
    )
    assert stopped.n_epochs_ < 30 and "valid_loss" in stopped.history_


@pytest.mark.parametrize("lm_epochs, freeze_epochs", [(0, 1), (1, 1), (1, 0)])
def test_lr_find_is_the_sweep_that_lr_none_runs_in_fit(lm_epochs, freeze_epochs):
    X, y = reviews(60)
    params = {"lr": None, "lm_lr": 1e-2, "lm_epochs": lm_epochs, "epochs": 1}
    est = clf(**params, freeze_epochs=freeze_epochs, lm_batch_size=8, bptt=16)
    sweep = est.lr_find(X, y)
    assert not hasattr(est, "module_")  # the estimator itself stays unfitted
    fitted = est.fit(X, y)
    # With an LM stage, its sweep is the head-only first stage of the classifier.
    assert sweep.lrs == fitted.lr_find_.lrs
    assert sweep.losses == fitted.lr_find_.losses
    assert sweep.suggestion == fitted.lr_ and np.isfinite(sweep.suggestion)


def test_language_model_with_the_finder(corpus):
    lm = LanguageModel(lr=None, epochs=1, batch_size=8, bptt=16, min_freq=1, **TINY)
    lm.fit(corpus)
    assert lm.lr_ == lm.lr_find_.suggestion and np.isfinite(lm.perplexity(corpus[:5]))


def test_character_level_classifier_and_language_model_level_carries_over(tmp_path):
    X, y = reviews(40)
    model = clf(level="char", epochs=1, max_len=60).fit(X, y)
    assert model.level_ == "char" and "g" in model.vocab_.stoi_
    assert model.predict(["great"]).shape == (1,)
    lm = LanguageModel(
        level="char", epochs=1, batch_size=4, bptt=16, min_freq=1, **TINY
    )
    lm.fit(X)
    lm.save_encoder(tmp_path / "char.pt")
    from_file = TextClassifier(
        language_model=tmp_path / "char.pt", lm_epochs=0, epochs=1, **TINY
    )
    assert from_file.fit(X, y).level_ == "char"


def test_backwards_language_model_reads_texts_from_the_end(tmp_path):
    # "omega" always comes right after "alpha"; what comes before "alpha" is random.
    rng = np.random.default_rng(0)
    texts = [
        " ".join([*rng.choice(FILLER, 3), "alpha", "omega", *rng.choice(FILLER, 3)])
        for _ in range(150)
    ]
    params = {"epochs": 4, "batch_size": 8, "bptt": 16, "min_freq": 1, **TINY}
    lm = LanguageModel(backwards=True, random_state=0, lr=2e-2, **params).fit(texts)
    ids = lm._encode(["the film plot"])[0]
    assert lm.vocab_.decode(ids) == ["xxbos", "plot", "film", "the"]
    # Read backwards, "alpha" is the one word that can precede "omega"; the continuation
    # is written before the prompt.
    assert lm.generate("omega", n_words=1, temperature=0).split() == ["alpha", "omega"]
    assert lm.generate("alpha omega", n_words=3, random_state=0).endswith("alpha omega")
    # The direction travels with the encoder file and is checked when loading.
    lm.save_encoder(tmp_path / "bwd.pt")
    X, y = reviews(60)
    model = TextClassifier(
        language_model=tmp_path / "bwd.pt", lm_epochs=0, epochs=1, **TINY
    ).fit(X, y)
    assert model.backwards_ and model.vocab_.decode(model._encode(["a film"])[0]) == [
        "xxbos",
        "film",
        "a",
    ]
    forward = LanguageModel(random_state=0, **params).fit(texts)
    assert not forward.backwards_
    with pytest.raises(ValueError, match="reads texts backwards, this model forwards"):
        forward.load_encoder(tmp_path / "bwd.pt")


def test_backwards_classifier_learns_generated_reviews():
    X, y = reviews(200)
    Xt, yt = reviews(100, seed=5)
    model = clf(epochs=8, backwards=True).fit(X, y)
    assert model.backwards_ and model.score(Xt, yt) > 0.9


def test_bidirectional_soft_vote_fits_its_directions_in_parallel():
    # ULMFiT's bidirectional classifier as scikit-learn writes an ensemble: the members
    # are cloned, pickled to joblib's worker processes, fitted there and sent back.
    X, y = reviews(200)
    Xt, yt = reviews(100, seed=5)
    members = [("forward", clf(epochs=8)), ("backward", clf(epochs=8, backwards=True))]
    votes = [
        VotingClassifier(members, voting="soft", n_jobs=n).fit(X, y) for n in (1, 2)
    ]
    sequential, parallel = votes
    assert [m.backwards_ for m in parallel.estimators_] == [False, True]
    np.testing.assert_allclose(
        parallel.predict_proba(Xt), sequential.predict_proba(Xt), atol=1e-5
    )
    assert list(parallel.classes_) == ["neg", "pos"] and parallel.score(Xt, yt) > 0.9


class BatchLengths(Callback):
    def __init__(self) -> None:
        self.train: list[list[int]] = []

    def after_batch(self, learn) -> None:  # training batches only
        self.train.append(learn.xb[1].tolist())


def test_classifier_trains_on_crops_and_predicts_whole_texts():
    # Long generated reviews: the label word is somewhere among 60 to 100 fillers.
    rng = np.random.default_rng(0)
    X, y = [], []
    for i in range(80):
        words = list(rng.choice(FILLER, size=int(rng.integers(60, 100))))
        words.insert(int(rng.integers(0, len(words))), GOOD[0] if i % 2 else BAD[0])
        X.append(" ".join(words))
        y.append(i % 2)
    full = clf(crop=None, epochs=1).fit(X, y)
    whole = sorted(len(d) for d in full._encode(X))
    rec = BatchLengths()
    model = clf(crop=0.2, epochs=2, callbacks=[rec]).fit(X, y)
    seen = sorted(n for batch in rec.train[-5:] for n in batch)  # the last epoch
    assert len(seen) == 80 and max(seen) <= whole[-1]
    assert np.mean(seen) < 0.8 * np.mean(whole)  # crops are shorter than the texts
    assert min(seen) >= 1 + 20  # but keep xxbos and at least MIN_CROP tokens
    # Prediction reads whole texts: the predicted batches are the texts' own lengths.
    batches = model._clas_batches(model._encode(X), None, shuffle=False)
    assert batches.crop is None
    lengths = sorted(int(n) for ((_, ls),) in batches for n in ls)
    assert lengths == whole
    # An integer crop is a length in tokens: spans of 20 to 30 tokens after xxbos.
    rec = BatchLengths()
    clf(crop=30, epochs=1, callbacks=[rec]).fit(X, y)
    seen = [n for batch in rec.train for n in batch]
    assert len(seen) == 80 and 21 <= min(seen) and max(seen) <= 31


class EmbeddingCalls(Callback):
    """Counts the embedding's forward passes per training batch of each stage."""

    def __init__(self) -> None:
        self.calls, self.batches, self.hooks_left = 0, 0, []

    def before_fit(self, learn) -> None:
        self.emb = learn.model.encoder.encoder_dp
        self.handle = self.emb.register_forward_hook(self.count)

    def count(self, mod, inputs, out) -> None:
        self.calls += mod.training

    def after_batch(self, learn) -> None:
        self.batches += 1

    def after_fit(self, learn) -> None:
        self.handle.remove()


def test_adversarial_training_reads_each_batch_twice_and_leaves_no_hook(lm):
    X, y = reviews(64)
    counts = {}
    for eps in (0, 0.05):
        rec = EmbeddingCalls()
        model = TextClassifier(
            language_model=lm,
            lm_epochs=0,
            epochs=1,
            batch_size=16,
            adversarial=eps,
            random_state=0,
            callbacks=[rec],
            **TINY,
        ).fit(X, y)
        counts[eps] = rec.calls / rec.batches
        assert not model.module_.encoder.encoder_dp._forward_hooks
        proba = model.predict_proba(X)
        np.testing.assert_allclose(proba, model.predict_proba(X))  # eval is plain
    # Every stage (the frozen ones too): a clean pass, then the perturbed one.
    assert counts == {0: 1.0, 0.05: 2.0}


def test_predict_window_averages_the_windows_of_long_texts():
    X, y = reviews(80)
    model = clf(epochs=2, predict_window=None).fit(X, y)
    whole = model.predict_proba(X)
    # Generated reviews are at most 14 tokens: one window each, the same answer.
    model.set_params(predict_window=20)
    np.testing.assert_allclose(model.predict_proba(X), whole, rtol=1e-5, atol=1e-6)
    # Long texts: the mean of the windows' probabilities, rows in the input order.
    long = [" ".join([X[i]] * 6) for i in range(5)]
    docs = model._encode(long)
    wins, owner = text_windows(docs, 20, model.max_len)
    assert np.bincount(owner).min() >= 3
    per_window = torch.softmax(model._logits(wins), 1).numpy()
    want = np.stack([per_window[owner == k].mean(0) for k in range(5)])
    got = model.predict_proba(long)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    model.set_params(predict_window=None)
    assert not np.allclose(model.predict_proba(long), got, atol=1e-4)
    assert model.predict(pd.Series(long)).shape == (5,)


def test_sample_weight_weighs_texts_in_the_classifier_loss():
    X, y = reviews(160)
    Xt, yt = reviews(100, seed=5)
    rng = np.random.default_rng(0)
    flipped = rng.random(len(y)) < 0.4
    noisy = np.where(flipped, np.where(y == "pos", "neg", "pos"), y)
    w = (~flipped).astype(float)
    # 12 epochs: with 6, whether the weighted fit got past 0.85 hung on the seed (4 of
    # seeds 0-4 did with torch's dropout, 3 with deepfit.layers.Dropout); with 12, seeds
    # 0-5 all reach 1.0 and the plain fit 0.5-0.68.
    weighted = clf(epochs=12).fit(X, noisy, sample_weight=w)
    plain = clf(epochs=12).fit(X, noisy)
    assert weighted.score(Xt, yt) > plain.score(Xt, yt)
    assert weighted.score(Xt, yt) > 0.85
    with pytest.raises(ValueError, match="sample_weight has shape"):
        clf(epochs=1).fit(X, y, sample_weight=w[:-1])


def test_a_frozen_language_model_survives_clone_and_cross_validation(lm):
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import cross_val_score

    X, y = reviews(60)
    frozen = clf(epochs=1, lm_epochs=0, language_model=FrozenEstimator(lm))
    twin = clone(frozen)
    assert twin.language_model.estimator is lm  # clone keeps a frozen estimator
    scores = cross_val_score(frozen, X, y, cv=2)
    assert len(scores) == 2
    # Its encoder starts from the language model's weights.
    fitted = clone(frozen).fit(X, y)
    start = lm.module_.encoder.encoder.weight
    assert fitted.module_.encoder.encoder.weight.shape[1] == start.shape[1]
    # A bare one loses its state in clone: a clear error, before training.
    with pytest.raises(ValueError, match="FrozenEstimator"):
        clone(clf(epochs=1, lm_epochs=0, language_model=lm)).fit(X, y)
