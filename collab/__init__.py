"""collab: collaborative filtering with embeddings behind a scikit-learn estimator.

``CollabRegressor`` fits user and item embeddings (a biased dot product, or a small
network) on a ratings DataFrame; it predicts ratings, recommends items, finds similar
items, and exposes the learned biases and factors for interpretation.
"""

from __future__ import annotations

from collab.estimator import CollabRegressor
from collab.model import EmbeddingDotBias, EmbeddingNN, splitter

__all__ = ["CollabRegressor", "EmbeddingDotBias", "EmbeddingNN", "splitter"]
