"""Session data for SemSR: the catalogue, sessions, loaders and the evaluation protocol.

This package imports no other SemSR package; every other package may import it.
"""

from sessiondata.errors import ConfigError, DataError
from sessiondata.loaders import load_dataset
from sessiondata.schema import Catalog, Dataset, DatasetFingerprint, Session

__all__ = ["Catalog", "ConfigError", "DataError", "Dataset", "DatasetFingerprint", "Session", "load_dataset"]
