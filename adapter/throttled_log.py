"""Log lines that a client can cause, written at most once per interval per kind.

A malformed request, a refused connection or a timed-out header read is the client's fault and can be
repeated thousands of times a second: one line per event would let anyone flood the log (and the disk of
whoever ships it). The first event of a kind is written at once; later ones within ``interval`` are
counted and reported with the next line of that kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.level = level
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, kind: str, message: str, *args: object) -> bool:
        """Write ``message % args`` unless a line of ``kind`` was written within the interval."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        skipped = self._suppressed.pop(kind, 0)
        if skipped:
            message += f" ({skipped} more like it since the last such line)"
        self.logger.log(self.level, message, *args)
        return True


class ClientErrorLogger(logging.Logger):
    """The logger handed to aiohttp's request handler.

    aiohttp reports a request it cannot parse with ``logger.exception`` — an ERROR and a traceback per
    malformed request. Those are client errors: one throttled warning line, no traceback. Anything else
    it logs passes through unchanged.
    """

    def __init__(self, name: str, throttle_seconds: float = 10.0) -> None:
        super().__init__(name)
        self.parent = logging.getLogger("adapter")
        self._throttled = ThrottledLog(self, throttle_seconds)

    def exception(self, msg: object, *args: object, exc_info: object = True, **kwargs: object) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else None
        what = f"{error.__class__.__name__}: {error}" if error is not None else "unreadable request"
        text = str(msg) % args if args else str(msg)
        self._throttled.log(what.split(":", 1)[0], "%s: %s", text, " ".join(what.split())[:200])
