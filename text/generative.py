"""``GenerativeTextClassifier``: a language model per class and Bayes' rule."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepfit import Callback, Decided, FitData, History, Learner
from deepfit.data import check_sample_weight
from deepfit.params import InstanceOf, Interval
from deepfit.schedules import Schedule
from text.awd_lstm import ClassConditionalLM, LMModel
from text.data import SortishBatches, as_texts, class_codes, target_array
from text.encoder import (
    LM_DROPS,
    LM_OUTPUT_P,
    EncoderSource,
    encoder_source,
    match_embeddings,
    new_encoder,
)
from text.language_model import LanguageModel, TextEstimator
from text.tokenizer import PAD, Vocab

__all__ = ["GenerativeTextClassifier", "fit_calibration"]

# Vocabulary logits held at once while scoring (rows x window x vocabulary), 64 MiB.
_SCORE_CELLS = 2**24


def fit_calibration(
    log_likelihoods: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    weights: torch.Tensor | None = None,
) -> tuple[float, torch.Tensor]:
    """The scale and per-class offsets that minimise the cross-entropy of
    ``softmax(scale * log_likelihoods + offset)`` on held-out texts (Platt scaling with
    one temperature; the first class's offset is 0). Both are pulled weakly towards
    their start (a scale of one over the spread of the log-likelihoods, zero offsets),
    so that a calibration set the models separate perfectly does not send them to
    infinity.

    Parameters
    ----------
    log_likelihoods : Tensor ``(n, n_classes)``, nats
    y : Tensor ``(n,)`` of class indices
    n_classes : int
    weights : Tensor ``(n,)``, optional
        Per-text weights of the cross-entropy (a weighted mean), not all zero.
    """
    ll = log_likelihoods.double()
    ll = ll - ll.mean(1, keepdim=True)  # softmax ignores a shift per row
    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if w is not None:
        w = w / w.sum()
    start = -math.log(max(float(ll.std()), 1e-6)) if ll.numel() > 1 else 0.0
    log_scale = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    offsets = torch.zeros(n_classes - 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [log_scale, offsets], max_iter=200, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = log_scale.exp() * ll + torch.cat([offsets.new_zeros(1), offsets])
        if w is None:
            loss = F.cross_entropy(logits, y.long())
        else:
            loss = (F.cross_entropy(logits, y.long(), reduction="none") * w).sum()
        loss = loss + 1e-3 * ((log_scale - start) ** 2 + offsets.pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    offset = torch.cat([offsets.detach().new_zeros(1), offsets.detach()])
    return float(log_scale.detach().exp()), offset.float()


@dataclass
class _ClassTexts(FitData):
    """What the recipe trains on: each class's language-model documents, the
    validation texts, the calibration texts, the starting encoder."""

    source: EncoderSource | None = None
    per_class: list[list[np.ndarray]] | None = None
    valid_docs: list[np.ndarray] | None = None
    valid_codes: np.ndarray | None = None
    cal_docs: list[np.ndarray] | None = None
    cal_codes: np.ndarray | None = None
    fit_codes: np.ndarray | None = None  # the classes of the language models' texts
    # sample_weight's shares, aligned with per_class, cal_docs and fit_codes (or None)
    per_class_weights: list[np.ndarray] | None = None
    cal_weights: np.ndarray | None = None
    fit_weights: np.ndarray | None = None


class _LogLikelihoods(nn.Module):
    """``module.log_likelihoods`` as a forward pass (for the engine's prediction loop)."""

    def __init__(self, module: ClassConditionalLM) -> None:
        super().__init__()
        self.module = module

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.module.log_likelihoods(tokens, lengths)


class GenerativeTextClassifier(ClassifierMixin, TextEstimator):
    """Text classification with one fine-tuned language model per class.

    ULMFiT's first two steps (Howard & Ruder 2018) run once per class: the pretrained
    language model (a fitted :class:`LanguageModel`, an encoder file, or none) is
    fine-tuned on that class's training texts alone. A text then goes to the class whose
    model finds it most likely, by Bayes' rule (Yogatama et al. 2017, "Generative and
    discriminative text classification with recurrent neural networks", found such
    generative classifiers ahead of discriminative ones when labelled data are few):
    ``p(class | text) = softmax(scale * log p(text | class) + offset)``. The scale and
    the per-class offsets are fitted on a stratified hold-out of the training texts that
    the language models never saw (``calibration_fraction``): they absorb the class
    priors and the models' unequal fit (a model trained on more, or more predictable,
    text gives every text a higher likelihood).

    No classifier head is trained, so there is nothing to unfreeze: what each class's
    model learns about the words and phrases of its texts is the evidence. Fitting costs
    one language-model fine-tuning per class, predicting one pass of every class's model
    over each text. Where the pooled states of the language model carry little of the
    label (a language model pretrained on little text), this reads the label far better
    than :class:`TextClassifier`'s head; it takes one label per text (multi-label
    targets: use :class:`TextClassifier`).

    Parameters
    ----------
    language_model : LanguageModel, FrozenEstimator, str, Path or None, default=None
        A fitted LanguageModel (in ``sklearn.frozen.FrozenEstimator`` for cross-validation
        and grid search, whose ``clone`` drops a bare one's state) or a path from
        ``save_encoder``; ``None`` trains each
        class's model from random weights (then ``emb_size``, ``hidden_size``,
        ``n_layers`` and ``level`` set it).
    level : {"word", "char"}, default="word"
        Ignored when a language model is given (its level is used).
    emb_size, hidden_size, n_layers : int, default=200, 500, 2
    calibration_fraction : float, default=0.2
        Share of each class's training texts held out from its language model to fit
        the scale and offsets (at least one text per class). ``0``: no hold-out; the
        scale is 1 and the offsets are the log class frequencies (the plain Bayes rule).
    max_len : int or None, default=None
        Texts longer than this are scored on ``xxbos`` and their last ``max_len - 1``
        tokens; ``None`` scores whole texts.
    bptt : int, default=70
    drop_mult : float, default=0.3
        Scales the language models' dropouts (see :class:`LanguageModel`).
    min_freq, max_vocab : int, default=2, 60000
        The vocabulary, learned from all the training texts, is shared by the classes.
    clip : float or None, default=0.25
    weight_decay : float, default=0.01
    identity_init : bool, default=False
    text_col : str or None, default=None
    n_jobs : int or None, default=None
    backwards : bool, default=False
        Read texts from the end to the start (ULMFiT's backward model). Ignored when a
        language model is given (its direction is used).
    epochs : int, default=2
        Fine-tuning epochs of each class's language model; with a pretrained model the
        first trains only the embedding and decoder, at twice ``lr``.
    lr : float or None, default=1e-2
        ``None``: the finder's suggestion, from a sweep on the first class's model.
    schedule : {"one_cycle", "sgdr", "constant"} or Schedule, default="one_cycle"
        One per stage.
    batch_size : int, default=32
        Rows of each language model's stream (fewer for a class with little text).
    validation_fraction, early_stopping, random_state, device, verbose, warm_start, amp, \
callbacks
        See :class:`deepfit.NeuralEstimator`. Validation texts (``eval_set`` or
        ``validation_fraction``) give each class's model a validation loss on that
        class's texts (``history_["valid_loss"]``, nats per token), which early stopping
        watches. With ``warm_start=True`` a second ``fit`` trains every class's model for
        ``epochs`` more, all layers, then calibrates again.

    Attributes
    ----------
    classes_ : ndarray
    vocab_ : Vocab
    level_ : str
    backwards_ : bool
    module_ : ClassConditionalLM
        ``module_.lms[k]`` is the language model of ``classes_[k]``; ``module_.scale``
        and ``module_.offset`` the calibration.
    history_ : pandas.DataFrame
        One row per epoch of each class's model, with a ``class`` column.
    lr_ : float
    n_calibration_ : int
        Texts the calibration was fitted on.
    n_train_tokens_ : int
        Tokens the class models were fine-tuned on (one epoch, all classes).

    Example
    -------
    >>> texts = ["a good film", "a great film", "a bad film", "a dull film"] * 10
    >>> labels = ["pos", "pos", "neg", "neg"] * 10
    >>> clf = GenerativeTextClassifier(epochs=2, min_freq=1, verbose=0, random_state=0)
    >>> clf = clf.fit(texts, labels)
    >>> clf.predict_proba(["a good film"]).shape
    (1, 2)
    """

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *TextEstimator._fitted_attributes,
        "classes_",
        "encoder_config_",
        "n_calibration_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **TextEstimator._parameter_constraints,
        "language_model": [
            InstanceOf(LanguageModel, "a fitted LanguageModel"),
            InstanceOf(FrozenEstimator, "a FrozenEstimator of a fitted LanguageModel"),
            InstanceOf((str, Path), "a path written by save_encoder"),
            None,
        ],
        "calibration_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_len": [Interval(numbers.Integral, 2, None), None],
    }

    def __init__(
        self,
        language_model: LanguageModel | str | Path | None = None,
        level: str = "word",
        emb_size: int = 200,
        hidden_size: int = 500,
        n_layers: int = 2,
        calibration_fraction: float = 0.2,
        max_len: int | None = None,
        bptt: int = 70,
        drop_mult: float = 0.3,
        min_freq: int = 2,
        max_vocab: int = 60000,
        clip: float | None = 0.25,
        weight_decay: float = 0.01,
        identity_init: bool = False,
        text_col: str | None = None,
        n_jobs: int | None = None,
        backwards: bool = False,
        *,
        epochs: int = 2,
        lr: float | None = 1e-2,
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
        self.calibration_fraction = calibration_fraction
        self.max_len = max_len
        self.bptt = bptt
        self.drop_mult = drop_mult
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.clip = clip
        self.weight_decay = weight_decay
        self.identity_init = identity_init
        self.text_col = text_col
        self.n_jobs = n_jobs
        self.backwards = backwards

    def _targets(self, y: Any, n: int, reset: bool) -> torch.Tensor:
        arr = target_array(y, n, type(self).__name__)
        if arr.ndim == 2:
            raise ValueError(
                f"y has shape {arr.shape}: GenerativeTextClassifier takes one class per "
                "text (for multi-label targets use TextClassifier)"
            )
        self.classes_, codes = class_codes(arr, None if reset else self.classes_)
        return codes

    def _calibration_split(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices for the language models and for the calibration: each class gives
        ``calibration_fraction`` of its texts (at least one) to the calibration."""
        frac = float(self.calibration_fraction)
        rng = np.random.default_rng(self._seed)
        fit, cal = [], []
        for k, name in enumerate(self.classes_.tolist()):
            idx = rng.permutation(np.flatnonzero(codes == k))
            if frac > 0 and len(idx) < 2:
                raise ValueError(
                    f"class {name!r} has {len(idx)} training text: calibration needs at "
                    "least 2 per class (or set calibration_fraction=0)"
                )
            n_cal = max(1, round(frac * len(idx))) if frac > 0 else 0
            n_cal = min(n_cal, len(idx) - 1)
            cal.append(idx[:n_cal])
            fit.append(idx[n_cal:])
        return np.sort(np.concatenate(fit)), np.sort(np.concatenate(cal))

    # ---- fitting --------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
    ) -> GenerativeTextClassifier:
        """Fit on texts ``X`` and one class per text ``y``; ``eval_set=(X_valid,
        y_valid)`` gives validation texts (otherwise ``validation_fraction``).

        ``sample_weight`` weighs each text: its tokens in its class's language-model
        loss, and its term in the calibration (or, with ``calibration_fraction=0``, in
        the class frequencies). A text of weight 0 adds nothing to either, though its
        words still join the shared vocabulary and it still passes through its class's
        token stream (the model reads it, unweighted validation texts likewise).
        """
        return self._fit(X, y, eval_set=eval_set, sample_weight=sample_weight)

    def lr_find(self, X: Any, y: Any, **kwargs: Any) -> Any:
        """The learning-rate sweep that ``lr=None`` runs, on a fresh copy of this
        estimator (this one is left as it was): the first class's language model on its
        fine-tuning stream, only the embedding and decoder trainable when it starts
        from a pretrained model. Keyword arguments go to :func:`deepfit.lr_find`;
        ``.plot()`` on the result shows the curve."""
        return self._sweep(X, y, kwargs)

    def _fit_data(
        self,
        X: Any,
        y: Any,
        eval_set: Any,
        reset: bool,
        sample_weight: Any = None,
    ) -> _ClassTexts:
        """Tokens, vocabulary, the validation and calibration splits."""
        texts = as_texts(X, self.text_col)
        if not texts:
            raise ValueError("X holds no texts")
        codes = self._targets(y, len(texts), reset=reset).numpy()
        w = check_sample_weight(sample_weight, len(texts))
        eval_texts = eval_codes = None
        if eval_set is not None:
            eval_texts = as_texts(eval_set[0], self.text_col, "eval_set X")
            eval_codes = self._targets(eval_set[1], len(eval_texts), False).numpy()
        source = encoder_source(self.language_model) if reset else None
        if reset:
            self.level_ = source.level if source else self.level
            self.backwards_ = source.backwards if source else bool(self.backwards)
        tokens = self._tokenizer(self.level_)(texts)
        if reset:
            self.vocab_ = Vocab(self.min_freq, self.max_vocab).fit(tokens)
            self.encoder_config_ = source.config if source else self._config()
        docs = self._docs(tokens)
        valid_docs = None if eval_texts is None else self._encode(eval_texts)
        if valid_docs is None:
            train_idx, valid_idx = self._validation_split(len(docs), codes)
            if valid_idx is not None:
                valid_docs, eval_codes = [docs[i] for i in valid_idx], codes[valid_idx]
                docs, codes = [docs[i] for i in train_idx], codes[train_idx]
                w = None if w is None else w[train_idx]
        fit_idx, cal_idx = self._calibration_split(codes)
        per_class_idx = [
            fit_idx[codes[fit_idx] == k] for k in range(len(self.classes_))
        ]
        per_class = [[docs[i] for i in idx] for idx in per_class_idx]
        for name, idx in zip(self.classes_.tolist(), per_class_idx, strict=True):
            n = sum(len(docs[i]) for i in idx)
            if n < 2:
                raise ValueError(
                    f"class {name!r} has {n} token(s) to train its language model "
                    "on; it needs at least 2"
                )
            if w is not None and not (w[idx] * [len(docs[i]) for i in idx]).any():
                raise ValueError(
                    f"class {name!r} has no text of positive sample_weight to train "
                    f"its language model on (of {len(idx)}, after the validation and "
                    "calibration hold-outs)"
                )
        self.n_train_tokens_ = sum(len(d) for c in per_class for d in c)
        return _ClassTexts(
            train=None,
            source=source,
            per_class=per_class,
            valid_docs=valid_docs,
            valid_codes=eval_codes,
            cal_docs=[docs[i] for i in cal_idx],
            cal_codes=codes[cal_idx],
            fit_codes=codes[fit_idx],
            per_class_weights=None if w is None else [w[i] for i in per_class_idx],
            cal_weights=None if w is None else w[cal_idx],
            fit_weights=None if w is None else w[fit_idx],
        )

    def _build_module(self) -> ClassConditionalLM:
        """One language model per class (random weights; the recipe loads the
        starting encoder into each)."""
        lms = []
        for _ in self.classes_:
            encoder = new_encoder(
                len(self.vocab_), self.encoder_config_, LM_DROPS, self.drop_mult
            )
            lms.append(LMModel(encoder, output_p=LM_OUTPUT_P * self.drop_mult))
        cells = self.batch_size * len(self.vocab_)
        return ClassConditionalLM(lms, window=max(16, min(256, _SCORE_CELLS // cells)))

    def _loss_func(self) -> Any:
        return None  # each class's language model trains with its own learner

    def _recipe(self, learner: Learner, data: _ClassTexts, history: History) -> Any:
        """Each class's language model fine-tuned on that class's texts (ULMFiT's step
        2 through the engine's ``fine_tune``), then the calibration. After a Ctrl-C the
        classes not reached keep their starting weights."""
        lms = list(learner.model.lms)
        pretrained = data.reset and data.source is not None
        if pretrained:
            state = match_embeddings(
                data.source.state, data.source.itos, self.vocab_.itos_
            )
            for lm in lms:
                lm.encoder.load_state_dict(state)
        lr = None  # the first class resolves it (lr, or the finder on its model)
        for k, name in enumerate(self.classes_):
            class_valid = None
            if data.valid_docs is not None:
                class_valid = [
                    d
                    for d, c in zip(data.valid_docs, data.valid_codes, strict=True)
                    if c == k
                ]
            lr, interrupted = self._fine_tune_lm(
                lms[k],
                data.per_class[k],
                class_valid or None,
                epochs=int(self.epochs),
                lr=lr,
                batch_size=self.batch_size,
                pretrained=pretrained,
                offset=10 + k,
                history=history,
                schedule=self.schedule,
                tags={"class": name},
                weights=None
                if data.per_class_weights is None
                else data.per_class_weights[k],
            )
            if interrupted:
                break
        self._calibrate(data)
        return Decided(lr, interrupted)

    def _calibrate(self, data: _ClassTexts) -> None:
        """The scale and offsets from the held-out texts; without any (or with
        ``sample_weight`` 0 on all of them), the plain Bayes rule (scale 1, log class
        frequencies of the language models' texts, weighted)."""
        module = self.module_
        cal_docs, cal_w = data.cal_docs, data.cal_weights
        if cal_w is not None and not cal_w.any():
            cal_docs = []
        self.n_calibration_ = len(cal_docs)
        if cal_docs:
            ll = self._score(cal_docs, calibrated=False)
            scale, offset = fit_calibration(
                ll,
                torch.as_tensor(data.cal_codes),
                len(self.classes_),
                None if cal_w is None else torch.as_tensor(cal_w),
            )
        else:
            counts = np.bincount(
                data.fit_codes, data.fit_weights, minlength=len(self.classes_)
            )
            scale, offset = 1.0, torch.log(torch.as_tensor(counts / counts.sum()))
        module.scale.fill_(scale)
        module.offset.copy_(offset)

    # ---- prediction -----------------------------------------------------------------

    def _score(self, docs: list[np.ndarray], calibrated: bool) -> torch.Tensor:
        """Calibrated logits, or the raw log-likelihoods, ``(len(docs), n_classes)``,
        in the order of ``docs``."""
        if not docs:
            return torch.zeros((0, len(self.classes_)))
        batches = SortishBatches(
            docs,
            batch_size=self.batch_size,
            pad_idx=self.vocab_.stoi_[PAD],
            max_len=self.max_len,
            device=self._device(),
        )
        module = self.module_ if calibrated else _LogLikelihoods(self.module_)
        out = self._predict_outputs(batches, module)
        result = torch.empty_like(out)
        result[torch.as_tensor(batches.order)] = out  # batches run longest first
        return result

    def _texts_docs(self, X: Any) -> list[np.ndarray]:
        check_is_fitted(self)
        return self._encode(as_texts(X, self.text_col))

    def log_likelihoods(self, X: Any) -> np.ndarray:
        """``log p(text | class)`` of each text under each class's language model, in
        nats, ``(n_texts, n_classes)`` (before the calibration)."""
        return self._score(self._texts_docs(X), calibrated=False).numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_texts, n_classes)``: the softmax of the calibrated
        log-likelihoods."""
        logits = self._score(self._texts_docs(X), calibrated=True)
        return torch.softmax(logits.double(), 1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each text."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
