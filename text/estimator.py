"""The ULMFiT :class:`TextClassifier` (Howard & Ruder 2018): a language model fine-tuned
on the task's texts, then a pooling classifier on its encoder trained with gradual
unfreezing and discriminative rates, each stage through the engine's ``fine_tune``."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepfit import (
    AdversarialTraining,
    Callback,
    Decided,
    FitData,
    GradientClipping,
    History,
    Learner,
    OneCycle,
)
from deepfit.data import check_sample_weight
from deepfit.params import InstanceOf, Interval, Satisfies, SequenceOf
from deepfit.schedules import Schedule, get_schedule
from deepfit.targets import (
    accuracy,
    encode_targets,
    hits,
    label_accuracy,
    label_set_accuracy,
    labels_from_hits,
    weighted_cross_entropy,
)
from text.awd_lstm import (
    LMModel,
    PoolingClassifier,
    TextClassifierModel,
    classifier_splitter,
)
from text.data import (
    SortishBatches,
    as_texts,
    target_array,
    text_windows,
)
from text.encoder import (
    CLAS_DROPS,
    CLAS_PS,
    LM_DROPS,
    LM_OUTPUT_P,
    EncoderFileMixin,
    EncoderSource,
    encoder_source,
    match_embeddings,
    new_encoder,
)
from text.language_model import LanguageModel, TextEstimator
from text.tokenizer import PAD, Vocab

__all__ = ["TextClassifier"]


def _n_rows(y: Any) -> int:
    return len(y) if hasattr(y, "__len__") else len(np.asarray(y))


@dataclass
class _TextData(FitData):
    """The classifier's batches, and what the language-model stage trains on."""

    lm_docs: list[np.ndarray] | None = None
    lm_valid: list[np.ndarray] | None = None
    source: EncoderSource | None = None


class TextClassifier(EncoderFileMixin, ClassifierMixin, TextEstimator):
    """ULMFiT text classification (Howard & Ruder 2018).

    1. Start from a language model: a fitted :class:`LanguageModel`, a file written by
       ``save_encoder``, or none (random weights). The vocabulary is learned from the task's
       texts; words the language model knows keep their vectors, new ones start at the mean.
    2. Fine-tune that language model on the task's texts (and on ``unlabelled`` texts
       passed to ``fit``) for ``lm_epochs`` epochs; the first with only the embedding and
       decoder trainable when starting from a pretrained model.
    3. Put a head on the encoder: concat pooling (last position, max and mean over the
       real, non-padding positions) and batchnorm-dropout-linear blocks. Train it with
       gradual unfreezing, last layer group first, one more group per ``freeze_epochs``,
       with discriminative rates (each group ``lr_ratio`` times lower than the next) and
       Adam with ``betas=(0.7, 0.99)``; then everything for ``epochs`` epochs. Without any
       language model (``language_model=None, lm_epochs=0``) the whole network trains at
       once.

    Batches group texts of similar length (sortish) to cut padding; in training each text
    is a random crop of itself, new every epoch (``crop``), and each batch is also read
    with its word vectors moved a small step in the direction that raises the loss most
    (``adversarial``); prediction averages windows of each text (``predict_window``).
    Binary and multiclass targets (1-D ``y``, softmax) and multi-label targets (label
    lists, or a 2-D 0/1 ``y``; sigmoid).

    The defaults are for small labelled sets and language models pretrained on little
    text, where ULMFiT's own settings (whole texts, ``lr_ratio=2.6``, a few epochs) let
    the classifier learn its texts by heart: random crops of each text, one rate for all
    layer groups, many epochs, adversarial training and windowed prediction
    (``benchmarks/README.md`` records how they were chosen, by cross-validation).

    Parameters
    ----------
    language_model : LanguageModel, FrozenEstimator, str, Path or None, default=None
        A fitted LanguageModel or a path from ``save_encoder``. For cross-validation or
        grid search wrap the model in ``sklearn.frozen.FrozenEstimator(lm)`` (or pass a
        path): ``clone`` keeps a frozen estimator as it is but drops a bare one's
        fitted state.
    level : {"word", "char"}, default="word"
        Ignored when a language model is given (its level is used).
    emb_size, hidden_size, n_layers : int, default=200, 500, 2
        Encoder sizes when there is no language model.
    lm_epochs : int, default=2
        Language-model fine-tuning epochs on the task's texts (0 to skip).
    lm_lr : float, default=5e-3
    lm_batch_size : int, default=32
    bptt : int, default=70
    max_len : int or None, default=500
        Longer texts keep ``xxbos`` and their last ``max_len - 1`` tokens.
    crop : float in (0, 1], int >= 20 or None, default=100
        Training reads a random contiguous span of each text, new every epoch, of
        between ``crop`` and all of its length, or (an int) of 20 to ``crop`` tokens
        (see :class:`text.SortishBatches`). ``None`` trains on whole texts.
    lin_sizes : tuple of int, default=(50,)
        Hidden widths of the head.
    drop_mult : float, default=0.5
        Scales the classifier's dropouts (encoder input 0.4, hidden 0.3, embedding 0.05,
        weight 0.5; head 0.4 and 0.1) and the language model's.
    freeze_epochs : int, default=1
        Epochs of each gradual-unfreezing stage.
    lr_ratio : float, default=1.0
        Each layer group's rate is ``lr_ratio`` times lower than the next one's (ULMFiT's
        discriminative fine-tuning uses 2.6, for encoders pretrained on far more text).
    betas : tuple of float, default=(0.7, 0.99)
        Adam's betas. The ``"one_cycle"`` schedule here leaves beta1 at ``betas[0]``.
    weight_decay : float, default=0.01
    clip : float or None, default=0.25
    min_freq, max_vocab : int, default=2, 60000
    threshold : float, default=0.5
        Decision threshold of multi-label predictions.
    identity_init : bool, default=False
    text_col : str or None, default=None
    n_jobs : int or None, default=None
    backwards : bool, default=False
        Read texts from the end to the start (ULMFiT's backward model). Ignored when a
        language model is given (its direction is used).
    predict_window : int or None, default=100
        Prediction reads each text (cut to ``max_len``) in windows of this many
        tokens, half overlapping, and averages their probabilities, so that it reads
        spans like those of training; ``None`` reads whole texts.
    adversarial : float, default=0.05
        Adversarial training of the classifier (Miyato et al. 2017; see
        :class:`deepfit.AdversarialTraining`): each batch also learns from its word
        embeddings moved by this share of their norm in the direction that raises the
        loss most. About 2.5 times the classifier's training time; 0 turns it off.
    epochs, lr, schedule, batch_size, validation_fraction, early_stopping, random_state, \
device, verbose, warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`; ``epochs`` counts the final, fully unfrozen
        stage and ``lr`` is the head's rate in the first stage (halved each stage; a tenth
        of it in the last).

    Attributes
    ----------
    classes_ : ndarray
        The labels (the columns of a multi-label ``y``).
    multilabel_ : bool
    label_format_ : {"single", "lists", "indicator"}
        How ``y`` was given: one label per text, label lists or a 0/1 matrix.
    vocab_ : Vocab
    module_ : TextClassifierModel
    history_ : pandas.DataFrame
        One row per epoch of the whole fit: the language-model fine-tuning's, then the
        classifier's (all stages), told apart by ``model`` ("language model" or
        "classifier") and ``stage`` ("frozen" or "unfrozen"); ``epoch`` counts over both.
    lm_history_ : pandas.DataFrame or None
        The language-model fine-tuning's rows alone (``None`` without that stage).
    n_epochs_ : int
        The classifier's epochs actually trained (fewer after early stopping).

    Example
    -------
    >>> texts = ["a good film", "a bad film"] * 20
    >>> clf = TextClassifier(lm_epochs=0, epochs=2, verbose=0, random_state=0)
    >>> clf = clf.fit(texts, ["pos", "neg"] * 20)
    >>> clf.predict(["good"]).shape
    (1,)
    """

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *TextEstimator._fitted_attributes,
        "classes_",
        "multilabel_",
        "encoder_config_",
        "lm_history_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **TextEstimator._parameter_constraints,
        "language_model": [
            InstanceOf(LanguageModel, "a fitted LanguageModel"),
            InstanceOf(FrozenEstimator, "a FrozenEstimator of a fitted LanguageModel"),
            InstanceOf((str, Path), "a path written by save_encoder"),
            None,
        ],
        "crop": [
            Interval(numbers.Integral, SortishBatches.MIN_CROP, None),
            Satisfies(
                lambda c: (
                    isinstance(c, numbers.Real)
                    and not isinstance(c, numbers.Integral)
                    and 0 < c <= 1
                ),
                "a float share in (0, 1]",
            ),
            None,
        ],
        "lm_epochs": [Interval(numbers.Integral, 0, None)],
        "lm_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "lm_batch_size": [Interval(numbers.Integral, 1, None)],
        "max_len": [Interval(numbers.Integral, 1, None), None],
        "lin_sizes": [SequenceOf(Interval(numbers.Integral, 1, None), min_len=0)],
        "freeze_epochs": [Interval(numbers.Integral, 0, None)],
        "lr_ratio": [Interval(numbers.Real, 0, None, closed="neither")],
        "betas": [
            Satisfies(
                lambda b: (
                    len(b) == 2
                    and all(Interval(numbers.Real, 0, 1, closed="left")(v) for v in b)
                ),
                "a pair of numbers in [0, 1)",
            )
        ],
        "threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "adversarial": [Interval(numbers.Real, 0, None)],
        "predict_window": [Interval(numbers.Integral, 1, None), None],
    }

    def __init__(
        self,
        language_model: LanguageModel | str | Path | None = None,
        level: str = "word",
        emb_size: int = 200,
        hidden_size: int = 500,
        n_layers: int = 2,
        lm_epochs: int = 2,
        lm_lr: float = 5e-3,
        lm_batch_size: int = 32,
        bptt: int = 70,
        max_len: int | None = 500,
        crop: float | int | None = 100,
        lin_sizes: tuple[int, ...] = (50,),
        drop_mult: float = 0.5,
        freeze_epochs: int = 1,
        lr_ratio: float = 1.0,
        betas: tuple[float, float] = (0.7, 0.99),
        weight_decay: float = 0.01,
        clip: float | None = 0.25,
        min_freq: int = 2,
        max_vocab: int = 60000,
        threshold: float = 0.5,
        identity_init: bool = False,
        text_col: str | None = None,
        n_jobs: int | None = None,
        backwards: bool = False,
        adversarial: float = 0.05,
        predict_window: int | None = 100,
        *,
        epochs: int = 36,
        lr: float | None = 2e-2,
        schedule: str | Schedule = "one_cycle",
        batch_size: int = 32,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 1,
        warm_start: bool = False,
        amp: bool = False,
        callbacks: list[Callback] | None = None,
    ) -> None:
        super().__init__(
            epochs=epochs,
            lr=lr,
            schedule=schedule,
            batch_size=batch_size,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            random_state=random_state,
            device=device,
            verbose=verbose,
            warm_start=warm_start,
            amp=amp,
            callbacks=callbacks,
        )
        self.language_model = language_model
        self.level = level
        self.emb_size = emb_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.lm_epochs = lm_epochs
        self.lm_lr = lm_lr
        self.lm_batch_size = lm_batch_size
        self.bptt = bptt
        self.max_len = max_len
        self.crop = crop
        self.lin_sizes = lin_sizes
        self.drop_mult = drop_mult
        self.freeze_epochs = freeze_epochs
        self.lr_ratio = lr_ratio
        self.betas = betas
        self.weight_decay = weight_decay
        self.clip = clip
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.threshold = threshold
        self.identity_init = identity_init
        self.text_col = text_col
        self.n_jobs = n_jobs
        self.backwards = backwards
        self.adversarial = adversarial
        self.predict_window = predict_window

    # ---- targets --------------------------------------------------------------------

    def _targets(self, y: Any, n: int, reset: bool) -> torch.Tensor:
        if y is None:
            raise ValueError(f"{type(self).__name__} needs targets y")
        if (
            isinstance(y, (pd.DataFrame, np.ndarray, torch.Tensor))
            and y.ndim == 2
            and y.shape[1] == 1
        ):  # one column: one label per text
            y = target_array(y, n, type(self).__name__)
        fitted = None if reset else (self.classes_, self._label_format())
        kind, classes, targets = encode_targets(
            y, n, fitted, who=type(self).__name__, rows="texts"
        )
        if reset:
            self.multilabel_ = kind != "single"
            self.label_format_ = kind
            self.classes_ = classes
        return targets

    def _label_format(self) -> str:
        # Models pickled before label lists were accepted have no label_format_.
        default = "indicator" if self.multilabel_ else "single"
        return getattr(self, "label_format_", default)

    # ---- NeuralEstimator hooks ------------------------------------------------------

    def _build_module(self) -> TextClassifierModel:
        enc = new_encoder(
            len(self.vocab_), self.encoder_config_, CLAS_DROPS, self.drop_mult
        )
        head = PoolingClassifier(
            self.encoder_config_.emb_size,
            len(self.classes_),
            tuple(self.lin_sizes),
            ps=tuple(
                p * self.drop_mult
                for p in (CLAS_PS[0], *[CLAS_PS[1]] * len(self.lin_sizes))
            ),
        )
        return TextClassifierModel(enc, head)

    def _loss_func(self) -> Any:
        return partial(weighted_cross_entropy, multilabel=self.multilabel_)

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return classifier_splitter(module)

    def _metrics(self) -> dict[str, Any]:
        if self.multilabel_:
            return {"accuracy": partial(label_accuracy, threshold=self.threshold)}
        return {"accuracy": accuracy}

    def _opt_func(self, module: nn.Module) -> Any:
        return partial(
            torch.optim.AdamW, betas=tuple(self.betas), weight_decay=self.weight_decay
        )

    def _learner_callbacks(self) -> list[Callback]:
        cbs: list[Callback] = [GradientClipping(self.clip)] if self.clip else []
        if self.adversarial > 0:
            embedding = "encoder.encoder_dp"  # the word vectors, after word dropout
            cbs.append(AdversarialTraining(embedding, float(self.adversarial)))
        return cbs

    def _schedule(self) -> Schedule:
        if isinstance(self.schedule, str) and self.schedule == "one_cycle":
            return OneCycle(moms=None)  # keep beta1 at betas[0] (ULMFiT's 0.7)
        return get_schedule(self.schedule)

    def _clas_batches(self, docs, y, shuffle: bool, w=None) -> SortishBatches:
        return SortishBatches(
            docs,
            y,
            w,
            batch_size=self.batch_size,
            pad_idx=self.vocab_.stoi_[PAD],
            max_len=self.max_len,
            shuffle=shuffle,
            generator=self._generator(2) if shuffle else None,
            device=self._device(),
            crop=self.crop if shuffle else None,
        )

    # ---- fitting --------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        unlabelled: Any = None,
        sample_weight: Any = None,
    ) -> TextClassifier:
        """Fit on texts ``X`` and targets ``y``.

        ``eval_set=(X_valid, y_valid)`` gives a validation set (otherwise
        ``validation_fraction``); ``unlabelled`` adds texts to the language-model
        fine-tuning only; ``sample_weight`` weighs each text in the classifier's loss
        (not in the language-model stage, which reads token streams).
        """
        return self._fit(
            X, y, eval_set=eval_set, unlabelled=unlabelled, sample_weight=sample_weight
        )

    def lr_find(self, X: Any, y: Any, unlabelled: Any = None, **kwargs: Any) -> Any:
        """The learning-rate sweep that ``lr=None`` runs, on a fresh copy of this
        estimator (this one is left as it was): steps 1-2 run as in ``fit`` (the
        language-model fine-tuning, ``lm_epochs`` of it), then the finder sweeps the
        classifier's first stage (the head alone when there is a language model and
        ``freeze_epochs > 0``, otherwise all layers). Keyword arguments go to
        :func:`deepfit.lr_find`; ``.plot()`` on the result shows the curve."""
        return self._sweep(X, y, kwargs, unlabelled=unlabelled)

    def _fit_data(
        self,
        X: Any,
        y: Any,
        eval_set: Any,
        reset: bool,
        unlabelled: Any = None,
        sample_weight: Any = None,
    ) -> _TextData:
        """Tokens, vocabulary, the classifier's batches, and the language-model
        stage's texts (all the training texts and ``unlabelled``)."""
        texts = as_texts(X, self.text_col)
        if not texts:
            raise ValueError("X holds no texts")
        targets = self._targets(y, len(texts), reset=reset)
        w = check_sample_weight(sample_weight, len(texts))
        weights = None if w is None else torch.as_tensor(w, dtype=torch.float32)
        extra = (
            []
            if unlabelled is None
            else as_texts(unlabelled, self.text_col, "unlabelled")
        )
        eval_texts = eval_y = None
        if eval_set is not None:
            eval_texts = as_texts(eval_set[0], self.text_col, "eval_set X")
            eval_y = self._targets(eval_set[1], len(eval_texts), reset=False)
        source = encoder_source(self.language_model) if reset else None
        if reset:
            self.level_ = source.level if source else self.level
            self.backwards_ = source.backwards if source else bool(self.backwards)
            self.lm_history_ = None
        tok = self._tokenizer(self.level_)
        tokens = tok(texts)
        extra_tokens = tok(extra) if extra else []
        if reset:
            self.vocab_ = Vocab(self.min_freq, self.max_vocab).fit(
                tokens + extra_tokens
            )
            self.encoder_config_ = source.config if source else self._config()
        docs = self._docs(tokens)
        valid_docs = None if eval_texts is None else self._encode(eval_texts)
        lm_docs, lm_valid = docs + self._docs(extra_tokens), valid_docs
        if valid_docs is None:
            strat = None if self.multilabel_ else targets.numpy()
            train_idx, valid_idx = self._validation_split(len(docs), stratify=strat)
            if valid_idx is not None:
                valid_docs, eval_y = [docs[i] for i in valid_idx], targets[valid_idx]
                docs, targets = [docs[i] for i in train_idx], targets[train_idx]
                weights = None if weights is None else weights[train_idx]
        train = self._clas_batches(docs, targets, shuffle=True, w=weights)
        valid = (
            None
            if valid_docs is None
            else self._clas_batches(valid_docs, eval_y, False)
        )
        return _TextData(
            train, valid, lm_docs=lm_docs, lm_valid=lm_valid, source=source
        )

    def _recipe(self, learner: Learner, data: _TextData, history: History) -> Any:
        """Steps 2-3 of ULMFiT: the language model fine-tuned on the task's texts (on
        a fresh fit), its encoder into the classifier, then the engine's ``fine_tune``
        with gradual unfreezing; stage ``k`` at ``lr / 2**k`` for the head, the last
        at ``lr / 10``, each group ``lr_ratio`` times slower than the next."""
        pretrained = data.source is not None or self.lm_epochs > 0
        if data.reset:
            if self._pretrain(learner.model, data):
                return Decided(None, interrupted=True)  # Ctrl-C in the LM stage
        n = learner.n_groups
        cbs = self._fit_callbacks(history, data.valid)
        sched = self._schedule()
        tags = {"model": "classifier"}
        if not data.reset or not pretrained:
            learner.unfreeze()
            lr = self._resolve_lr(learner, data.train)
            tags["stage"] = "unfrozen"  # all layers, as fine_tune's last stage
            learner.fit(data.train, self.epochs, lr, sched, cbs, data.valid, tags=tags)
            return lr
        if self.freeze_epochs > 0 and n > 1:
            learner.freeze_to(n - 1)  # the finder sweeps the first stage: the head
        else:
            learner.unfreeze()
        base = float(self._resolve_lr(learner, data.train))

        def stage_lr(stage: int, n_frozen: int) -> list[float]:
            top = base / 2**stage if n_frozen else base / 10
            return [top / self.lr_ratio ** (n - 1 - i) for i in range(n)]

        learner.fine_tune(
            data.train,
            self.epochs,
            base,
            freeze_epochs=int(self.freeze_epochs),
            gradual=True,
            schedule=sched,
            callbacks=cbs,
            valid=data.valid,
            stage_lr=stage_lr,
            tags=tags,
        )
        return base

    def _history_frame(self, history: History, reset: bool) -> pd.DataFrame:
        """The classifier's epochs after the language-model stage's (on a fresh fit;
        a warm start's rows follow the previous fit's, which hold it already)."""
        frame = super()._history_frame(history, reset)
        lm = self.lm_history_ if reset else None
        if lm is None or not len(lm):
            return frame
        if not len(frame):  # Ctrl-C in the language-model stage
            return lm.copy()
        columns = [*frame.columns, *(c for c in lm.columns if c not in frame)]
        frame = frame.assign(epoch=frame["epoch"] + int(lm["epoch"].max()) + 1)
        return pd.concat([lm, frame], ignore_index=True)[columns]

    def _pretrain(self, module: TextClassifierModel, data: _TextData) -> bool:
        """Steps 1-2: the language model, fine-tuned on the task's texts; its encoder
        weights then go into ``module.encoder``. Returns whether Ctrl-C ended it."""
        state = None
        if data.source is not None:
            state = match_embeddings(
                data.source.state, data.source.itos, self.vocab_.itos_
            )
        interrupted = False
        if self.lm_epochs > 0:
            enc = new_encoder(
                len(self.vocab_), self.encoder_config_, LM_DROPS, self.drop_mult
            )
            if state is not None:
                enc.load_state_dict(state)
            lm_history = History()
            _, interrupted = self._fine_tune_lm(
                LMModel(enc, output_p=LM_OUTPUT_P * self.drop_mult),
                data.lm_docs,
                data.lm_valid,
                epochs=int(self.lm_epochs),
                lr=self.lm_lr,
                batch_size=self.lm_batch_size,
                pretrained=data.source is not None,
                offset=3,
                history=lm_history,
                schedule="one_cycle",
                tags={"model": "language model"},
            )
            self.lm_history_ = lm_history.to_frame()
            state = enc.state_dict()
        if state is not None:
            module.encoder.load_state_dict(state)
        return interrupted

    # ---- prediction -----------------------------------------------------------------

    def _logits(self, docs: list[np.ndarray]) -> torch.Tensor:
        if not docs:
            return torch.zeros((0, len(self.classes_)))
        batches = self._clas_batches(docs, None, shuffle=False)
        out = self._predict_outputs(batches)
        logits = torch.empty_like(out)
        logits[torch.as_tensor(batches.order)] = out  # batches run longest first
        return logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax), or per-label probabilities (sigmoid) for a
        multi-label model; shape ``(n_texts, n_classes)``. With ``predict_window``, the
        mean of the probabilities of each text's windows."""
        check_is_fitted(self)
        docs = self._encode(as_texts(X, self.text_col))
        n, owner = len(docs), None
        if self.predict_window is not None:
            docs, owner = text_windows(docs, self.predict_window, self.max_len)
        # In float64, so rows sum to 1 as scikit-learn's metrics check.
        logits = self._logits(docs).double()
        proba = torch.sigmoid(logits) if self.multilabel_ else torch.softmax(logits, 1)
        proba = proba.numpy()
        if owner is None:
            return proba
        total = np.zeros((n, proba.shape[1]), dtype=np.float64)
        np.add.at(total, owner, proba)
        return total / np.bincount(owner, minlength=n)[:, None]

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class; multi-label: per text the labels whose probability is
        above ``threshold``, as an object array of lists (``y`` given as label lists) or
        a 0/1 indicator matrix (``y`` given as one)."""
        proba = self.predict_proba(X)
        if not self.multilabel_:
            return self.classes_[proba.argmax(1)]
        return labels_from_hits(
            hits(proba, self.threshold), self.classes_, self._label_format()
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (multi-label: the share of texts whose whole label set is right)."""
        from sklearn.metrics import accuracy_score

        if not getattr(self, "multilabel_", False):
            return float(
                accuracy_score(y, self.predict(X), sample_weight=sample_weight)
            )
        truth = self._targets(y, _n_rows(y), reset=False)
        hit = hits(self.predict_proba(X), self.threshold)
        return label_set_accuracy(truth, hit, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        # Label lists or a 0/1 matrix: several labels per text.
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags
