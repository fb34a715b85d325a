"""The scikit-learn face of the text stack: :class:`LanguageModel` and the ULMFiT
:class:`TextClassifier` (Howard & Ruder 2018)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepfit import (
    AdversarialTraining,
    Callback,
    GradientClipping,
    Learner,
    LRFinderResult,
    NeuralEstimator,
    OneCycle,
)
from deepfit.schedules import Schedule, get_schedule
from text.awd_lstm import (
    AWD_LSTM,
    LMModel,
    PoolingClassifier,
    TextClassifierModel,
    classifier_splitter,
    lm_splitter,
)
from text.data import LMBatches, SortishBatches, check_crop, text_windows
from text.tokenizer import PAD, UNK, Tokenizer, Vocab, detokenize

__all__ = ["LMLoss", "LanguageModel", "ResetState", "TextClassifier"]

_FORMAT = "deepfit.text.encoder/1"
# Dropouts of the language model and of the classifier's encoder (fastai's AWD-LSTM
# configs); ``drop_mult`` scales them all.
_LM_DROPS = {"input_p": 0.25, "hidden_p": 0.15, "embed_p": 0.02, "weight_p": 0.2}
_LM_OUTPUT_P = 0.1
_CLAS_DROPS = {"input_p": 0.4, "hidden_p": 0.3, "embed_p": 0.05, "weight_p": 0.5}
_CLAS_PS = (0.4, 0.1)


# ---- input checks ------------------------------------------------------------------


def _as_texts(X: Any, text_col: str | None, name: str = "X") -> list[str]:
    """A list of str from a list, array, Series or DataFrame column; a clear error for
    anything else (None/NaN entries are named, not silently turned into text)."""
    if isinstance(X, str):
        raise TypeError(f"{name} is a single string; pass a list or Series of texts")
    if isinstance(X, pd.DataFrame):
        if text_col is not None:
            if text_col not in X.columns:
                raise KeyError(f"text_col {text_col!r} is not a column of {name}")
            X = X[text_col]
        elif X.shape[1] == 1:
            X = X.iloc[:, 0]
        else:
            raise ValueError(
                f"{name} has {X.shape[1]} columns {list(X.columns)[:5]}; set text_col "
                "to name the one holding the texts"
            )
    if isinstance(X, pd.Series):
        col = X.name if X.name is not None else name
        if pd.api.types.is_numeric_dtype(X.dtype) or pd.api.types.is_bool_dtype(
            X.dtype
        ):
            raise TypeError(f"column {col!r} holds {X.dtype} values, not text")
        values = X.tolist()
    elif isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one text per row), got shape {X.shape}"
            )
        values = X.tolist()
    elif isinstance(X, Sequence) or hasattr(X, "__iter__"):
        values = list(X)
    else:
        raise TypeError(f"{name} must be a list, array, Series or DataFrame of texts")
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        kinds = sorted({type(values[i]).__name__ for i in bad})
        raise ValueError(
            f"{name} has {len(bad)} entries that are not text ({', '.join(kinds)}) at "
            f"positions {bad[:10]}{' ...' if len(bad) > 10 else ''}; drop or fill them "
            "(an empty string is accepted)"
        )
    return values


def _check_positive_int(est: Any, *names: str) -> None:
    for n in names:
        v = getattr(est, n)
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{n} must be a positive integer, got {v!r}")


def _check_model_params(est: Any) -> None:
    if est.level not in ("word", "char"):
        raise ValueError(f"level must be 'word' or 'char', got {est.level!r}")
    _check_positive_int(est, "emb_size", "hidden_size", "n_layers", "bptt")
    if not (isinstance(est.drop_mult, numbers.Real) and est.drop_mult >= 0):
        raise ValueError(f"drop_mult must be >= 0, got {est.drop_mult!r}")


# ---- pieces shared by both estimators ----------------------------------------------


class LMLoss:
    """Cross-entropy plus AR and TAR (AWD-LSTM sec. 4.6): ``alpha`` times the mean square
    of the last layer's dropped outputs and ``beta`` times the mean square of the step to
    step change of its raw outputs. In eval mode the model returns logits alone and the
    loss is the plain cross-entropy (nats per token)."""

    def __init__(self, alpha: float = 2.0, beta: float = 1.0) -> None:
        self.alpha, self.beta = alpha, beta

    def __call__(self, pred: Any, target: torch.Tensor) -> torch.Tensor:
        if isinstance(pred, (tuple, list)):
            logits, raw, dropped = pred
        else:
            logits, raw, dropped = pred, None, None
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target)
        if raw is not None:
            if self.alpha:
                loss = loss + self.alpha * dropped.float().pow(2).mean()
            if self.beta and raw.size(1) > 1:
                loss = (
                    loss + self.beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
                )
        return loss


class ResetState(Callback):
    """Forget the language model's carried hidden state when an epoch starts and
    around validation (the stream starts again there)."""

    order = -20

    def before_epoch(self, learn: Learner) -> None:
        learn.model.reset()

    def before_validate(self, learn: Learner) -> None:
        learn.model.reset()

    def after_validate(self, learn: Learner) -> None:
        learn.model.reset()


def _encoder_config(est: Any) -> dict[str, Any]:
    return {
        "emb_size": est.emb_size,
        "hidden_size": est.hidden_size,
        "n_layers": est.n_layers,
        "identity_init": est.identity_init,
    }


def _new_encoder(
    vocab_size: int, config: dict[str, Any], drops: dict[str, float], mult: float
) -> AWD_LSTM:
    return AWD_LSTM(
        vocab_size,
        pad_idx=1,
        **config,
        **{k: v * mult for k, v in drops.items()},
    )


def _save_encoder(
    path: str | Path,
    encoder: AWD_LSTM,
    itos: list[str],
    level: str,
    backwards: bool = False,
) -> None:
    config = {
        "emb_size": encoder.emb_size,
        "hidden_size": encoder.hidden_size,
        "n_layers": encoder.n_layers,
        "identity_init": encoder.identity_init,
    }
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    payload = {
        "format": _FORMAT,
        "itos": list(itos),
        "level": level,
        "backwards": bool(backwards),
        "config": config,
        "state": state,
    }
    torch.save(payload, Path(path))


def _read_encoder(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no encoder file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated file, another format: say which file
        raise ValueError(
            f"{path} is not an encoder written by save_encoder ({err.__class__.__name__})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not an encoder written by save_encoder")
    n_emb = payload["state"]["encoder_dp.emb.weight"].shape[0]
    if n_emb != len(payload["itos"]):
        raise ValueError(
            f"{path}: the embedding has {n_emb} rows but the vocabulary {len(payload['itos'])}"
            " tokens"
        )
    payload.setdefault("backwards", False)  # files from before the option read forwards
    return payload


def _check_same_vocab(file_itos: list[str], itos: list[str], path: Any) -> None:
    if list(file_itos) == list(itos):
        return
    if len(file_itos) != len(itos):
        detail = f"{len(file_itos)} tokens in the file, {len(itos)} here"
    else:
        i = next(
            i for i, (a, b) in enumerate(zip(file_itos, itos, strict=True)) if a != b
        )
        detail = f"first difference at id {i}: {file_itos[i]!r} in the file, {itos[i]!r} here"
    raise ValueError(
        f"vocabulary mismatch loading the encoder from {path}: {detail}. An encoder can "
        "only be loaded into a model with the same vocabulary (to start a new model from "
        "it, pass the file as TextClassifier(language_model=path))"
    )


def _direction(backwards: bool) -> str:
    return "backwards" if backwards else "forwards"


def _load_into(
    encoder: AWD_LSTM,
    payload: dict[str, Any],
    itos: list[str],
    path: Any,
    backwards: bool,
):
    _check_same_vocab(payload["itos"], itos, path)
    if payload["backwards"] != backwards:
        raise ValueError(
            f"the encoder in {path} reads texts {_direction(payload['backwards'])}, "
            f"this model {_direction(backwards)}"
        )
    config = {
        "emb_size": encoder.emb_size,
        "hidden_size": encoder.hidden_size,
        "n_layers": encoder.n_layers,
    }
    theirs = {k: payload["config"][k] for k in config}
    if theirs != config:
        raise ValueError(f"encoder sizes differ: {theirs} in {path}, {config} here")
    encoder.load_state_dict(payload["state"])


def _match_embeddings(
    state: dict[str, torch.Tensor], old_itos: list[str], new_itos: list[str]
) -> dict[str, torch.Tensor]:
    """The encoder state re-indexed for a new vocabulary: tokens known to the old one keep
    their vectors, new tokens start at the mean vector (ULMFiT / fastai)."""
    old = state["encoder_dp.emb.weight"]
    mean = old.mean(0)
    new = mean.repeat(len(new_itos), 1)
    stoi = {s: i for i, s in enumerate(old_itos)}
    hits = [(i, stoi[s]) for i, s in enumerate(new_itos) if s in stoi]
    if hits:
        dst, src = (torch.tensor(v) for v in zip(*hits, strict=True))
        new[dst] = old[src]
    out = dict(state)
    out["encoder_dp.emb.weight"] = new
    return out


def _lm_learner(
    module: LMModel, device: torch.device, alpha: float, beta: float, wd: float
):
    return Learner(
        module,
        LMLoss(alpha, beta),
        splitter=lm_splitter,
        opt_func=partial(torch.optim.AdamW, betas=(0.9, 0.99), weight_decay=wd),
        device=device,
    )


def _target_array(y: Any, n: int, who: str) -> np.ndarray:
    """``y`` as an array of ``n`` rows (a one-column 2-D ``y`` made 1-D)."""
    if y is None:
        raise ValueError(f"{who} needs targets y")
    arr = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    if len(arr) != n:
        raise ValueError(f"X has {n} texts but y has {len(arr)} rows")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def _class_codes(est: Any, arr: np.ndarray, reset: bool) -> torch.Tensor:
    """The class index of each label of a 1-D ``arr``; on ``reset`` the classes are
    learned into ``est.classes_``, otherwise labels must be among them."""
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D or 2-D (multi-label), got shape {arr.shape}")
    if pd.isna(arr).any():
        raise ValueError(
            f"y has missing values at rows {np.flatnonzero(pd.isna(arr))[:10].tolist()}"
        )
    if reset:
        est.classes_ = np.unique(arr)
        if len(est.classes_) < 2:
            raise ValueError(
                f"y has a single class {est.classes_[0]!r}; need at least 2"
            )
    codes = np.searchsorted(est.classes_, arr)
    codes = np.clip(codes, 0, len(est.classes_) - 1)
    unseen = est.classes_[codes] != arr
    if unseen.any():
        raise ValueError(
            f"y has classes unseen in the first fit: {np.unique(arr[unseen])[:5]}"
        )
    return torch.as_tensor(codes, dtype=torch.long)


def _check_language_model(lm: Any) -> None:
    if lm is not None and not isinstance(lm, (LanguageModel, str, Path)):
        raise TypeError(
            "language_model must be a fitted LanguageModel, a path written by "
            f"save_encoder, or None; got {type(lm).__name__}"
        )
    if isinstance(lm, LanguageModel) and not hasattr(lm, "module_"):
        raise ValueError(
            "language_model is an unfitted LanguageModel (clone() and grid search "
            "drop a fitted one's state): fit it first, or pass a path written by "
            "LanguageModel.save_encoder"
        )


def _encoder_source(
    lm: Any, level: str, backwards: bool
) -> tuple[dict[str, Any] | None, str, bool]:
    """The starting encoder (state, itos, config) of ``language_model``, its level and
    its direction (``level`` and ``backwards`` when there is no language model)."""
    if lm is None:
        return None, level, backwards
    if isinstance(lm, LanguageModel):
        enc = lm.module_.encoder
        state = {k: v.detach().cpu().clone() for k, v in enc.state_dict().items()}
        source = {
            "state": state,
            "itos": list(lm.vocab_.itos_),
            "config": _encoder_config(lm),
        }
        return source, lm.level_, lm.backwards_
    payload = _read_encoder(lm)
    return payload, payload["level"], payload["backwards"]


def _lm_stream_learner(
    est: Any,
    lm: LMModel,
    docs: list[np.ndarray],
    batch_size: int,
    pretrained: bool,
    offset: int,
) -> tuple[Learner, LMBatches]:
    """The learner and shuffled BPTT stream of ULMFiT's step 2 for ``lm`` on ``docs``;
    with ``pretrained`` only the embedding and decoder are trainable (the first
    stage)."""
    device = est._device()
    lm.to(device)
    n = sum(len(d) for d in docs)
    bs = max(1, min(batch_size, (n - 1) // (2 * est.bptt)))
    train = LMBatches(
        docs,
        bs,
        est.bptt,
        random_bptt=True,
        shuffle=True,
        generator=est._generator(offset),
        device=device,
    )
    learner = _lm_learner(lm, device, 2.0, 1.0, est.weight_decay)
    if pretrained:
        learner.freeze()
    return learner, train


def _fine_tune_lm(
    est: Any,
    lm: LMModel,
    docs: list[np.ndarray],
    valid_docs: list[np.ndarray] | None,
    *,
    epochs: int,
    lr: float | None,
    batch_size: int,
    pretrained: bool,
    offset: int,
    schedule: str | Schedule = "one_cycle",
) -> float:
    """ULMFiT's step 2 on ``docs`` for ``est`` (a text estimator): the language model
    ``lm`` trained for ``epochs`` (one ``schedule`` per stage), the first epoch with
    only the embedding and decoder trainable, at twice the rate, when ``pretrained`` (new
    words start at the mean vector: let them adapt before the LSTMs move). ``lr=None``
    runs the finder first (its sweep lands in ``est.lr_find_``). Updates
    ``est.history_``; returns the rate used."""
    learner, train = _lm_stream_learner(est, lm, docs, batch_size, pretrained, offset)
    valid = None
    if valid_docs:
        nv = sum(len(d) for d in valid_docs)
        valid = LMBatches(
            valid_docs,
            max(1, min(train.batch_size, nv - 1)),
            est.bptt,
            device=est._device(),
        )
    cbs: list[Callback] = [ResetState()]
    if est.clip:
        cbs.append(GradientClipping(est.clip))
    if lr is None:
        est.lr_find_ = learner.lr_find(train)
        lr = est.lr_find_.suggestion
    if pretrained:
        est._train(
            learner,
            train,
            valid,
            lr * 2,
            epochs=1,
            schedule=schedule,
            extra_callbacks=cbs,
        )
        learner.unfreeze()
        epochs -= 1
    if epochs > 0 and not learner.interrupted:
        est._train(
            learner,
            train,
            valid,
            lr,
            epochs=epochs,
            schedule=schedule,
            extra_callbacks=cbs,
        )
    return lr


class _TextMixin:
    """Tokenising and numericalising shared by the text estimators."""

    def _tokenizer(self, level: str) -> Tokenizer:
        return Tokenizer(level=level, n_jobs=self.n_jobs)

    def _docs(self, tokens: list[list[str]]) -> list[np.ndarray]:
        """Token ids of each text; a backwards model reads each text after its first
        token (``xxbos``) from the end to the start (ULMFiT's backward model). Keeping
        ``xxbos`` first leaves padding, truncation and cropping as they are."""
        docs = [self.vocab_.encode(t) for t in tokens]
        if self.backwards_:
            docs = [np.concatenate([d[:1], d[:0:-1]]) for d in docs]
        return docs

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        return self._docs(self._tokenizer(self.level_)(texts))


# ---- language model ----------------------------------------------------------------


class LanguageModel(_TextMixin, NeuralEstimator):
    """An AWD-LSTM language model fitted on raw texts (Merity et al. 2017).

    The texts are tokenized (words with fastai's markers, or characters), a vocabulary is
    learned, the documents are concatenated into a stream read in BPTT windows of randomly
    varied length with the hidden state carried across windows, and the model is trained
    with AR/TAR, gradient clipping and the one-cycle schedule.

    Parameters
    ----------
    level : {"word", "char"}, default="word"
    emb_size, hidden_size, n_layers : int, default=200, 500, 2
        Sizes: the paper's 400/1150/3 are for GPUs; these train at a useful speed on a CPU.
    bptt : int, default=70
        Mean length of a training window.
    drop_mult : float, default=1.0
        Scales every dropout (fastai's LM configuration: input 0.25, hidden 0.15,
        embedding 0.02, weight 0.2, output 0.1).
    alpha, beta : float, default=2.0, 1.0
        AR and TAR coefficients.
    identity_init : bool, default=False
        Start the hidden-to-hidden weights as identity blocks (IRNN).
    min_freq, max_vocab : int, default=2, 60000
    clip : float or None, default=0.25
        Gradient-norm clipping.
    weight_decay : float, default=0.01
    text_col : str or None, default=None
        Column of the texts when ``X`` is a DataFrame with several columns.
    n_jobs : int or None, default=None
        Tokenizer worker processes (see :class:`text.Tokenizer`).
    backwards : bool, default=False
        Read every text from its end to its start (after ``xxbos``): the backward
        language model of ULMFiT, whose classifier is averaged with the forward one's.
    epochs, lr, schedule, batch_size, validation_fraction, early_stopping, random_state, \
device, verbose, warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`. ``batch_size`` is the number of parallel
        rows of the stream. With one document (or fewer than 20) a validation fraction
        holds out the end of the stream.

    Attributes
    ----------
    vocab_ : Vocab
    level_ : str
    backwards_ : bool
    module_ : LMModel
    history_ : pandas.DataFrame
    n_train_tokens_ : int

    Example
    -------
    >>> lm = LanguageModel(epochs=1, random_state=0, verbose=0)
    >>> lm = lm.fit(["The cat sat on the mat."] * 50)
    >>> text = lm.generate("The cat", n_words=5, random_state=0)
    """

    def __init__(
        self,
        level: str = "word",
        emb_size: int = 200,
        hidden_size: int = 500,
        n_layers: int = 2,
        bptt: int = 70,
        drop_mult: float = 1.0,
        alpha: float = 2.0,
        beta: float = 1.0,
        identity_init: bool = False,
        min_freq: int = 2,
        max_vocab: int = 60000,
        clip: float | None = 0.25,
        weight_decay: float = 0.01,
        text_col: str | None = None,
        n_jobs: int | None = None,
        backwards: bool = False,
        *,
        epochs: int = 5,
        lr: float | None = 5e-3,
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
        self.level = level
        self.emb_size = emb_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.bptt = bptt
        self.drop_mult = drop_mult
        self.alpha = alpha
        self.beta = beta
        self.identity_init = identity_init
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.clip = clip
        self.weight_decay = weight_decay
        self.text_col = text_col
        self.n_jobs = n_jobs
        self.backwards = backwards

    # ---- NeuralEstimator hooks ------------------------------------------------------

    def _fit_data(self, X, y, eval_set, reset, **kwargs):
        texts = _as_texts(X, self.text_col)
        if not texts:
            raise ValueError("X holds no texts")
        if reset:
            self.level_, self.backwards_ = self.level, bool(self.backwards)
        tokens = self._tokenizer(self.level_)(texts)
        if reset:
            self.vocab_ = Vocab(self.min_freq, self.max_vocab).fit(tokens)
        docs = self._docs(tokens)
        valid_docs = None
        if eval_set is not None:
            ev = eval_set[0] if isinstance(eval_set, tuple) else eval_set
            valid_docs = self._encode(_as_texts(ev, self.text_col, "eval_set"))
        elif len(docs) >= 20:
            train_idx, valid_idx = self._validation_split(len(docs))
            if valid_idx is not None:
                valid_docs = [docs[i] for i in valid_idx]
                docs = [docs[i] for i in train_idx]
        else:
            frac = self.validation_fraction or (0.1 if self.early_stopping else 0.0)
            if frac:
                stream = np.concatenate(docs)
                cut = round(len(stream) * (1 - frac))
                docs, valid_docs = [stream[:cut]], [stream[cut:]]
        n_train = sum(len(d) for d in docs)
        if n_train < 2 * self.batch_size + 1:
            raise ValueError(
                f"the training texts hold {n_train} tokens: too few for "
                f"batch_size={self.batch_size} (need at least {2 * self.batch_size + 1})"
            )
        self.n_train_tokens_ = n_train
        device = self._device()
        train = LMBatches(
            docs,
            self.batch_size,
            self.bptt,
            random_bptt=True,
            shuffle=True,
            generator=self._generator(),
            device=device,
        )
        valid = None
        if valid_docs is not None:
            valid = self._stream_batches(valid_docs)
        return train, valid

    def _stream_batches(self, docs: list[np.ndarray]) -> LMBatches:
        n = sum(len(d) for d in docs)
        if n < 2:
            raise ValueError("the validation texts hold fewer than 2 tokens")
        return LMBatches(
            docs, min(self.batch_size, n - 1), self.bptt, device=self._device()
        )

    def _build_module(self) -> LMModel:
        enc = _new_encoder(
            len(self.vocab_), _encoder_config(self), _LM_DROPS, self.drop_mult
        )
        return LMModel(enc, output_p=_LM_OUTPUT_P * self.drop_mult)

    def _loss_func(self) -> LMLoss:
        return LMLoss(self.alpha, self.beta)

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return lm_splitter(module)

    def _extra_callbacks(self) -> list[Callback]:
        cbs: list[Callback] = [ResetState()]
        if self.clip:
            cbs.append(GradientClipping(self.clip))
        return cbs

    def fit(self, X: Any, y: Any = None, eval_set: Any = None) -> LanguageModel:
        """Fit on texts ``X``; ``eval_set`` (texts) gives a validation stream whose loss,
        in nats per token, is ``history_["valid_loss"]``. ``y`` is ignored."""
        self._check_common_params()
        _check_model_params(self)
        reset = not self._is_warm()
        if reset:
            self.history_ = None
        with self._seeded():
            train, valid = self._fit_data(X, None, eval_set=eval_set, reset=reset)
            if reset:
                self.module_ = self._build_module()
            self.module_.to(self._device())
            learner = self._make_learner()
            lr = self._resolve_lr(learner, train)
            self._train(
                learner, train, valid, lr, extra_callbacks=self._extra_callbacks()
            )
            self.module_.reset()
        return self

    # ---- using the model ------------------------------------------------------------

    def _stream_loss(self, docs: list[np.ndarray]) -> tuple[float, int]:
        module, device = self.module_, self._device()
        module.to(device).eval()
        module.reset()
        total, count = 0.0, 0
        with torch.inference_mode():
            for xb, yb in self._stream_batches(docs):
                logits = module(xb)
                total += float(
                    F.cross_entropy(
                        logits.reshape(-1, logits.size(-1)).float(), yb, reduction="sum"
                    )
                )
                count += yb.numel()
        module.reset()
        return total / count, count

    def score_tokens(self, X: Any) -> float:
        """Mean cross-entropy in nats per token (per character at ``level="char"``) of the
        texts ``X`` read as one stream."""
        check_is_fitted(self)
        return self._stream_loss(self._encode(_as_texts(X, self.text_col)))[0]

    def perplexity(self, X: Any) -> float:
        """``exp`` of :meth:`score_tokens`: the perplexity of the model on ``X``."""
        return math.exp(self.score_tokens(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the cross-entropy per token (higher is better, as sklearn expects)."""
        return -self.score_tokens(X)

    def generate(
        self,
        prompt: str = "",
        n_words: int = 50,
        temperature: float = 1.0,
        random_state: int | np.random.RandomState | None = None,
    ) -> str:
        """Continue ``prompt`` with ``n_words`` sampled tokens (characters at char level).

        ``temperature`` divides the logits (0: always the most likely token). The unknown
        and padding tokens are never sampled. Returns the prompt and its continuation as
        readable text (markers undone). A backwards model writes what comes before the
        prompt.
        """
        check_is_fitted(self)
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        if not (isinstance(n_words, numbers.Integral) and n_words >= 0):
            raise ValueError(f"n_words must be an int >= 0, got {n_words!r}")
        if not (isinstance(temperature, numbers.Real) and temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        gen = torch.Generator().manual_seed(seed)
        tokens = self._tokenizer(self.level_)([prompt])
        ids = self._docs(tokens)[0].tolist()
        module, device = self.module_, self._device()
        module.to(device).eval()
        module.reset()
        banned = [self.vocab_.stoi_[UNK], self.vocab_.stoi_[PAD]]
        out: list[int] = []
        with torch.inference_mode():
            logits = module(torch.tensor([ids], device=device))[0, -1]
            for _ in range(n_words):
                logits = logits.float().cpu()
                logits[banned] = -math.inf
                if temperature == 0:
                    nxt = int(logits.argmax())
                else:
                    probs = torch.softmax(logits / temperature, 0)
                    nxt = int(torch.multinomial(probs, 1, generator=gen))
                out.append(nxt)
                logits = module(torch.tensor([[nxt]], device=device))[0, -1]
        module.reset()
        ids += out
        if self.backwards_:  # xxbos, then the text in reading order
            ids = ids[:1] + ids[:0:-1]
        return detokenize(self.vocab_.decode(ids), self.level_)

    def save_encoder(self, path: str | Path) -> None:
        """Write the encoder's weights, sizes and vocabulary to ``path`` (a torch file)
        for ``TextClassifier(language_model=path)`` or :meth:`load_encoder`."""
        check_is_fitted(self)
        _save_encoder(
            path, self.module_.encoder, self.vocab_.itos_, self.level_, self.backwards_
        )

    def load_encoder(self, path: str | Path) -> LanguageModel:
        """Load encoder weights saved by ``save_encoder``; the vocabulary must be this
        model's (a clear error otherwise)."""
        check_is_fitted(self)
        payload = _read_encoder(path)
        _load_into(
            self.module_.encoder, payload, self.vocab_.itos_, path, self.backwards_
        )
        return self


# ---- classifier --------------------------------------------------------------------


def _accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.argmax(1) == target).float().mean())


def _multilabel_accuracy(pred: torch.Tensor, target: torch.Tensor, threshold: float):
    return float(((torch.sigmoid(pred) > threshold).float() == target).float().mean())


class TextClassifier(_TextMixin, ClassifierMixin, NeuralEstimator):
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
    Binary and multiclass targets (1-D ``y``, softmax) and multi-label targets (2-D 0/1
    ``y``, sigmoid).

    The defaults are for small labelled sets and small language models: on the IMDB
    sample (800 reviews, an encoder pretrained on 0.5M WikiText-2 tokens) ULMFiT's own
    settings (whole texts, ``lr_ratio=2.6``, a few epochs) let the classifier fit its
    reviews by heart, and the embedding, 2.6**3 times slower than the head, barely learns
    which words carry sentiment. In 4-fold cross-validation of the training reviews,
    crops, one rate for all layer groups and 12 epochs took the accuracy from 0.605 to
    0.729 (AUC 0.639 to 0.826; ``benchmarks/text_ulmfit_dev.py``); crops of 20-100
    tokens for 36 epochs, adversarial training and windowed prediction to 0.78-0.79
    (AUC 0.87), against 0.810 (0.900) for TF-IDF and logistic regression; on the 200
    validation reviews 0.787 (AUC 0.859) against 0.800 (0.886), see the README.

    Parameters
    ----------
    language_model : LanguageModel, str, Path or None, default=None
        A fitted LanguageModel or a path from ``save_encoder``. Inside ``clone`` (grid
        search) pass a path: cloning drops a LanguageModel's fitted state.
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
    vocab_ : Vocab
    module_ : TextClassifierModel
    history_ : pandas.DataFrame
        The classifier's epochs (all stages).
    lm_history_ : pandas.DataFrame or None
        The language-model fine-tuning epochs.

    Example
    -------
    >>> texts = ["a good film", "a bad film"] * 20
    >>> clf = TextClassifier(lm_epochs=0, epochs=2, verbose=0, random_state=0)
    >>> clf = clf.fit(texts, ["pos", "neg"] * 20)
    >>> clf.predict(["good"]).shape
    (1,)
    """

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

    # ---- checks ---------------------------------------------------------------------

    def _check_params(self) -> None:
        self._check_common_params()
        _check_model_params(self)
        a = self.adversarial
        if not (isinstance(a, numbers.Real) and not isinstance(a, bool) and a >= 0):
            raise ValueError(f"adversarial must be a number >= 0, got {a!r}")
        for name in ("lm_epochs", "freeze_epochs"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        _check_positive_int(self, "lm_batch_size")
        if self.max_len is not None:
            _check_positive_int(self, "max_len")
        if self.predict_window is not None:
            _check_positive_int(self, "predict_window")
        check_crop(self.crop)
        if not (isinstance(self.lr_ratio, numbers.Real) and self.lr_ratio > 0):
            raise ValueError(f"lr_ratio must be > 0, got {self.lr_ratio!r}")
        if not (isinstance(self.lm_lr, numbers.Real) and self.lm_lr > 0):
            raise ValueError(f"lm_lr must be > 0, got {self.lm_lr!r}")
        _check_language_model(self.language_model)

    def _targets(self, y: Any, n: int, reset: bool) -> torch.Tensor:
        arr = _target_array(y, n, type(self).__name__)
        if arr.ndim == 2:
            if not np.isin(arr, (0, 1)).all():
                raise ValueError("a 2-D (multi-label) y must hold only 0 and 1")
            if reset:
                self.multilabel_ = True
                self.classes_ = (
                    np.asarray(y.columns)
                    if isinstance(y, pd.DataFrame)
                    else np.arange(arr.shape[1])
                )
            elif arr.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {arr.shape[1]} labels, the model {len(self.classes_)}"
                )
            return torch.as_tensor(arr.astype(np.float32))
        if reset:
            self.multilabel_ = False
        return _class_codes(self, arr, reset)

    # ---- NeuralEstimator hooks ------------------------------------------------------

    def _build_module(self) -> TextClassifierModel:
        enc = _new_encoder(
            len(self.vocab_), self.encoder_config_, _CLAS_DROPS, self.drop_mult
        )
        head = PoolingClassifier(
            self.encoder_config_["emb_size"],
            len(self.classes_),
            tuple(self.lin_sizes),
            ps=tuple(
                p * self.drop_mult
                for p in (_CLAS_PS[0], *[_CLAS_PS[1]] * len(self.lin_sizes))
            ),
        )
        return TextClassifierModel(enc, head)

    def _loss_func(self) -> Any:
        if self.multilabel_:
            return nn.functional.binary_cross_entropy_with_logits
        return nn.functional.cross_entropy

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return classifier_splitter(module)

    def _metrics(self) -> dict[str, Any]:
        if self.multilabel_:
            return {"accuracy": partial(_multilabel_accuracy, threshold=self.threshold)}
        return {"accuracy": _accuracy}

    def _opt_func(self) -> Any:
        return partial(
            torch.optim.AdamW, betas=tuple(self.betas), weight_decay=self.weight_decay
        )

    def _schedule(self) -> Schedule:
        if isinstance(self.schedule, str) and self.schedule == "one_cycle":
            return OneCycle(moms=None)  # keep beta1 at betas[0] (ULMFiT's 0.7)
        return get_schedule(self.schedule)

    def _clas_batches(self, docs, y, shuffle: bool) -> SortishBatches:
        return SortishBatches(
            docs,
            y,
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
        eval_set: tuple[Any, Any] | None = None,
        unlabelled: Any = None,
    ) -> TextClassifier:
        """Fit on texts ``X`` and targets ``y``.

        ``eval_set=(X_valid, y_valid)`` gives a validation set (otherwise
        ``validation_fraction``); ``unlabelled`` adds texts to the language-model
        fine-tuning only.
        """
        self._check_params()  # before _seeded reads random_state and device
        with self._seeded():
            train, valid, pretrained, warm = self._prepare_fit(
                X, y, eval_set, unlabelled
            )
            self._train_classifier(train, valid, pretrained=pretrained, warm=warm)
        return self

    def lr_find(
        self, X: Any, y: Any, unlabelled: Any = None, **kwargs: Any
    ) -> LRFinderResult:
        """The learning-rate sweep that ``lr=None`` runs, on a fresh copy of this
        estimator (this one is left as it was): steps 1-2 run as in ``fit`` (the
        language-model fine-tuning, ``lm_epochs`` of it), then the finder sweeps the
        classifier's first stage (the head alone when there is a language model and
        ``freeze_epochs > 0``, otherwise all layers). Keyword arguments go to
        :func:`deepfit.lr_find`; ``.plot()`` on the result shows the curve."""
        est = clone(self)
        est._check_params()
        with est._seeded():
            train, _, pretrained, _ = est._prepare_fit(X, y, None, unlabelled)
            learner = est._make_learner()
            if pretrained and est.freeze_epochs > 0 and learner.n_groups > 1:
                learner.freeze_to(learner.n_groups - 1)
            else:
                learner.unfreeze()
            return learner.lr_find(train, **kwargs)

    def _prepare_fit(
        self, X: Any, y: Any, eval_set: Any, unlabelled: Any
    ) -> tuple[SortishBatches, SortishBatches | None, bool, bool]:
        """Everything ``fit`` does before training the classifier (after the parameter
        checks): tokens, vocabulary, steps 1-2. Returns the classification batches,
        whether the encoder was (pre)trained, and whether this is a warm start."""
        texts = _as_texts(X, self.text_col)
        if not texts:
            raise ValueError("X holds no texts")
        warm = self._is_warm()
        targets = self._targets(y, len(texts), reset=not warm)
        extra = (
            []
            if unlabelled is None
            else _as_texts(unlabelled, self.text_col, "unlabelled")
        )
        eval_texts = eval_y = None
        if eval_set is not None:
            if not (isinstance(eval_set, (tuple, list)) and len(eval_set) == 2):
                raise ValueError("eval_set must be a pair (X_valid, y_valid)")
            eval_texts = _as_texts(eval_set[0], self.text_col, "eval_set X")
            eval_y = self._targets(eval_set[1], len(eval_texts), reset=False)
        if not warm:
            self.history_ = None
            self.lm_history_ = None
        source, level, backwards = (
            (None, self.level_, self.backwards_)
            if warm
            else _encoder_source(self.language_model, self.level, self.backwards)
        )
        if not warm:
            self.level_, self.backwards_ = level, bool(backwards)
        tok = self._tokenizer(self.level_)
        tokens = tok(texts)
        extra_tokens = tok(extra) if extra else []
        if not warm:
            self.vocab_ = Vocab(self.min_freq, self.max_vocab).fit(
                tokens + extra_tokens
            )
            self.encoder_config_ = source["config"] if source else _encoder_config(self)
            self.module_ = self._build_module()
        docs = self._docs(tokens)
        valid_docs = None if eval_texts is None else self._encode(eval_texts)
        if not warm:
            self._pretrain(source, docs + self._docs(extra_tokens), valid_docs)
        if valid_docs is None:
            strat = None if self.multilabel_ else targets.numpy()
            train_idx, valid_idx = self._validation_split(len(docs), stratify=strat)
            if valid_idx is not None:
                valid_docs, eval_y = [docs[i] for i in valid_idx], targets[valid_idx]
                docs, targets = [docs[i] for i in train_idx], targets[train_idx]
        train = self._clas_batches(docs, targets, shuffle=True)
        valid = (
            None
            if valid_docs is None
            else self._clas_batches(valid_docs, eval_y, False)
        )
        self.module_.to(self._device())
        return train, valid, source is not None or self.lm_epochs > 0, warm

    def _pretrain(self, source, docs, valid_docs) -> None:
        """Steps 1-2: the language model, fine-tuned on the task's texts; its encoder
        weights then go into ``module_.encoder``."""
        state = None
        if source is not None:
            state = _match_embeddings(
                source["state"], source["itos"], self.vocab_.itos_
            )
        if self.lm_epochs > 0:
            enc = _new_encoder(
                len(self.vocab_), self.encoder_config_, _LM_DROPS, self.drop_mult
            )
            if state is not None:
                enc.load_state_dict(state)
            _fine_tune_lm(
                self,
                LMModel(enc, output_p=_LM_OUTPUT_P * self.drop_mult),
                docs,
                valid_docs,
                epochs=self.lm_epochs,
                lr=self.lm_lr,
                batch_size=self.lm_batch_size,
                pretrained=source is not None,
                offset=3,
            )
            self.lm_history_ = self.history_
            self.history_ = None
            state = enc.state_dict()
        if state is not None:
            self.module_.encoder.load_state_dict(state)

    def _train_classifier(self, train, valid, pretrained: bool, warm: bool) -> None:
        learner = self._make_learner()
        sched = self._schedule()
        cbs: list[Callback] = [GradientClipping(self.clip)] if self.clip else []
        if self.adversarial > 0:
            embedding = "encoder.encoder_dp"  # the word vectors, after word dropout
            cbs.append(AdversarialTraining(embedding, float(self.adversarial)))
        if warm or not pretrained:
            learner.unfreeze()
            lr = self._resolve_lr(learner, train)
            self._train(learner, train, valid, lr, schedule=sched, extra_callbacks=cbs)
            return
        n = learner.n_groups
        base = None
        for k, n_trainable in enumerate(range(1, n)):
            if self.freeze_epochs == 0:
                break
            learner.freeze_to(n - n_trainable)
            if base is None:
                base = self._resolve_lr(learner, train)
            stage_lr = base / 2**k
            lrs = self._stage_lrs(learner, stage_lr)
            self._train(
                learner,
                train,
                valid,
                lrs,
                epochs=self.freeze_epochs,
                schedule=sched,
                extra_callbacks=cbs,
            )
            if learner.interrupted:
                return
        learner.unfreeze()
        if base is None:
            base = self._resolve_lr(learner, train)
        self._train(
            learner,
            train,
            valid,
            self._stage_lrs(learner, base / 10),
            schedule=sched,
            extra_callbacks=cbs,
        )
        self.lr_ = base

    def _stage_lrs(self, learner: Learner, lr: float) -> list[float]:
        n = learner.n_groups
        return [lr / self.lr_ratio ** (n - 1 - i) for i in range(n)]

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
        docs = self._encode(_as_texts(X, self.text_col))
        n, owner = len(docs), None
        if self.predict_window is not None:
            docs, owner = text_windows(docs, self.predict_window, self.max_len)
        logits = self._logits(docs)
        proba = torch.sigmoid(logits) if self.multilabel_ else torch.softmax(logits, 1)
        proba = proba.numpy()
        if owner is None:
            return proba
        total = np.zeros((n, proba.shape[1]), dtype=np.float64)
        np.add.at(total, owner, proba)
        return (total / np.bincount(owner, minlength=n)[:, None]).astype(proba.dtype)

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class, or a 0/1 matrix (probability above ``threshold``) for a
        multi-label model."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba > self.threshold).astype(int)
        return self.classes_[proba.argmax(1)]

    def save_encoder(self, path: str | Path) -> None:
        """Write the classifier's encoder (weights, sizes, vocabulary) to ``path``."""
        check_is_fitted(self)
        _save_encoder(
            path, self.module_.encoder, self.vocab_.itos_, self.level_, self.backwards_
        )

    def load_encoder(self, path: str | Path) -> TextClassifier:
        """Replace the encoder's weights with those saved at ``path``; the vocabulary
        must be this model's (a clear error otherwise)."""
        check_is_fitted(self)
        payload = _read_encoder(path)
        _load_into(
            self.module_.encoder, payload, self.vocab_.itos_, path, self.backwards_
        )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
