"""The AWD-LSTM :class:`LanguageModel`, and what every text estimator shares: texts to
token ids, the parameters of the encoder, and ULMFiT's language-model fine-tuning stage
(Howard & Ruder 2018, step 2), run through the engine's ``fine_tune``."""

from __future__ import annotations

import math
import numbers
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepfit import (
    Callback,
    FitData,
    GradientClipping,
    History,
    Learner,
    NeuralEstimator,
)
from deepfit.params import Boolean, InstanceOf, Interval, Options
from deepfit.schedules import Schedule
from text.awd_lstm import AWDLSTMConfig, LMModel, LMOutput, lm_splitter
from text.data import LMBatches, as_texts
from text.encoder import LM_DROPS, LM_OUTPUT_P, EncoderFileMixin, new_encoder
from text.tokenizer import PAD, UNK, Tokenizer, Vocab, detokenize

__all__ = [
    "ActivationRegularization",
    "LanguageModel",
    "ResetState",
    "TextEstimator",
    "lm_loss",
]


def lm_loss(
    pred: LMOutput, target: torch.Tensor, w: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of a language model's next-token logits, in nats per token; with
    token weights ``w`` (shaped as ``target``, as :class:`text.LMBatches` gives them,
    scaled to average 1 over the stream) the mean of the weighted losses."""
    logits = pred.logits.reshape(-1, pred.logits.size(-1)).float()
    if w is None:
        return F.cross_entropy(logits, target)
    return (F.cross_entropy(logits, target, reduction="none") * w).mean()


class ActivationRegularization(Callback):
    """AR and TAR (AWD-LSTM sec. 4.6), added to what each training batch minimises (the
    learner's ``extra_loss``, as adversarial training's term): ``alpha`` times the mean
    square of the last layer's dropped outputs and ``beta`` times the mean square of the
    step-to-step change of its raw outputs. ``train_loss`` stays the cross-entropy, as
    validation's."""

    def __init__(self, alpha: float = 2.0, beta: float = 1.0) -> None:
        self.alpha, self.beta = alpha, beta

    def after_loss(self, learn: Learner) -> None:
        pred, extra = learn.pred, []
        if self.alpha:
            extra.append(self.alpha * pred.dropped.float().pow(2).mean())
        raw = pred.raw
        if self.beta and raw.size(1) > 1:
            extra.append(self.beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean())
        for term in extra:
            learn.extra_loss = (
                term if learn.extra_loss is None else learn.extra_loss + term
            )


class ResetState(Callback):
    """Forget the language model's carried hidden state when an epoch starts, around
    validation (the stream starts again there) and when the fit ends."""

    order = -20

    def before_epoch(self, learn: Learner) -> None:
        learn.model.reset()

    def before_validate(self, learn: Learner) -> None:
        learn.model.reset()

    def after_validate(self, learn: Learner) -> None:
        learn.model.reset()

    def after_fit(self, learn: Learner) -> None:
        learn.model.reset()


class TextEstimator(NeuralEstimator):
    """What the text estimators share (not used directly): their encoder's parameters,
    tokenizing and numericalising texts, and the language-model fine-tuning stage."""

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *NeuralEstimator._fitted_attributes,
        "level_",
        "backwards_",
        "vocab_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NeuralEstimator._parameter_constraints,
        "level": [Options("word", "char")],
        "emb_size": [Interval(numbers.Integral, 1, None)],
        "hidden_size": [Interval(numbers.Integral, 1, None)],
        "n_layers": [Interval(numbers.Integral, 1, None)],
        "bptt": [Interval(numbers.Integral, 1, None)],
        "drop_mult": [Interval(numbers.Real, 0, None)],
        "identity_init": [Boolean()],
        "min_freq": [Interval(numbers.Integral, 1, None)],
        "max_vocab": [Interval(numbers.Integral, 1, None)],
        "clip": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "weight_decay": [Interval(numbers.Real, 0, None)],
        "text_col": [InstanceOf((str, int), "a column name"), None],
        "n_jobs": [Interval(numbers.Integral, None, None), None],
        "backwards": [Boolean()],
    }

    def _check_params(self) -> None:
        lm = getattr(self, "language_model", None)
        lm = getattr(lm, "estimator", lm)  # inside a FrozenEstimator
        if isinstance(lm, LanguageModel) and not hasattr(lm, "module_"):
            raise ValueError(
                "language_model is an unfitted LanguageModel (clone() and grid search "
                "drop a fitted one's state): fit it first and pass "
                "sklearn.frozen.FrozenEstimator(lm), which clone keeps, or a path "
                "written by LanguageModel.save_encoder"
            )

    def _config(self) -> AWDLSTMConfig:
        return AWDLSTMConfig(
            self.emb_size, self.hidden_size, self.n_layers, self.identity_init
        )

    # ---- texts to token ids ---------------------------------------------------------

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

    # ---- the language model's training ----------------------------------------------

    def _lm_callbacks(self, alpha: float, beta: float) -> list[Callback]:
        """A language model's callbacks: the state reset, AR/TAR, gradient clipping."""
        cbs: list[Callback] = [ResetState(), ActivationRegularization(alpha, beta)]
        if self.clip:
            cbs.append(GradientClipping(self.clip))
        return cbs

    def _lm_learner(self, lm: LMModel) -> Learner:
        """A learner for the language model of a classifier's recipe: next-token
        cross-entropy with ULMFiT's AR/TAR (2 and 1), one layer group per LSTM, then
        the tied embedding and decoder; AdamW with betas (0.9, 0.99)."""
        wd = self.weight_decay
        return self._make_learner(
            lm.to(self._device()),
            loss_func=lm_loss,
            layer_groups=lm_splitter(lm),
            opt_func=partial(torch.optim.AdamW, betas=(0.9, 0.99), weight_decay=wd),
            metrics={},
            callbacks=self._lm_callbacks(2.0, 1.0),
        )

    def _stream(
        self,
        docs: list[np.ndarray],
        batch_size: int,
        offset: int | None = None,
        weights: np.ndarray | None = None,
    ) -> LMBatches:
        """The documents as a BPTT stream: shuffled, with random window lengths, when
        ``offset`` (of the shuffling generator) is given; in order otherwise.
        ``weights``: one per document, for the training stream's loss."""
        n = sum(len(d) for d in docs)
        if offset is None:
            if n < 2:
                raise ValueError("the validation texts hold fewer than 2 tokens")
            bs = min(batch_size, n - 1)
            return LMBatches(docs, bs, self.bptt, device=self._device())
        return LMBatches(
            docs,
            batch_size,
            self.bptt,
            random_bptt=True,
            shuffle=True,
            generator=self._generator(offset),
            device=self._device(),
            weights=weights,
        )

    def _fine_tune_lm(
        self,
        lm: LMModel,
        docs: list[np.ndarray],
        valid_docs: list[np.ndarray] | None,
        *,
        epochs: int,
        lr: float | None,
        batch_size: int,
        pretrained: bool,
        offset: int,
        history: History,
        schedule: str | Schedule,
        tags: dict[str, Any] | None = None,
        weights: np.ndarray | None = None,
    ) -> tuple[float, bool]:
        """ULMFiT's step 2 on ``docs``: the language model ``lm`` trained for ``epochs``
        through the engine's ``fine_tune``, the first epoch with only the embedding and
        decoder trainable, at twice the rate, when ``pretrained`` (new words start at the
        mean vector: let them adapt before the LSTMs move). ``lr=None`` resolves the rate
        (the finder, on this model). ``weights``: one per document of ``docs``, weighing
        its tokens in the training loss. Returns the rate and whether Ctrl-C ended it."""
        n = sum(len(d) for d in docs)
        bs = max(1, min(batch_size, (n - 1) // (2 * self.bptt)))
        train = self._stream(docs, bs, offset, weights)
        valid = None
        if valid_docs:
            valid = self._stream(valid_docs, bs)
        learner = self._lm_learner(lm)
        if pretrained:
            learner.freeze()
        if lr is None:
            lr = self._resolve_lr(learner, train)
        rate = float(lr)
        learner.fine_tune(
            train,
            epochs - 1 if pretrained else epochs,
            rate,
            freeze_epochs=1 if pretrained else 0,
            schedule=schedule,
            callbacks=self._fit_callbacks(history, valid),
            valid=valid,
            stage_lr=lambda stage, n_frozen: 2 * rate if n_frozen else rate,
            tags=tags,
        )
        return rate, learner.interrupted


# ---- language model ----------------------------------------------------------------


class LanguageModel(EncoderFileMixin, TextEstimator):
    """An AWD-LSTM language model fitted on raw texts (Merity et al. 2017).

    The texts are tokenized (words with fastai's markers, or characters), a vocabulary is
    learned, the documents are concatenated into a stream read in BPTT windows of randomly
    varied length with the hidden state carried across windows, and the model is trained
    with AR/TAR, gradient clipping and the one-cycle schedule.

    Parameters
    ----------
    level : {"word", "char"}, default="word"
    emb_size, hidden_size, n_layers : int, default=200, 500, 2
        Sizes (:class:`text.AWDLSTMConfig`): the paper's 400/1150/3 are for GPUs; these
        train at a useful speed on a CPU.
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

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **TextEstimator._parameter_constraints,
        "alpha": [Interval(numbers.Real, 0, None)],
        "beta": [Interval(numbers.Real, 0, None)],
    }

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

    def _fit_data(self, X, y, eval_set, reset, **kwargs) -> FitData:
        texts = as_texts(X, self.text_col)
        if not texts:
            raise ValueError("X holds no texts")
        if reset:
            self.level_, self.backwards_ = self.level, bool(self.backwards)
        tokens = self._tokenizer(self.level_)(texts)
        if not any(len(t) > 1 for t in tokens):  # each text begins with xxbos
            raise ValueError(
                f"every one of the {len(texts)} texts in X is empty (no tokens): "
                "nothing to learn from"
            )
        if reset:
            self.vocab_ = Vocab(self.min_freq, self.max_vocab).fit(tokens)
        docs = self._docs(tokens)
        valid_docs = None
        if eval_set is not None:
            ev = eval_set[0]
            valid_docs = self._encode(as_texts(ev, self.text_col, "eval_set"))
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
        train = self._stream(docs, self.batch_size, offset=1)
        valid = None
        if valid_docs is not None:
            valid = self._stream(valid_docs, self.batch_size)
        return FitData(train, valid)

    def _build_module(self) -> LMModel:
        enc = new_encoder(len(self.vocab_), self._config(), LM_DROPS, self.drop_mult)
        return LMModel(enc, output_p=LM_OUTPUT_P * self.drop_mult)

    def _loss_func(self) -> Any:
        return lm_loss

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return lm_splitter(module)

    def _learner_callbacks(self) -> list[Callback]:
        return self._lm_callbacks(self.alpha, self.beta)

    def fit(self, X: Any, y: Any = None, *, eval_set: Any = None) -> LanguageModel:
        """Fit on texts ``X``; ``eval_set`` (texts) gives a validation stream whose loss,
        in nats per token, is ``history_["valid_loss"]``. ``y`` is ignored."""
        return self._fit(X, None, eval_set=eval_set)

    # ---- using the model ------------------------------------------------------------

    def score_tokens(self, X: Any) -> float:
        """Mean cross-entropy in nats per token (per character at ``level="char"``) of the
        texts ``X`` read as one stream."""
        check_is_fitted(self)
        docs = self._encode(as_texts(X, self.text_col))
        self._on_device(self.module_)
        return self._make_learner().validate(self._stream(docs, self.batch_size))

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
        prompt. (Sampling is a loop of one-token steps carrying the hidden state, not a
        prediction over batches: it calls the model directly, in eval mode.)
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
        self._on_device(module).eval()
        module.reset()
        banned = [self.vocab_.stoi_[UNK], self.vocab_.stoi_[PAD]]
        out: list[int] = []
        with torch.inference_mode():
            logits = module(torch.tensor([ids], device=device)).logits[0, -1]
            for _ in range(n_words):
                logits = logits.float().cpu()
                logits[banned] = -math.inf
                if temperature == 0:
                    nxt = int(logits.argmax())
                else:
                    probs = torch.softmax(logits / temperature, 0)
                    nxt = int(torch.multinomial(probs, 1, generator=gen))
                out.append(nxt)
                logits = module(torch.tensor([[nxt]], device=device)).logits[0, -1]
        module.reset()
        ids += out
        if self.backwards_:  # xxbos, then the text in reading order
            ids = ids[:1] + ids[:0:-1]
        return detokenize(self.vocab_.decode(ids), self.level_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
