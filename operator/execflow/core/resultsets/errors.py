"""The errors of the ResultSet core, each carrying the reason word it ends a ResultSet with.

A ResultSet that meets one of these goes to phase Failed with the error's `reason` and message,
so the classes are the reasons a user can meet: data that is not what was written
(ChecksumMismatch), data that cannot be decrypted (DecryptionFailed), a Secret value that is not
a key (InvalidKey), an expression that does not compile (InvalidExpression) or fails on an item
(ExpressionError), and a whole-list expression over more results than allowed (TooLarge).
"""

from __future__ import annotations

from typing import ClassVar

from execflow.api.reasons import Reason


class ResultSetError(Exception):
    """A failure a ResultSet reports with `reason` and the message."""

    reason: ClassVar[Reason]


class ChecksumMismatchError(ResultSetError):
    """Stored data is not what was written: a segment's or an item's sha256 differs, or a
    segment does not decompress or parse."""

    reason = Reason.CHECKSUM_MISMATCH


class DecryptionFailedError(ResultSetError):
    """An encrypted segment cannot be decrypted: its key is not available, or the data (or the
    place it is read from) is not the one it was encrypted for."""

    reason = Reason.DECRYPTION_FAILED


class InvalidKeyError(ResultSetError):
    """A Secret value that is neither 32 bytes nor base64 text of 32 bytes."""

    reason = Reason.INVALID_KEY


class InvalidExpressionError(ResultSetError):
    """An expression of the spec that does not compile; `where` is its field path, `position`
    the (line, column) of the problem when there is one."""

    reason = Reason.INVALID_EXPRESSION

    def __init__(
        self, message: str, *, where: str, expression: str, position: tuple[int, int] | None
    ) -> None:
        super().__init__(message)
        self.where = where
        self.expression = expression
        self.position = position


class ExpressionFailedError(ResultSetError):
    """An expression that fails when evaluated; `task` names the item it failed on (None for a
    whole-list expression)."""

    reason = Reason.EXPRESSION_ERROR

    def __init__(self, message: str, *, where: str, expression: str, task: str | None) -> None:
        super().__init__(message)
        self.where = where
        self.expression = expression
        self.task = task


class TooLargeError(ResultSetError):
    """A whole-list expression over more results than `limit`."""

    reason = Reason.TOO_LARGE

    def __init__(self, message: str, *, limit: int, count: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.count = count
