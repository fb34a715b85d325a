"""Entity-embedding models for DataFrames (Guo & Berkhahn 2016; fastai's tabular recipe)."""

from __future__ import annotations

from tabular.estimator import TabularClassifier, TabularRegressor
from tabular.model import SigmoidRangeVec, TabularModel, splitter
from tabular.preprocessing import TabularPreprocessor, embedding_width

__all__ = [
    "SigmoidRangeVec",
    "TabularClassifier",
    "TabularModel",
    "TabularPreprocessor",
    "TabularRegressor",
    "embedding_width",
    "splitter",
]
