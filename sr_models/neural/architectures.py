"""The torch architectures by name: encoder class and defaults (each defined beside its architecture).

``srgnn`` and ``niser`` share one encoder class (NISER+ is SR-GNN with NISER's switches on), so defaults
are kept per architecture name, not per class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sr_models.neural import bert4rec, gru4rec, msgat, sasrec, srgnn
from sr_models.neural.encoder import SessionEncoder


@dataclass(frozen=True)
class Architecture:
    name: str
    encoder: type[SessionEncoder]
    defaults: dict[str, Any]


ARCHITECTURES: dict[str, Architecture] = {
    "gru4rec": Architecture("gru4rec", gru4rec.GRU4RecEncoder, gru4rec.DEFAULTS),
    "srgnn": Architecture("srgnn", srgnn.SRGNNEncoder, srgnn.SRGNN_DEFAULTS),
    "niser": Architecture("niser", srgnn.SRGNNEncoder, srgnn.NISER_DEFAULTS),
    "msgat": Architecture("msgat", msgat.MSGATEncoder, msgat.DEFAULTS),
    "sasrec": Architecture("sasrec", sasrec.SASRecEncoder, sasrec.DEFAULTS),
    "bert4rec": Architecture("bert4rec", bert4rec.BERT4RecEncoder, bert4rec.DEFAULTS),
}
ENCODERS: dict[str, type[SessionEncoder]] = {name: arch.encoder for name, arch in ARCHITECTURES.items()}
