"""The client's tunables as properties: one place for the checks its setters make."""

from __future__ import annotations

from ..config import check_timeout
from ._follower import Follower
from ._transport import Transport
from ._v2_backend import V2Backend

__all__ = ["ClientSettings"]


class ClientSettings:
    """Timeouts, retries, download bound and polling of an ``AsyncComfyClient`` (the native and v2 paths share them)."""

    _transport: Transport
    _follower: Follower
    _v2: V2Backend | None

    @property
    def timeout(self) -> float:
        """Seconds for one HTTP exchange (connect is capped at 10 s)."""
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        """Retries of a read on connection errors, timeouts, 5xx and 429."""
        return self._transport.max_retries

    @property
    def max_download_size(self) -> int:
        """Bytes one response may carry (downloads included); a larger one raises ``ServerError``."""
        return self._transport.max_download_size

    @property
    def poll_interval(self) -> float:
        """Seconds between checks of whether jobs need polling (no socket, a quiet one, foreign jobs)."""
        return self._follower.settings.poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        self._follower.settings.poll_interval = check_timeout(value, "poll_interval")

    @property
    def quiet_poll(self) -> float:
        """Seconds of socket silence after which unfinished jobs are reconciled by polling."""
        return self._follower.settings.quiet_poll

    @quiet_poll.setter
    def quiet_poll(self, value: float) -> None:
        self._follower.settings.quiet_poll = check_timeout(value, "quiet_poll")

    @property
    def outage_timeout(self) -> float:
        """Seconds the server may stay unreachable before unfinished jobs end ``failed``."""
        return self._follower.settings.outage_timeout

    @outage_timeout.setter
    def outage_timeout(self, value: float) -> None:
        self._follower.settings.outage_timeout = check_timeout(value, "outage_timeout")

    @property
    def settle_time(self) -> float:
        """Seconds a Comfy API v2 job's doubtful end (a lone ``expired``, which comfy-api-proxy 0.1.6 can
        report for a job that just succeeded) is read again before it is believed."""
        return self._follower.settings.settle_time

    @settle_time.setter
    def settle_time(self, value: float) -> None:
        self._follower.settings.settle_time = check_timeout(value, "settle_time")
        if self._v2 is not None:  # a session already open follows too
            self._v2.settle_time = self._follower.settings.settle_time
