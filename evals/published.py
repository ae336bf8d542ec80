"""Published results on the exact Beauty test set (4,469 cases), from the bundled dataset README.

Source: Harte et al., "Leveraging Large Language Models for Sequential Recommendation" (RecSys 2023),
same split, same protocol (full-catalogue ranking, last item as target, prompt items excluded).
"""

from __future__ import annotations

PUBLISHED_DATASET = "amazon-beauty"
PUBLISHED_COLUMNS = ("hr@20", "ndcg@20", "mrr@20", "hr@10", "ndcg@10", "mrr@10", "coverage@20")
# what our tables show: the published columns plus the coarse-retrieval cut-offs (not published: "—")
COLUMNS = ("hr@20", "ndcg@20", "mrr@20", "hr@10", "ndcg@10", "mrr@10", "hr@50", "hr@100", "coverage@20")

PUBLISHED: dict[str, tuple[float, ...]] = {
    "LLM2BERT4Rec": (0.1177, 0.0512, 0.0329, 0.0761, 0.0408, 0.0301, 0.260),
    "BERT4Rec": (0.1027, 0.0430, 0.0266, 0.0667, 0.0339, 0.0241, 0.312),
    "V-SKNN": (0.0947, 0.0475, 0.0342, 0.0709, 0.0415, 0.0326, 0.889),
    "GRU4Rec": (0.0812, 0.0338, 0.0209, 0.0503, 0.0260, 0.0187, 0.243),
    "SASRec": (0.0808, 0.0346, 0.0218, 0.0530, 0.0276, 0.0199, 0.266),
    "LLMSeqSim": (0.0792, 0.0480, 0.0391, 0.0631, 0.0440, 0.0380, 0.889),
    "LLMSeqPrompt": (0.0691, 0.0295, 0.0186, 0.0459, 0.0237, 0.0170, 0.661),
    "Popularity": (0.0177, 0.0064, 0.0033, 0.0103, 0.0045, 0.0028, 0.002),
}


def published_metrics(dataset: str) -> dict[str, dict[str, float]]:
    """Published rows as metric dicts, or nothing for a dataset without published numbers."""
    if dataset != PUBLISHED_DATASET:
        return {}
    return {name: dict(zip(PUBLISHED_COLUMNS, values, strict=True)) for name, values in PUBLISHED.items()}
