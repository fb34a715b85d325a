"""GenerativeTextClassifier and ClassConditionalLM: one language model per class read by
Bayes' rule, the calibration on held-out texts, the pretrained start, bad input."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

import deepfit.learner
from tests.text.test_estimator import TINY, clf, reviews
from text import AWD_LSTM, LanguageModel, LMModel
from text.awd_lstm import ClassConditionalLM
from text.generative import GenerativeTextClassifier, fit_calibration


def gen(**kw) -> GenerativeTextClassifier:
    params = {
        **TINY,
        "epochs": 8,
        "lr": 3e-2,
        "batch_size": 8,
        "bptt": 16,
        "min_freq": 1,
        "random_state": 0,
    }
    return GenerativeTextClassifier(**{**params, **kw})


@pytest.fixture(scope="module")
def fitted() -> GenerativeTextClassifier:
    texts, labels = reviews(160, seed=0)
    return gen().fit(texts, labels)


# ---- the model ---------------------------------------------------------------------


def _tiny_lms(n: int, vocab: int = 30) -> list[LMModel]:
    torch.manual_seed(0)
    return [
        LMModel(AWD_LSTM(vocab, emb_size=8, hidden_size=12, n_layers=2)).eval()
        for _ in range(n)
    ]


def test_log_likelihoods_match_text_by_text_sums_despite_padding_and_windows():
    lms = _tiny_lms(2)
    model = ClassConditionalLM(lms, window=3).eval()  # windows shorter than the texts
    texts = [torch.randint(2, 30, (n,)) for n in (9, 4, 1, 7)]
    ids = torch.full((4, 9), 1, dtype=torch.long)  # pad id 1 after each text
    for i, t in enumerate(texts):
        ids[i, : len(t)] = t
    lengths = torch.tensor([len(t) for t in texts])
    with torch.no_grad():
        got = model.log_likelihoods(ids, lengths)
        for k, lm in enumerate(lms):
            for i, t in enumerate(texts):
                lm.reset()
                want = 0.0
                if len(t) > 1:
                    logp = F.log_softmax(lm(t[None, :-1]).logits[0], -1)  # (T - 1, V)
                    want = float(logp.gather(1, t[1:, None]).sum())
                assert got[i, k].item() == pytest.approx(want, abs=1e-4)
    assert got[2].abs().max() == 0  # a lone xxbos predicts nothing
    model.scale.fill_(0.5)
    model.offset.copy_(torch.tensor([0.0, 2.0]))
    with torch.no_grad():
        torch.testing.assert_close(model(ids, lengths), 0.5 * got + model.offset)


def test_calibration_recovers_a_known_scale_and_offset():
    gen_ = torch.Generator().manual_seed(0)
    ll = torch.randn(4000, 3, generator=gen_, dtype=torch.float64) * 20 - 300
    true_scale, true_offset = 0.15, torch.tensor([0.0, 1.0, -0.5], dtype=torch.float64)
    probs = torch.softmax(true_scale * ll + true_offset, 1)
    y = torch.multinomial(probs.float(), 1, generator=gen_)[:, 0]
    scale, offset = fit_calibration(ll, y, 3)
    assert scale == pytest.approx(true_scale, rel=0.1)
    torch.testing.assert_close(offset.double(), true_offset, atol=0.15, rtol=0)


def test_calibration_of_separable_texts_stays_finite():
    ll = torch.tensor([[-10.0, -20.0], [-30.0, -12.0], [-5.0, -9.0], [-40.0, -1.0]])
    scale, offset = fit_calibration(ll, torch.tensor([0, 1, 0, 1]), 2)
    assert np.isfinite(scale) and scale > 0
    assert torch.isfinite(offset).all()


# ---- the estimator -----------------------------------------------------------------


def test_learns_generated_reviews_from_scratch(fitted):
    texts, labels = reviews(100, seed=5)
    assert fitted.score(texts, labels) >= 0.9
    proba = fitted.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert set(fitted.predict(texts)) <= set(fitted.classes_)
    ll = fitted.log_likelihoods(texts)
    assert ll.shape == (100, 2) and (ll <= 0).all()
    # Bayes' rule: the class whose model finds the text more likely, after calibration.
    logits = float(fitted.module_.scale) * ll + fitted.module_.offset.numpy()
    np.testing.assert_array_equal(logits.argmax(1), proba.argmax(1))


def test_each_class_model_learns_its_own_words(fitted):
    """The 'pos' model finds a good adjective likelier than the 'neg' model does."""
    ll = fitted.log_likelihoods(["The film was great.", "The film was awful."])
    pos = list(fitted.classes_).index("pos")
    assert ll[0, pos] - ll[0, 1 - pos] > 0 > ll[1, pos] - ll[1, 1 - pos]


def test_history_has_one_block_per_class_and_validation_losses():
    texts, labels = reviews(80, seed=2)
    valid = reviews(40, seed=3)
    est = gen(epochs=2).fit(texts, labels, eval_set=valid)
    h = est.history_
    assert list(h["class"]) == ["neg", "neg", "pos", "pos"]
    assert h["valid_loss"].notna().all()
    assert est.n_calibration_ == 16  # 20% of each class's 40 texts


def test_calibration_split_is_stratified_and_held_out():
    est = gen(calibration_fraction=0.25)
    est.classes_ = np.array(["a", "b"])
    est._seed = 0
    codes = np.array([0] * 12 + [1] * 4)
    fit, cal = est._calibration_split(codes)
    assert len(np.intersect1d(fit, cal)) == 0
    assert sorted(np.concatenate([fit, cal])) == list(range(16))
    assert np.bincount(codes[cal]).tolist() == [3, 1]


def test_without_calibration_the_offsets_are_log_class_frequencies():
    texts, labels = reviews(60, seed=4)
    texts, labels = texts + texts[:20:2], np.concatenate([labels, labels[:20:2]])
    est = gen(epochs=1, calibration_fraction=0).fit(texts, labels)
    counts = np.unique(labels, return_counts=True)[1]
    assert float(est.module_.scale) == 1.0
    np.testing.assert_allclose(
        est.module_.offset.numpy(), np.log(counts / counts.sum()), rtol=1e-6
    )
    assert est.n_calibration_ == 0


def test_sample_weight_weighs_texts_in_their_class_model():
    """Weight 0 on the 'pos' texts that say "great": the 'pos' model finds "great" less
    likely than it does unweighted, other good words not; the 'neg' texts' weights are
    all 3, which trains the same 'neg' model as no weights (the scale does not count)."""
    X, y = reviews(120, seed=0)
    great = np.array(["great" in x.lower() for x in X])
    w = np.where(great, 0.0, 3.0)
    plain = gen(epochs=4).fit(X, y)
    weighted = gen(epochs=4).fit(X, y, sample_weight=w)
    probe = [
        "The film was great.",
        "Great film.",
        "The film was superb.",
        "The film was lovely.",
    ]
    change = weighted.log_likelihoods(probe) - plain.log_likelihoods(probe)
    pos = list(plain.classes_).index("pos")
    np.testing.assert_array_equal(change[:, 1 - pos], 0)
    assert change[:2, pos].mean() < change[2:, pos].mean() - 0.3
    assert change[:2, pos].max() < 0


def test_sample_weight_weighs_the_class_frequencies_without_calibration():
    X, y = reviews(40, seed=4)
    w = np.where(y == "pos", 3.0, 1.0)
    est = gen(epochs=1, calibration_fraction=0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(
        est.module_.offset.numpy(), np.log([0.25, 0.75]), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("weight", "match"),
    [
        (np.ones(39), r"sample_weight has shape \(39,\), expected \(40,\)"),
        (-np.ones(40), r"sample_weight must be finite and >= 0"),
        (np.arange(40) % 2, r"class 'neg' has no text of positive sample_weight"),
    ],
)
def test_bad_sample_weight_fails_before_training(weight, match, monkeypatch):
    def no_training(*args, **kw):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(deepfit.learner.Learner, "fit", no_training)
    texts, labels = reviews(40)  # "neg" at even positions
    with pytest.raises(ValueError, match=match):
        gen().fit(texts, labels, sample_weight=weight)


def test_sample_weight_is_routed():
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        est = gen().set_fit_request(sample_weight=True)
        assert est.get_metadata_routing().fit.requests["sample_weight"] is True


def test_pretrained_start_first_epoch_trains_only_embedding_and_decoder(tmp_path):
    corpus = reviews(200, seed=1)[0]
    lm = LanguageModel(
        epochs=1, batch_size=8, bptt=16, min_freq=1, random_state=0, **TINY
    ).fit(corpus)
    texts, labels = reviews(80, seed=2)
    for source in (lm, tmp_path / "enc.pt"):
        if not isinstance(source, LanguageModel):
            lm.save_encoder(source)
        est = GenerativeTextClassifier(
            language_model=source, epochs=1, min_freq=1, verbose=0, random_state=0
        ).fit(texts, labels)
        assert est.encoder_config_.hidden_size == TINY["hidden_size"]
        for class_lm in est.module_.lms:
            for mine, theirs in zip(
                class_lm.encoder.rnns, lm.module_.encoder.rnns, strict=True
            ):
                for a, b in zip(
                    mine.state_dict().values(),
                    theirs.state_dict().values(),
                    strict=True,
                ):
                    torch.testing.assert_close(a, b)  # the LSTMs were frozen
        emb = [m.encoder.encoder.weight for m in est.module_.lms]
        assert not torch.equal(emb[0], emb[1])  # each class moved its own vectors


def test_backwards_models_read_texts_from_the_end(tmp_path):
    texts, labels = reviews(160, seed=0)
    est = gen(backwards=True).fit(texts, labels)
    assert est.backwards_
    assert est.vocab_.decode(est._encode(["the film was"])[0]) == [
        "xxbos",
        "was",
        "film",
        "the",
    ]
    Xt, yt = reviews(60, seed=3)
    assert est.score(Xt, yt) > 0.9
    # A backwards language model's direction carries over.
    lm = LanguageModel(
        backwards=True, epochs=1, batch_size=8, bptt=16, min_freq=1, **TINY
    ).fit(texts)
    lm.save_encoder(tmp_path / "bwd.pt")
    from_file = gen(language_model=tmp_path / "bwd.pt", epochs=1).fit(texts, labels)
    assert from_file.backwards_


def test_lr_find_is_the_sweep_that_lr_none_runs_in_fit(tmp_path):
    corpus = reviews(120, seed=1)[0]
    LanguageModel(
        epochs=1, batch_size=8, bptt=16, min_freq=1, random_state=0, **TINY
    ).fit(corpus).save_encoder(tmp_path / "enc.pt")
    texts, labels = reviews(80, seed=2)
    for source in (None, tmp_path / "enc.pt"):
        est = gen(language_model=source, lr=None, epochs=1)
        sweep = est.lr_find(texts, labels)
        assert not hasattr(est, "module_")  # the estimator itself stays unfitted
        est.fit(texts, labels)
        assert sweep.lrs == est.lr_find_.lrs and sweep.losses == est.lr_find_.losses
        assert sweep.suggestion == est.lr_ and np.isfinite(est.lr_)


def test_warm_start_trains_further_and_recalibrates():
    texts, labels = reviews(80, seed=2)
    est = gen(epochs=1, warm_start=True).fit(texts, labels)
    before = [p.detach().clone() for p in est.module_.parameters()]
    est.fit(texts, labels)
    assert len(est.history_) == 4
    after = list(est.module_.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_reproducible_pickle_clone_and_grid_search(fitted):
    texts, labels = reviews(160, seed=0)
    again = gen().fit(texts, labels)
    np.testing.assert_allclose(
        again.predict_proba(texts[:20]), fitted.predict_proba(texts[:20]), rtol=1e-6
    )
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(
        loaded.predict_proba(texts[:20]), fitted.predict_proba(texts[:20]), rtol=1e-6
    )
    assert not hasattr(clone(fitted), "module_")
    search = GridSearchCV(
        gen(epochs=1), {"calibration_fraction": [0.0, 0.25]}, cv=2
    ).fit(texts[:80], labels[:80])
    assert search.best_params_["calibration_fraction"] in (0.0, 0.25)


def test_soft_vote_with_the_ulmfit_classifier(fitted):
    # (g) of the IMDB benchmark: scikit-learn's VotingClassifier averages the two
    # classifiers' probabilities; its members are fitted on labels encoded 0, 1, ...
    texts, labels = reviews(160, seed=0)
    Xt, yt = reviews(60, seed=5)
    vote = VotingClassifier(
        [("ulmfit", clf(epochs=8)), ("generative", gen())], voting="soft"
    ).fit(pd.Series(texts), labels)
    assert list(vote.classes_) == ["neg", "pos"]
    members = [m.predict_proba(Xt) for m in vote.estimators_]
    np.testing.assert_allclose(vote.predict_proba(Xt), np.mean(members, 0), rtol=1e-6)
    np.testing.assert_allclose(
        vote.named_estimators_["generative"].predict_proba(Xt),
        fitted.predict_proba(Xt),
        rtol=1e-5,
    )
    assert vote.score(Xt, yt) >= 0.9


def test_not_fitted():
    with pytest.raises(NotFittedError):
        gen().predict(["a film"])


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.eye(2)[np.arange(40) % 2], r"one class per text.*TextClassifier"),
        (np.array(["a"] * 39 + ["b"]), r"class 'b' has 1 training text"),
        (np.array(["a"] * 40), r"single class"),
        (np.array(["a", "b"] * 19), r"40 texts but y has 38"),
    ],
)
def test_bad_targets_fail_before_training(y, match, monkeypatch):
    def no_training(*args, **kw):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(deepfit.learner.Learner, "fit", no_training)
    texts, _ = reviews(40)
    with pytest.raises(ValueError, match=match):
        gen().fit(texts, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"calibration_fraction": 1.0}, "calibration_fraction"),
        ({"max_len": 1}, "max_len"),
        ({"language_model": 3}, "language_model"),
        ({"language_model": LanguageModel()}, "unfitted"),
    ],
)
def test_bad_parameters(params, match):
    texts, labels = reviews(40)
    with pytest.raises((ValueError, TypeError), match=match):
        gen(**params).fit(texts, labels)


def test_a_class_without_tokens_to_learn_from_is_named():
    texts = ["A good film.", "A fine film."] * 5 + [""]
    labels = ["pos"] * 10 + ["empty"]
    with pytest.raises(ValueError, match=r"class 'empty' has 1 token"):
        gen(calibration_fraction=0).fit(texts, labels)


@pytest.mark.slow
def test_demo_text_step_runs():
    res = subprocess.run(
        [sys.executable, "-m", "deepfit", "demo", "--only", "text"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "GenerativeTextClassifier" in res.stdout
    assert "valid accuracy" in res.stdout


@pytest.mark.parametrize("name", ["LanguageModel", "GenerativeTextClassifier"])
def test_predictions_from_threads_equal_sequential_ones(name):
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_estimator_contract import CASES

    case = next(c for c in CASES if c.name == name)
    X, y = case.data()
    est = case.make(0)
    est.fit(X) if y is None else est.fit(X, y)
    parts = [X.iloc[i::4] for i in range(4)]
    expected = [case.output(est, p) for p in parts]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda p: case.output(est, p), parts))
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
