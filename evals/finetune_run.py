"""``semsr embed finetune``: fine-tune MiniLM per fold, the number of epochs chosen on the validation fold.

1. The validation fold's model trains on the sub-train sessions for up to ``max_epochs``; after each epoch the
   checkpoint's vectors feed the title-kNN source (its tuned settings, whitening included) and HR@20/HR@100
   on the validation cases is recorded. The best epoch (HR@20, fewer epochs on a tie) is published for the
   validation fold.
2. The test fold's model trains afresh on the whole training split for that many epochs and is published
   for the test fold. The test sessions are never read here.

Both are resumable (per-epoch checkpoints) and keyed by their training sessions' digest and the fine-tune
settings (:mod:`embeddings.finetuned`), so a rerun with the same settings loads instead of training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from embeddings.catalog import catalog_digest, catalog_texts
from embeddings.finetune import FinetuneConfig, epoch_dir, finetune, resolve_device, training_pairs
from embeddings.finetuned import (
    KIND,
    RECORD_FILE,
    cache_vectors,
    finetuned_dir,
    finetuned_root,
    publish,
    read_record,
    run_dir,
)
from embeddings.minilm import load_sentence_model
from embeddings.split_encoder import SplitEncoder, cached_trunk, trunk_path
from evals.tuning import validation_metrics
from semsr.settings import Settings
from sessiondata.protocol import Protocol
from sr_models.base import train_data

FoldChoice = Literal["both", "valid"]


def adapted_embedder(settings: Settings, directory: Path | None, config: FinetuneConfig) -> Any:
    """``settings.embedder`` switched to the fine-tuned MiniLM in ``directory`` (None: resolved per fold)."""
    return settings.embedder.model_copy(update={"kind": KIND, "path": directory, "finetune": config})


def valid_title_knn(protocol: Protocol, settings: Settings, embedder: Any) -> dict[str, float]:
    """Title-kNN (tuned settings, this embedder) HR/MRR/NDCG@20 and @100 on the validation cases."""
    return validation_metrics(protocol, "title-knn", {"embedder": embedder}, 20, settings, extra_k=(100,))


def _train_fold(
    protocol: Protocol,
    fold: Literal["valid", "test"],
    settings: Settings,
    config: FinetuneConfig,
    epochs: int,
    *,
    score: bool,
    progress: bool,
) -> tuple[list[dict[str, Any]], Path, dict[str, Any]]:
    data = train_data(protocol, fold)
    pairs = training_pairs([session.items for session in data.sessions], config)
    device = resolve_device(settings.device)
    embeddings_dir = settings.paths.embeddings
    record = {
        "dataset": protocol.dataset.fingerprint().as_dict(),
        "fold": fold,
        "train_digest": data.digest,
        "train_sessions": len(data.sessions),
        "pairs_available": len(pairs),
        "device": device,
        "threads": settings.threads,
    }
    run = run_dir(embeddings_dir, data.digest, config)
    texts = catalog_texts(protocol.dataset.catalog)
    started = time.perf_counter()
    model = load_sentence_model(device=device, threads=settings.threads)
    model.max_seq_length = config.max_seq_length
    encoder = SplitEncoder(model, config.train_layers)
    path = trunk_path(
        finetuned_root(embeddings_dir), catalog_digest(protocol.dataset.catalog), encoder, config.max_seq_length
    )
    trunk = cached_trunk(encoder, texts, path)
    record["trunk_seconds"] = round(time.perf_counter() - started, 1)

    def on_epoch(epoch: int, directory: Path, vectors: Any) -> dict[str, float]:
        cache_vectors(embeddings_dir, directory, texts, vectors)
        return valid_title_knn(protocol, settings, adapted_embedder(settings, directory, config)) if score else {}

    states = finetune(
        encoder, trunk, pairs, config, run, epochs=epochs, on_epoch=on_epoch, progress=progress, record=record
    )
    record["seconds"] = round(time.perf_counter() - started, 1)
    return states, run, record


def run_finetune(
    protocol: Protocol, settings: Settings, *, folds: FoldChoice = "both", progress: bool = True
) -> dict[str, Any]:
    """Fine-tune and publish the validation fold's model (epochs chosen there), then the test fold's."""
    config = settings.embedder.finetune
    report: dict[str, Any] = {"finetune": config.model_dump(), "id": config.id}
    started = time.perf_counter()
    valid_digest = protocol.train_digest("valid")
    valid_target = finetuned_dir(settings.paths.embeddings, valid_digest, config)
    if (valid_target / RECORD_FILE).exists():
        valid_record = read_record(valid_target)
    else:
        raw = valid_title_knn(protocol, settings, settings.embedder.model_copy(update={"kind": "minilm", "path": None}))
        states, run, record = _train_fold(
            protocol, "valid", settings, config, config.max_epochs, score=True, progress=progress
        )
        best = max(states, key=lambda state: (state["scores"]["hr@20"], -state["epoch"]))
        history = [{"epoch": s["epoch"], "loss": s["loss"], "valid": s["scores"]} for s in states]
        valid_record = {
            **record,
            "epochs": best["epoch"],
            "finetune": config.model_dump(),
            "selected_on": "validation fold: title-kNN HR@20 (tuned settings) after each epoch",
            "raw_valid": raw,
            "history": history,
        }
        publish(epoch_dir(run, best["epoch"]), valid_target, valid_record)
        valid_record = read_record(valid_target)
    report["valid"] = {key: valid_record[key] for key in ("epochs", "raw_valid", "history", "train_digest")}
    report["valid"]["path"] = str(valid_target)
    if folds == "both":
        epochs = int(valid_record["epochs"])
        test_digest = protocol.train_digest("test")
        test_target = finetuned_dir(settings.paths.embeddings, test_digest, config)
        if not (test_target / RECORD_FILE).exists():
            states, run, record = _train_fold(
                protocol, "test", settings, config, epochs, score=False, progress=progress
            )
            test_record = {
                **record,
                "epochs": epochs,
                "finetune": config.model_dump(),
                "selected_on": f"epochs from the validation fold's model ({valid_digest})",
                "history": [{"epoch": s["epoch"], "loss": s["loss"]} for s in states],
            }
            publish(epoch_dir(run, epochs), test_target, test_record)
        report["test"] = {"path": str(test_target), "epochs": epochs, "train_digest": test_digest}
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report
