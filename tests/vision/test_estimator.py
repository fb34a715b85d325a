"""ImageClassifier: the behaviour a user relies on.

sklearn's ``parametrize_with_checks`` does not apply: its checks feed 2-d numeric feature
matrices, and an image classifier takes images (paths or ``(N, H, W[, C])`` arrays). The
parts of the contract that do apply (clone, get_params, fit returns self, NotFittedError,
pickle, reproducibility, GridSearchCV, clear errors before training) are tested here.
"""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from torchvision import models

from deepfit import Callback, LRFinderResult
from tests.vision.images import COLOURS, colour_classes, colour_sets, write_pngs
from vision import ImageClassifier
from vision.estimator import FALLBACK_LR, FINDER_ITERS, FINDER_RANGE

SMALL = {
    "arch": "small_resnet",
    "arch_kwargs": {"width": 8},
    "sizes": 24,
    "augment": None,
    "batch_size": 16,
    "epochs": 2,
    "lr": 3e-3,
    "verbose": 0,
    "random_state": 0,
}


def small(**kw) -> ImageClassifier:
    return ImageClassifier(**{**SMALL, **kw})


class Snapshots(Callback):
    """Records the model's state at the start and end of every stage (learner.fit), the
    base rates of each stage and the input size of every batch."""

    def __init__(self) -> None:
        self.starts, self.ends, self.lrs, self.sizes = [], [], [], []

    @staticmethod
    def _state(learn):
        return {k: v.detach().clone() for k, v in learn.model.state_dict().items()}

    def before_fit(self, learn):
        self.starts.append(self._state(learn))
        self.lrs.append(list(learn.base_lrs))

    def before_batch(self, learn):
        self.sizes.append(tuple(learn.xb.shape[-2:]))

    def after_fit(self, learn):
        self.ends.append(self._state(learn))


@pytest.fixture(scope="module")
def colours():
    return colour_classes(96, size=24, seed=0)


@pytest.fixture(scope="module")
def fitted(colours):
    X, y = colours
    return small(epochs=3).fit(X, y)


@pytest.fixture(scope="module")
def body_file(tmp_path_factory, fitted):
    path = tmp_path_factory.mktemp("weights") / "body.pt"
    fitted.save_body(path)
    return path


# ---- learning and predicting -------------------------------------------------------------


def test_learns_from_arrays_and_predicts_labels(fitted):
    X, y = colour_classes(60, size=24, seed=1)
    assert fitted.score(X, y) > 0.9
    assert set(fitted.classes_) == set(COLOURS)
    proba = fitted.predict_proba(X)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert list(fitted.history_.columns[:2]) == ["epoch", "train_loss"]
    assert fitted.n_epochs_ == 3


def test_files_dataframe_and_mixed_sizes(tmp_path, colours):
    from PIL import Image

    X, y = colours
    paths = write_pngs(X, tmp_path, labels=y)
    for p in paths[::3]:  # mixed sizes and shapes are resized
        Image.open(p).resize((40, 30)).save(p)
    df = pd.DataFrame(
        {"label": y, "file": [p.replace(f"{tmp_path}/", "") for p in paths]}
    )
    before = df.copy()
    clf = small(path_col="file", root=tmp_path, num_workers=2, epochs=3)
    clf.fit(df, df["label"])
    pd.testing.assert_frame_equal(df, before)  # the user's frame is left alone
    pred = clf.predict(df)
    assert pred.shape == (96,) and (pred == y).mean() > 0.8
    assert np.allclose(clf.predict_proba(paths), clf.predict_proba(df))
    with pytest.raises(ValueError, match="path_col"):
        clf.predict(df.assign(other=1).drop(columns="file"))


def test_eval_set_gives_validation_figures(colours):
    X, y = colours
    clf = small(epochs=1).fit(X[:64], y[:64], eval_set=(X[64:], y[64:]))
    assert {"valid_loss", "accuracy", "size", "stage"} <= set(clf.history_.columns)


# ---- the fine-tuning recipe ----------------------------------------------------------


def test_frozen_stage_leaves_body_weights_and_batchnorm_statistics_alone(
    body_file, colours
):
    X, y = colours
    saved = torch.load(body_file, weights_only=True)
    snaps = Snapshots()
    clf = small(weights=body_file, freeze_epochs=1, epochs=1, callbacks=[snaps])
    clf.fit(X[::-1].copy(), y[::-1].copy())
    assert list(clf.history_["stage"]) == ["frozen", "unfrozen"]
    start, frozen_end, unfrozen_end = snaps.starts[0], snaps.ends[0], snaps.ends[1]
    running = [k for k in saved if "running_" in k]
    assert running  # the test really covers BatchNorm statistics
    for k, v in saved.items():
        assert torch.equal(start[f"body.{k}"], v), k  # transferred exactly
        assert torch.equal(frozen_end[f"body.{k}"], v), k  # untouched while frozen
    head = [k for k in start if k.startswith("head.") and "weight" in k]
    assert any(
        not torch.equal(start[k], frozen_end[k]) for k in head
    )  # the head trained
    assert any(not torch.equal(unfrozen_end[f"body.{k}"], v) for k, v in saved.items())


def test_unfrozen_stage_uses_discriminative_rates(body_file, colours):
    X, y = colours
    for ratio in (3.0, 10.0):
        snaps = Snapshots()
        small(
            weights=body_file, epochs=1, lr=0.01, lr_ratio=ratio, callbacks=[snaps]
        ).fit(X, y)
        frozen, unfrozen = snaps.lrs
        assert frozen[-1] == pytest.approx(0.01)
        assert unfrozen == pytest.approx([0.005 / ratio**2, 0.005 / ratio, 0.005])


def test_random_weights_train_unfrozen_at_one_rate(colours):
    X, y = colours
    snaps = Snapshots()
    clf = small(epochs=1, callbacks=[snaps]).fit(X, y)
    assert list(clf.history_["stage"]) == ["unfrozen"] and snaps.lrs == [[3e-3] * 3]


def test_progressive_resizing_changes_the_size_and_keeps_the_weights(colours):
    X, y = colours
    snaps = Snapshots()
    clf = small(sizes=(16, 24, 32), epochs=4, callbacks=[snaps]).fit(X, y)
    assert list(clf.history_["size"]) == [16, 16, 24, 32]  # the remainder goes first
    assert clf.n_epochs_ == 4
    seen = [s for i, s in enumerate(snaps.sizes) if i == 0 or s != snaps.sizes[i - 1]]
    assert seen == [(16, 16), (24, 24), (32, 32)]
    for end, start in zip(snaps.ends[:-1], snaps.starts[1:], strict=True):
        assert all(torch.equal(end[k], start[k]) for k in end)  # same model carries on
    assert clf.predict_proba(X[:4]).shape == (4, 3)  # predicts at the last size


def test_sgdr_cycles(colours):
    X, y = colours

    class Rates(Callback):
        def __init__(self):
            self.lrs = []

        def after_batch(self, learn):
            self.lrs.append(learn.lrs[-1])

    rates = Rates()
    small(epochs=3, cycle_len=1, cycle_mult=2, callbacks=[rates]).fit(X, y)
    per_epoch = len(rates.lrs) // 3
    lrs = np.array(rates.lrs)
    assert lrs[0] == pytest.approx(3e-3) and lrs[per_epoch] == pytest.approx(
        3e-3
    )  # restart
    assert lrs[per_epoch - 1] < 1e-3 and lrs[-1] < 1e-3


def test_warm_start_continues_unfrozen(body_file, colours):
    X, y = colours
    clf = small(weights=body_file, epochs=1, warm_start=True).fit(X, y)
    module = clf.module_
    clf.fit(X, y)
    assert clf.module_ is module
    assert list(clf.history_["stage"]) == ["frozen", "unfrozen", "unfrozen"]
    assert clf.n_epochs_ == 1


# ---- multi-label -----------------------------------------------------------------------


def test_multilabel_lists_threshold_and_finder_trains():
    X, labels = colour_sets(128, size=24, seed=0)
    clf = small(epochs=3, lr=None).fit(X, labels)  # the finder picks the rate
    assert clf.multilabel_ and list(clf.classes_) == sorted(COLOURS)
    assert FINDER_RANGE[0] <= clf.lr_ <= FINDER_RANGE[1]
    assert clf.history_["train_loss"].iloc[-1] < 0.4  # trained, not stuck at 0.69
    Xt, truth = colour_sets(64, size=24, seed=1)
    pred = clf.predict(Xt)
    assert pred.dtype == object and all(isinstance(p, list) for p in pred)
    proba = clf.predict_proba(Xt)
    assert proba.shape == (64, 3) and not np.allclose(proba.sum(1), 1)
    hits = np.mean([set(p) == set(t) for p, t in zip(pred, truth, strict=True)])
    assert hits > 0.7
    for threshold in (0.2, 0.8):
        clf.set_params(threshold=threshold)
        expected = [list(clf.classes_[row >= threshold]) for row in proba]
        assert [list(p) for p in clf.predict(Xt)] == expected
    assert 0 <= clf.score(Xt, truth) <= 1


def test_multilabel_indicator_in_indicator_out():
    X, labels = colour_sets(64, size=24, seed=0)
    Y = np.array([[c in row for c in COLOURS] for row in labels], dtype=int)
    clf = small(epochs=1).fit(X, Y)
    pred = clf.predict(X)
    assert pred.shape == (64, 3) and set(np.unique(pred)) <= {0, 1}
    assert (
        list(clf.classes_) == [0, 1, 2]
        and "fbeta"
        in small(epochs=1)
        .fit(X, pd.DataFrame(Y, columns=list(COLOURS)), eval_set=(X, Y))
        .history_.columns
    )


# ---- test-time augmentation ----------------------------------------------------------


def test_tta_averages_the_views(colours):
    X, y = colours
    clf = small(augment="side-on", epochs=1).fit(X, y)
    plain = clf.predict_proba(X[:8])
    mirrored = clf.predict_proba(X[:8, :, ::-1].copy())
    tta = clf.predict_proba(X[:8], tta=True)
    assert tta.shape == (8, 3)
    assert np.allclose(tta, (plain + mirrored) / 2, atol=1e-5)
    clf.set_params(augment="top-down")
    views = []
    for k in range(8):
        v = X[:8].transpose(0, 2, 1, 3) if k & 4 else X[:8]
        v = v[:, ::-1] if k & 2 else v
        v = v[:, :, ::-1] if k & 1 else v
        views.append(clf.predict_proba(v.copy()))
    assert np.allclose(clf.predict_proba(X[:8], tta=True), np.mean(views, 0), atol=1e-5)


def test_tta_without_augmentation_warns_and_is_plain(fitted, colours):
    X, _ = colours
    with pytest.warns(UserWarning, match="augment=None"):
        tta = fitted.predict_proba(X[:4], tta=True)
    assert np.allclose(tta, fitted.predict_proba(X[:4]))


# ---- transfer, weights -------------------------------------------------------------------


def test_save_body_then_weights_path_transfers_the_body(body_file, fitted, colours):
    X, y = colours
    with pytest.raises(IsADirectoryError, match=f"to '{body_file.parent}'"):
        fitted.save_body(body_file.parent)
    snaps = Snapshots()
    small(weights=body_file, epochs=1, callbacks=[snaps]).fit(X[:32], y[:32])
    expected = fitted.module_.body.state_dict()
    assert all(
        torch.equal(snaps.starts[0][f"body.{k}"], v) for k, v in expected.items()
    )


def test_wrong_architecture_weights_name_the_layer(body_file, colours):
    X, y = colours
    with pytest.raises(ValueError, match=r"'stem\.0\.weight' has shape"):
        small(weights=body_file, arch_kwargs={"width": 16}).fit(X, y)
    with pytest.raises(ValueError, match=r"'conv1\.weight'"):
        small(arch="resnet18", arch_kwargs=None, weights=body_file).fit(X, y)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        small(weights="missing.pt").fit(X, y)


def test_resnet18_from_a_torchvision_state_dict(tmp_path, colours):
    """A resnet18-sized model end to end, its body loaded from a whole torchvision model's
    state dict (the form an ImageNet weights file takes)."""
    X, y = colours
    path = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    tv = models.resnet18()
    torch.save(tv.state_dict(), path)
    snaps = Snapshots()
    clf = ImageClassifier(
        "resnet18", weights=path, sizes=32, epochs=1, lr=1e-3, batch_size=32,
        verbose=0, random_state=0, callbacks=[snaps],
    ).fit(X[:64], y[:64])  # fmt: skip
    assert torch.equal(snaps.starts[0]["body.conv1.weight"], tv.conv1.weight.detach())
    assert clf.predict_proba(X[:5]).shape == (5, 3)


def test_registry_weights_resolve_without_downloading():
    from torchvision.models import ResNet18_Weights

    for name in ("DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        kind, spec = ImageClassifier("resnet18", weights=name)._weights_spec()
        assert kind == "registry" and spec is ResNet18_Weights.IMAGENET1K_V1
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET2K'"):
        ImageClassifier("resnet18", weights="IMAGENET2K")._weights_spec()
    with pytest.raises(ValueError, match="no registry weights"):
        ImageClassifier("small_resnet", weights="DEFAULT")._weights_spec()


# ---- the learning-rate finder --------------------------------------------------------


def test_finder_suggestion_is_used_and_kept_in_range(colours):
    X, y = colours
    clf = small(lr=None, epochs=1).fit(X, y)
    assert isinstance(clf.lr_find_, LRFinderResult)
    assert FINDER_RANGE[0] <= clf.lr_ <= FINDER_RANGE[1]
    assert len(clf.lr_find_.lrs) <= FINDER_ITERS  # a short sweep
    result = small().lr_find(X, y)
    assert result.lrs and not hasattr(small(), "module_")


def test_unreliable_finder_falls_back_with_a_warning():
    from deepfit.lr_finder import suggest_zero_lag

    class Stub:  # a learner whose sweep's loss never falls
        def lr_find(self, batches, **kw):
            assert kw["suggest"] == "zero_lag" and kw["fallback"] == FALLBACK_LR
            lrs, flat = list(np.logspace(-5, 0, 40)), [1.0] * 40
            rate, reliable = suggest_zero_lag(
                lrs, flat, flat, kw["bounds"], kw["fallback"]
            )
            return LRFinderResult(lrs, flat, rate, 0, 0, reliable, raw_losses=flat)

    with pytest.warns(RuntimeWarning, match="unreliable"):
        assert small(lr=None)._resolve_lr(Stub(), None) == FALLBACK_LR


# ---- the scikit-learn contract -------------------------------------------------------------


def test_clone_params_and_not_fitted():
    clf = small(sizes=(16, 24), lr_ratio=10)
    params = clf.get_params()
    twin = clone(clf)
    assert twin.get_params() == params and params["lr_ratio"] == 10
    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(np.zeros((2, 8, 8), dtype=np.uint8))
    with pytest.raises(NotFittedError):
        clf.save_body("x.pt")


@pytest.mark.parametrize("dumper", ["pickle", "joblib"])
def test_pickle_round_trip_predicts_the_same(dumper, fitted, colours, tmp_path):
    X, _ = colours
    if dumper == "pickle":
        loaded = pickle.loads(pickle.dumps(fitted))
    else:
        joblib.dump(fitted, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib")
    assert np.array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert np.array_equal(loaded.predict(X), fitted.predict(X))


def test_same_random_state_same_model_different_state_differs(colours):
    X, y = colours
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = small(augment="side-on", epochs=1).fit(X, y).predict_proba(X)
    assert torch.equal(torch.rand(3), expected)  # global RNG left alone
    b = small(augment="side-on", epochs=1).fit(X, y).predict_proba(X)
    c = small(augment="side-on", epochs=1, random_state=1).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_reproducible_with_worker_processes(tmp_path, colours):
    X, y = colours
    paths = write_pngs(X[:32], tmp_path)
    fits = [
        small(augment="top-down", epochs=1, num_workers=2).fit(paths, y[:32])
        for _ in range(2)
    ]
    assert np.array_equal(fits[0].predict_proba(paths), fits[1].predict_proba(paths))


def test_grid_search(colours):
    X, y = colours
    search = GridSearchCV(small(epochs=1), {"dropout": [0.0, 0.5]}, cv=2).fit(X, y)
    assert search.best_params_["dropout"] in (0.0, 0.5)


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"arch": "resnet35"}, "unknown arch 'resnet35'"),
        ({"augment": "sideways"}, "augment must be"),
        ({"sizes": (24, 0)}, "sizes must be"),
        ({"sizes": (16, 24, 32), "epochs": 2}, "at least the number of sizes"),
        ({"lr_ratio": 0}, "lr_ratio"),
        ({"threshold": 1.5}, "threshold"),
        ({"cycle_mult": 0.5}, "cycle_mult"),
        ({"freeze_epochs": -1}, "freeze_epochs"),
        ({"dropout": 1.0}, "dropout"),
        ({"arch_kwargs": {"widht": 8}}, "arch_kwargs"),
    ],
)
def test_bad_parameters_raise_before_training(params, match, colours):
    X, y = colours
    with pytest.raises(ValueError, match=match):
        small(**params).fit(X, y)


def test_bad_targets(colours):
    X, y = colours
    with pytest.raises(ValueError, match="96 images but y has 95"):
        small().fit(X, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        small().fit(X, np.full(96, "red"))
    with pytest.raises(ValueError, match="missing labels"):
        small().fit(X, [None, *y[1:]])
    with pytest.raises(ValueError, match="not seen in fit"):
        small().fit(X[:90], y[:90], eval_set=(X[90:], ["purple"] * 6))
    with pytest.raises(ValueError, match="only 0 and 1"):
        small().fit(X, np.full((96, 3), 2))
    with pytest.raises(ValueError, match="needs labels"):
        small().fit(X)
    with pytest.raises(ValueError, match="mixes label types"):
        small().fit(X, [[1, "1"]] + [[c] for c in y[1:]])


def test_unreadable_file_fails_before_training(tmp_path, colours):
    X, y = colours
    paths = write_pngs(X[:8], tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    snaps = Snapshots()
    with pytest.raises(ValueError, match=r"broken\.png"):
        small(callbacks=[snaps]).fit([*paths, str(tmp_path / "broken.png")], y[:9])
    assert snaps.starts == []
    with pytest.raises(ValueError, match=r"nothere\.png"):
        small().fit([*paths, str(tmp_path / "nothere.png")], y[:9])


def test_truncated_jpeg_fails_before_training(tmp_path, colours):
    # Its header is intact: only decoding finds that the file was cut short.
    X, y = colours
    jpegs = []
    for i in range(9):
        jpegs.append(str(tmp_path / f"{i}.jpg"))
        Image.fromarray(np.asarray(X[i])).save(jpegs[-1], quality=95)
    data = open(jpegs[4], "rb").read()
    open(jpegs[4], "wb").write(data[: len(data) // 2])
    snaps = Snapshots()
    with pytest.raises(ValueError, match=r"4\.jpg.*(?i:truncated)"):
        small(callbacks=[snaps]).fit(jpegs, y[:9])
    assert snaps.starts == []


# ---- real data -------------------------------------------------------------------------


def test_mnist_tiny_from_folders(data_dir):
    from vision import image_folder, load_images

    root = data_dir / "mnist-tiny"
    train, y_train = image_folder(root / "train")
    valid, y_valid = image_folder(root / "valid")
    X_train, X_valid = load_images(train, 28), load_images(valid, 28)
    assert X_train.shape == (709, 28, 28, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no finder fallback, no other surprise
        clf = ImageClassifier(
            "small_resnet", arch_kwargs={"width": 8}, sizes=28, augment=None,
            epochs=3, verbose=0, random_state=0,
        ).fit(X_train, y_train)  # fmt: skip
    assert clf.score(X_valid, y_valid) > 0.97


def test_image_lr_rule_on_known_curves():
    from deepfit.lr_finder import suggest_zero_lag

    def suggest_image_lr(result):
        return suggest_zero_lag(
            result.lrs, result.losses, result.raw_losses, FINDER_RANGE, FALLBACK_LR
        )

    lrs = list(np.logspace(-5, 0, 40))
    x = np.log10(lrs)
    rng = np.random.default_rng(0)
    # A noisy valley whose true bottom is at 1e-2 (x = -2), rising steeply after it.
    valley = 0.7 - 0.5 / (1 + np.exp(-(x + 3) * 3)) + 2 * np.clip(x + 2, 0, None) ** 2
    noisy = list(valley + rng.normal(0, 0.05, size=40))
    result = LRFinderResult(lrs, noisy, 0, 0, 0, raw_losses=noisy)
    lr, reliable = suggest_image_lr(result)
    assert reliable and 10**-2.4 <= lr <= 10**-1.7
    flat = list(0.7 + rng.normal(0, 0.01, size=40))
    assert suggest_image_lr(LRFinderResult(lrs, flat, 0, 0, 0, raw_losses=flat)) == (
        FALLBACK_LR,
        False,
    )
    rising = list(np.linspace(0.7, 3, 40))
    assert not suggest_image_lr(
        LRFinderResult(lrs, rising, 0, 0, 0, raw_losses=rising)
    )[1]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet34", "resnext50_32x4d"])
def test_named_backbones_fit_and_transfer(arch, colours, tmp_path):
    X, y = colours
    params = {"sizes": 32, "epochs": 1, "lr": 1e-3, "batch_size": 32, "verbose": 0}
    clf = ImageClassifier(arch, random_state=0, **params).fit(X[:64], y[:64])
    clf.save_body(tmp_path / "body.pt")
    tuned = ImageClassifier(
        arch, weights=tmp_path / "body.pt", random_state=0, **params
    )
    tuned.fit(X[64:], y[64:])
    assert list(tuned.history_["stage"]) == ["frozen", "unfrozen"]
    assert tuned.predict_proba(X[:4]).shape == (4, 3)


def test_sample_weight_weighs_images_in_the_loss(colours):
    X, y = colours
    # Uniform weights are no weights (the loss is a weighted mean).
    a = small(epochs=2).fit(X, y).predict_proba(X)
    b = small(epochs=2).fit(X, y, sample_weight=np.full(len(y), 3.0)).predict_proba(X)
    np.testing.assert_allclose(a, b, atol=1e-4)
    # Weight zero: as if the image were not there, also through augmentation's loader.
    rng = np.random.default_rng(0)
    wrong = rng.random(len(y)) < 0.4
    noisy = np.where(wrong, np.roll(np.asarray(y), 1), y)
    for augment in (None, "side-on"):
        weighted = small(epochs=6, augment=augment).fit(
            X, noisy, sample_weight=(~wrong).astype(float)
        )
        plain = small(epochs=6, augment=augment).fit(X, noisy)
        assert weighted.score(X, y) >= plain.score(X, y)
    with pytest.raises(ValueError, match="sample_weight has shape"):
        small().fit(X, y, sample_weight=np.ones(3))
