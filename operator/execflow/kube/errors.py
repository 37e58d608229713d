"""API errors sorted by what the caller should do about them, as kopf sorts handler errors.

The API server's answer decides the class, not the call site:

- `InvalidError` (400, 413, 422): the request can never succeed as it is. The object it was made for
  ends `Failed` with a reason and the server's own message; it is never retried.
- `ForbiddenError` (403): missing permission, or an admission policy or quota said no. It may pass
  later (a quota frees up, RBAC is fixed), so it is retried with backoff and reported.
- `NotFoundError` (404): the object (or its namespace) is gone; for a delete, that is success.
- `ConflictError` (409): someone else changed the object; re-read and decide again.
  `AlreadyExistsError` (a 409 on create) means a deterministic child exists already, which is
  usually success.
- `UnavailableError` (429, 5xx, timeouts, refused connections): transient; retried with backoff.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import urllib3
from kubernetes.client.rest import ApiException

TRANSPORT_ERRORS = (
    ApiException,
    urllib3.exceptions.HTTPError,
    aiohttp.ClientError,
    OSError,
    TimeoutError,
)
"""What the Kubernetes client and the HTTP transports raise for a failed request."""


class ApiError(Exception):
    """A failed API request: the HTTP status, the server's reason word and message."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class InvalidError(ApiError):
    """The server refused the request for good (400, 413, 422)."""


class ForbiddenError(ApiError):
    """Not allowed now (403): RBAC, an admission policy, or an exhausted quota."""


class NotFoundError(ApiError):
    """The object or its namespace does not exist (404)."""


class ConflictError(ApiError):
    """The object changed meanwhile (409)."""


class AlreadyExistsError(ConflictError):
    """A create found an object of that name already there (409 AlreadyExists)."""


class UnavailableError(ApiError):
    """A transient failure: throttled, server error, timeout or no connection."""


def _parsed(payload: str | bytes | None) -> dict[str, Any]:
    try:
        parsed = json.loads(payload or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_BY_STATUS: dict[int, tuple[type[ApiError], str]] = {
    400: (InvalidError, "BadRequest"),
    413: (InvalidError, "RequestEntityTooLarge"),
    422: (InvalidError, "Invalid"),
    403: (ForbiddenError, "Forbidden"),
    404: (NotFoundError, "NotFound"),
    409: (ConflictError, "Conflict"),
}


def classify(error: BaseException) -> ApiError:
    """The ApiError for an exception raised by the Kubernetes client or its transport."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ApiException):
        return _from_response(error)
    if isinstance(error, TRANSPORT_ERRORS):
        return UnavailableError(0, type(error).__name__, str(error) or type(error).__name__)
    raise TypeError(f"not an API error: {error!r}") from error


def _from_response(error: ApiException) -> ApiError:
    return from_reply(int(error.status or 0), str(error.reason or ""), error.body, error.headers)


def from_reply(
    status: int, phrase: str, payload: str | bytes | None, headers: Mapping[str, str] | None
) -> ApiError:
    """The ApiError for a reply with this HTTP status, reason phrase, body and headers."""
    body = _parsed(payload)
    reason = str(body.get("reason") or phrase or "")
    message = str(body.get("message") or phrase or f"HTTP {status}")
    known = _BY_STATUS.get(status)
    if known is None:
        return UnavailableError(status, reason or "Unavailable", message, _retry_after(headers))
    kind, default_reason = known
    if kind is ConflictError and reason == "AlreadyExists":
        kind = AlreadyExistsError
    return kind(status, reason or default_reason, message)
