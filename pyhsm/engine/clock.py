"""The engine's clock: quorum tokens expire and audit records are stamped by it.

`PYHSM_CLOCK_SKIP_SECONDS` moves this clock forward by that many seconds (tests use it to reach a quorum token's
expiry without sleeping ten minutes, through the same code path as real time). It can only move time forward, so
it can make approvals expire sooner but never keep an expired one alive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

Clock = Callable[[], float]


def now() -> float:
    raw = os.environ.get("PYHSM_CLOCK_SKIP_SECONDS", "")
    try:
        skip = max(0.0, float(raw)) if raw else 0.0
    except ValueError:
        skip = 0.0
    return time.time() + skip
