"""The engine's clock: quorum tokens expire and audit records are stamped by it.

`PYHSM_CLOCK_SKIP_SECONDS` (read when the engine loads) moves this clock forward by that many seconds (tests use
it to reach a quorum token's expiry without sleeping ten minutes, through the same code path as real time). It can
only move time forward, so it can make approvals expire sooner but never keep an expired one alive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

Clock = Callable[[], float]


def _skip_seconds() -> float:
    raw = os.environ.get("PYHSM_CLOCK_SKIP_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else 0.0
    except ValueError:
        return 0.0


# Read once, when the engine loads: the variable is set for a whole process (tests start one with it), and an
# environment lookup on every call was 5% of a session key-pair generation (every audit record reads the clock).
_SKIP = _skip_seconds()


def now() -> float:
    return time.time() + _SKIP
