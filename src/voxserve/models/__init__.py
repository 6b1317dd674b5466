"""voxserve.models: the models folder, the catalogue of known models, and pulling them.

    from voxserve.models import KNOWN_MODELS, find, list_models, remove, scan
    from voxserve.models.pull import pull

``scan``/``remove`` (layout) only look at files; ``pull`` downloads from the Hugging Face hub
(with ``huggingface_hub``, through its cache) and is for the CLI only: the server never
downloads while serving requests; it notices models pulled meanwhile by rescanning the folder.
(``pull`` is not re-exported here: the name would hide the ``voxserve.models.pull`` module.)
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
    HubOptions,
    ProgressCallback,
    hub_url_from_env,
    in_cache,
    token_from_env,
)

__all__ = [
    "KNOWN_MODELS",
    "BundledFile",
    "CatalogEntry",
    "ChecksumMismatch",
    "DownloadFailed",
    "HubOptions",
    "InstalledModel",
    "ModelKind",
    "ModelListing",
    "ProgressCallback",
    "RemoteFile",
    "find",
    "find_installed",
    "hub_url_from_env",
    "in_cache",
    "list_models",
    "remove",
    "scan",
    "token_from_env",
]
