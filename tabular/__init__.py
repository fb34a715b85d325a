"""Entity-embedding models for DataFrames (Guo & Berkhahn 2016, fastai's tabular recipe)."""

from __future__ import annotations

from tabular.preprocessing import TabularPreprocessor, embedding_width

__all__ = ["TabularPreprocessor", "embedding_width"]
