"""Timestamps. Nothing here reads the clock: callers pass ``now`` in."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_timestamp(now: datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``: ``2026-11-24T07:30:00.000000Z``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (pass datetime.now(UTC))")
    utc = now.astimezone(UTC)
    # The year by hand: C's strftime writes years before 1000 without leading zeros ("1-01-01"),
    # which the journal's readers rightly refuse.
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")
