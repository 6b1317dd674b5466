"""voxserve.models: the models folder, the catalogue of known models, and pulling them.

    from voxserve.models import KNOWN_MODELS, find, list_models, remove, scan
    from voxserve.models.pull import pull

``scan``/``remove`` (layout) only look at files; ``pull`` downloads from a model hub and is for
the CLI only: the server never downloads while serving requests. (``pull`` is not re-exported
here: the name would hide the ``voxserve.models.pull`` module.)
"""

from voxserve.models.catalog import (
    KNOWN_MODELS,
    BundledFile,
    CatalogEntry,
    ModelListing,
    RemoteFile,
    find,
    list_models,
)
from voxserve.models.layout import InstalledModel, ModelKind, find_installed, remove, scan
from voxserve.models.pull import (
    ChecksumMismatch,
    DownloadFailed,
    ProgressCallback,
    hub_url_from_env,
    partial_downloads,
    token_from_env,
)

__all__ = [
    "KNOWN_MODELS",
    "BundledFile",
    "CatalogEntry",
    "ChecksumMismatch",
    "DownloadFailed",
    "InstalledModel",
    "ModelKind",
    "ModelListing",
    "ProgressCallback",
    "RemoteFile",
    "find",
    "find_installed",
    "hub_url_from_env",
    "list_models",
    "partial_downloads",
    "remove",
    "scan",
    "token_from_env",
]
