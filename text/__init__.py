"""text: spaCy tokenizer with fastai's markers, AWD-LSTM language model, the ULMFiT text
classifier and a generative classifier of one language model per class, behind
scikit-learn estimators."""

from __future__ import annotations

from text.awd_lstm import (
    AWD_LSTM,
    AWDLSTMConfig,
    ClassConditionalLM,
    EmbeddingDropout,
    LMModel,
    LMOutput,
    PoolingClassifier,
    RNNDropout,
    TextClassifierModel,
    WeightDropout,
    classifier_splitter,
    lm_splitter,
)
from text.data import LMBatches, SortishBatches, pad_batch
from text.encoder import read_encoder, save_encoder
from text.estimator import TextClassifier
from text.generative import GenerativeTextClassifier
from text.language_model import (
    ActivationRegularization,
    LanguageModel,
    ResetState,
    lm_loss,
)
from text.tokenizer import Tokenizer, Vocab, detokenize

__all__ = [
    "AWD_LSTM",
    "AWDLSTMConfig",
    "ActivationRegularization",
    "ClassConditionalLM",
    "EmbeddingDropout",
    "GenerativeTextClassifier",
    "LMBatches",
    "LMModel",
    "LMOutput",
    "LanguageModel",
    "PoolingClassifier",
    "RNNDropout",
    "ResetState",
    "SortishBatches",
    "TextClassifier",
    "TextClassifierModel",
    "Tokenizer",
    "Vocab",
    "WeightDropout",
    "classifier_splitter",
    "detokenize",
    "lm_loss",
    "lm_splitter",
    "pad_batch",
    "read_encoder",
    "save_encoder",
]
