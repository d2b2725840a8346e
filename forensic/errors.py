"""The one error hierarchy. The CLI catches `ForensicError` once and exits non-zero.

Every message is written for a person: what went wrong, where, and (in `hint`) how to fix it.
"""

from __future__ import annotations


class ForensicError(Exception):
    """Base class of every error this tool raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


class InputError(ForensicError):
    """A file, path or value given by the user cannot be used."""


class ParameterError(InputError):
    """An operation parameter (or the image given to it) is outside what the operation accepts.

    ``parameter`` names the offending parameter (``"image"`` for the image itself) so that
    callers, recipes and the CLI can point at it.
    """

    def __init__(self, operation: str, parameter: str, message: str, *, hint: str | None = None):
        super().__init__(f"{operation}: parameter '{parameter}' {message}", hint=hint)
        self.operation = operation
        self.parameter = parameter
        #: The message without the operation's name, for callers that name the step already.
        self.detail = f"parameter '{parameter}' {message}"


class KeyFileError(ForensicError):
    """An examiner key cannot be created, found or unlocked."""


class CaseError(ForensicError):
    """A case folder is missing, malformed, or locked."""


class PolicyError(ForensicError):
    """A policy file is missing, malformed, or forbids what was asked."""


class JournalError(ForensicError):
    """The journal cannot be read or appended to safely."""


class VerificationError(ForensicError):
    """A verification check failed: something was altered, lost or never recorded."""

    exit_code = 1


class KeyringError(CaseError):
    """A key rotation or revocation is malformed, or a key signed what it no longer may."""


class TimestampError(ForensicError):
    """A time-stamping authority cannot be reached, refuses, or answers with a token that
    does not verify (RFC 3161)."""
