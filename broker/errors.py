"""The broker's exceptions: one tree under `BrokerError`, one class per
meaning. `api/problems.py` maps each class to an HTTP status; the message
(`detail`) is written for the client and never holds secrets or paths
outside the data directory.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error the broker reports to its callers."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequestError(BrokerError):
    """The request cannot be parsed (malformed JSON, wrong shape): 400."""


class ForbiddenError(BrokerError):
    """The caller is authenticated but not on the resource's list for this: 403."""


class NotFoundError(BrokerError):
    """An event type, partition, schema version or subscription does not exist: 404."""


class ConflictError(BrokerError):
    """The request conflicts with the current state (name taken, in use): 409."""


class PreconditionFailedError(BrokerError):
    """A stream cannot start from the given cursors: 412."""


class UnprocessableError(BrokerError):
    """The request is well-formed but invalid (definition, change, limits, cursors): 422."""


class InvalidFieldsError(UnprocessableError):
    """Fields of a request body break their constraints, one `Field "x" ...`
    line each: Nakadi's bean-validation problem, typed http://httpstatus.es/422."""


class UnavailableError(BrokerError):
    """The broker cannot serve this now (storage failed, shutting down): 503."""


class InsufficientStorageError(BrokerError):
    """The disk refused the write (ENOSPC, EFBIG): 507. Nothing was acknowledged."""
