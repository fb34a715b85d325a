"""collab: collaborative filtering with embeddings behind a scikit-learn estimator.

``CollabRegressor`` fits user and item embeddings (a biased dot product, or a small
network) on a ratings DataFrame; it predicts ratings, finds similar items, and exposes
the learned biases and factors for interpretation. ``CollabRecommender`` learns top-k
recommendation from implicit feedback (who interacted with what) and serves new users
from their history without refitting. :mod:`collab.metrics` scores any recommender's
lists (NDCG@k, recall@k, precision@k, MAP@k, coverage).
"""

from __future__ import annotations

from collab.estimator import CollabRegressor
from collab.model import EmbeddingDotBias, EmbeddingNN, ItemAutoencoder, splitter
from collab.recommender import CollabRecommender

__all__ = [
    "CollabRecommender",
    "CollabRegressor",
    "EmbeddingDotBias",
    "EmbeddingNN",
    "ItemAutoencoder",
    "splitter",
]
