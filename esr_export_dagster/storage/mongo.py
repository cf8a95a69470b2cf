"""Connecting to MongoDB, and telling a transient failure from a real one.

Nothing here connects at import. Error texts name hosts and ports, never credentials.
"""

from __future__ import annotations

import logging

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import (
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from pymongo.uri_parser import parse_uri

WRITE_CONFLICT = 112

# Server codes that mean "try again": the write conflict behind the 2021 incident, and the codes of a
# replica set changing primary or shutting down (the same set the drivers' retryable-writes spec uses).
TRANSIENT_ERROR_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        WRITE_CONFLICT,
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
_TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError")


class MongoUnavailableError(ConnectionFailure):
    """MongoDB could not be reached; the message names the hosts, never the credentials."""


class TransientExportError(RuntimeError):
    """A condition that clears by itself (another run of the deanery is mid-export): retry later."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TransientExportError):
        return True
    if isinstance(error, ConnectionFailure):
        return True
    if isinstance(error, PyMongoError) and any(error.has_error_label(label) for label in _TRANSIENT_LABELS):
        return True
    return isinstance(error, OperationFailure) and error.code in TRANSIENT_ERROR_CODES


def describe_hosts(uri: str) -> str:
    """``host:port`` list of a MongoDB URI, without user name or password."""
    try:
        nodes = parse_uri(uri, validate=False, warn=True)["nodelist"]
    except Exception:  # an unparsable URI must not leak through its own error text
        return "<unparsable ESR_MONGODB_URI>"
    return ", ".join(f"{host}:{port}" for host, port in nodes)


class _NoCommandDocuments(logging.Filter):
    """pymongo logs whole commands and replies (applicant documents included) at DEBUG: drop them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_COMMAND_LOGGER = logging.getLogger("pymongo.command")


def _keep_documents_out_of_logs() -> None:
    if not any(isinstance(existing, _NoCommandDocuments) for existing in _COMMAND_LOGGER.filters):
        _COMMAND_LOGGER.addFilter(_NoCommandDocuments())


def connect(uri: str, server_selection_timeout_ms: int) -> MongoClient:
    """A client that fails within seconds when the server is down, instead of pymongo's 30 s."""
    _keep_documents_out_of_logs()
    return MongoClient(
        uri,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        connectTimeoutMS=server_selection_timeout_ms,
        socketTimeoutMS=max(60_000, server_selection_timeout_ms),
        appname="esr-export-dagster",
    )


def require_reachable(database: Database, uri: str) -> None:
    """Ping the server, turning pymongo's long topology dump into one clear sentence."""
    try:
        database.command("ping")
    except ServerSelectionTimeoutError:
        raise MongoUnavailableError(
            f"MongoDB is not reachable at {describe_hosts(uri)} (database {database.name!r}): "
            f"no server answered within the selection timeout. Check ESR_MONGODB_URI and that the "
            f"server is running."
        ) from None
    except OperationFailure as error:
        raise MongoUnavailableError(
            f"MongoDB at {describe_hosts(uri)} refused the connection check "
            f"(code {error.code}, {error.__class__.__name__}). Check the credentials in ESR_MONGODB_URI."
        ) from None
