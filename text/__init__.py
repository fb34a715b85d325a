"""text: spaCy tokenizer with fastai's markers, AWD-LSTM language model, the ULMFiT text
classifier and a generative classifier of one language model per class, behind
scikit-learn estimators."""

from __future__ import annotations

from text.awd_lstm import (
    AWD_LSTM,
    ClassConditionalLM,
    EmbeddingDropout,
    LMModel,
    PoolingClassifier,
    RNNDropout,
    TextClassifierModel,
    WeightDropout,
    classifier_splitter,
    lm_splitter,
)
from text.data import LMBatches, SortishBatches, pad_batch
from text.estimator import LanguageModel, LMLoss, ResetState, TextClassifier
from text.generative import GenerativeTextClassifier
from text.tokenizer import Tokenizer, Vocab, detokenize

__all__ = [
    "AWD_LSTM",
    "ClassConditionalLM",
    "EmbeddingDropout",
    "GenerativeTextClassifier",
    "LMBatches",
    "LMLoss",
    "LMModel",
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
    "lm_splitter",
    "pad_batch",
]
