"""Torch session recommenders (GRU4Rec, SR-GNN, NISER+, MSGAT, SASRec, BERT4Rec) with SemSR-I/-F variants."""

from sr_models.neural.architectures import ENCODERS
from sr_models.neural.recommender import NeuralRecommender, load_recommender

__all__ = ["ENCODERS", "NeuralRecommender", "load_recommender"]
