"""How a torch recommender is fitted without touching the test split, and cached so it is fitted once.

* With validation cases (the validation fold: sub-train sessions vs validation sessions cut by time) it
  trains up to ``max_epochs`` with early stopping on validation NDCG@20 and records the best epoch beside
  the artefacts, keyed by the hyper-parameters without the seed (every seed's test fit reuses it).
* Without them (the test fold) it trains on all training sessions for ``epochs`` if given, else for the
  recorded best epoch, else it first runs that validation fit itself on a validation split cut from its
  own training sessions by the protocol's rule.

Weights are cached by (model name, hyper-parameters, training data digest) under ``env.artifact_dir``
and built under a file lock, so pipelines run side by side train a shared model once.
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sessiondata.protocol import ProtocolConfig, build_protocol
from sessiondata.schema import Dataset
from sr_models.base import TrainData
from sr_models.neural import distributed
from sr_models.neural.artifacts import ArtifactStore, is_complete, read_artifact, save_artifact, training_lock
from sr_models.neural.semsr_text import title_vectors
from sr_models.neural.trainer import train

if TYPE_CHECKING:
    from sr_models.neural.recommender import NeuralRecommender

log = logging.getLogger("sr_models.neural")


def fit_cached(model: NeuralRecommender, data: TrainData) -> NeuralRecommender:
    """Fit ``model`` on ``data`` (see the module docstring), reusing a complete cached artefact.

    Under ``torchrun`` every process calls this alike; rank 0 holds the lock, decides whether to reuse
    and writes, the others follow its decisions (:mod:`sr_models.neural.distributed`)."""
    model.setup()
    model.fit_catalogue(data.n_items)
    store = model.store()
    if store is None:
        return _train(model, data, None, None)
    directory = store.model_dir(data.dataset, model.name, model.params(), data.digest or sessions_digest(data))
    main = distributed.world().main
    with training_lock(directory) if main else nullcontext():
        if distributed.agree(model.cache and is_complete(directory)):
            log.info("%s: reusing trained artefact %s", model.name, directory)
            model.load_state(*distributed.agree(read_artifact(directory) if main else None), directory)
            epochs = store.read_epochs(data.dataset, model.name, model.epoch_params()) if main else 0
            if data.valid_cases and epochs is None:
                # a validation-fold artefact from before the record existed (or whose record was deleted)
                record = {"best_epoch": model.best_epoch, "seed": model.hyper["seed"], "history": model.history}
                store.write_epochs(data.dataset, model.name, model.epoch_params(), record)
            return model
        return _train(model, data, store, directory)


def _train(
    model: NeuralRecommender, data: TrainData, store: ArtifactStore | None, directory: Path | None
) -> NeuralRecommender:
    hyper, world = model.hyper, distributed.world()
    if data.valid_cases:
        epochs, valid_cases = hyper["max_epochs"], data.valid_cases
    else:
        epochs, valid_cases = _epochs_for_test_fit(model, data, store), ()
    vectors = _text_vectors(model, data)
    encoder = model.build_encoder(data.n_items, vectors)
    encoder.prepare_training(data.sessions)
    encoder.to(model.device)
    log_path = None
    if directory is not None and world.main:
        directory.mkdir(parents=True, exist_ok=True)
        log_path = directory / "train_log.jsonl"
        log_path.unlink(missing_ok=True)
    result = train(encoder, model.examples(data), model.train_config(epochs, log_path), valid_cases)
    model.encoder, model.n_items, model.world = encoder, data.n_items, world.size
    model.history, model.best_epoch = result.history, result.best_epoch
    if store is not None and directory is not None and world.main:  # only rank 0 writes
        if valid_cases:
            record = {"best_epoch": result.best_epoch, "seed": hyper["seed"], "history": result.history}
            store.write_epochs(data.dataset, model.name, model.epoch_params(), record)
        model.artifact_path = save_artifact(
            directory, encoder.state_dict(), model.artifact_config(data, result.seconds)
        )
    elif directory is not None:
        model.artifact_path = directory  # where rank 0 writes it
    distributed.barrier()  # what rank 0 wrote is there before any process goes on
    return model


def _text_vectors(model: NeuralRecommender, data: TrainData) -> np.ndarray | None:
    """The SemSR title vectors; in a distributed run rank 0 embeds (and caches) them first."""
    if model.hyper["semantic"] == "none":
        return None
    main = distributed.world().main
    vectors = title_vectors(data.catalog, model.hyper["semantic_source"], model.env) if main else None
    distributed.barrier()
    return vectors if main else title_vectors(data.catalog, model.hyper["semantic_source"], model.env)


def _epochs_for_test_fit(model: NeuralRecommender, data: TrainData, store: ArtifactStore | None) -> int:
    if model.hyper["epochs"]:
        return int(model.hyper["epochs"])
    main = distributed.world().main
    recorded = store.read_epochs(data.dataset, model.name, model.epoch_params()) if store is not None and main else None
    recorded = distributed.agree(recorded)
    if recorded:
        return recorded
    log.info("%s: no validated epoch count yet; fitting on a validation split first", model.name)
    twin = model.twin()
    fit_cached(twin, validation_split(data))
    return max(1, twin.best_epoch)


def validation_split(data: TrainData, fraction: float = 0.2) -> TrainData:
    """Sub-train sessions + validation cases cut by time from ``data``: the protocol's validation rule."""
    dataset = Dataset(name=data.dataset or "data", sessions=tuple(data.sessions), catalog=data.catalog)
    cut = build_protocol(dataset, ProtocolConfig(split="temporal", test_fraction=fraction))
    sub = TrainData(cut.test.train, data.catalog, cut.test.cases, data.dataset, "valid", "")
    return TrainData(sub.sessions, sub.catalog, sub.valid_cases, sub.dataset, "valid", sessions_digest(sub))


def sessions_digest(data: TrainData) -> str:
    """A key for training data that came without a protocol digest (tests, ad-hoc splits)."""
    digest = hashlib.sha256(f"{len(data.catalog)}".encode())
    for session in data.sessions:
        digest.update(f"{session.session_id}:{','.join(map(str, session.items))};".encode())
    digest.update(f"valid={len(data.valid_cases)}".encode())
    return digest.hexdigest()[:16]
