"""Outdoor temperature of a building: seasonal mean + daily sine + day-to-day weather.

::

    T(t) = seasonal(day of year) + amplitude * sin(2 pi (hour - 9) / 24) + anomaly(t)

    seasonal   12.5 - 8.5 cos(2 pi (doy - 20) / 365.25)   (4 °C mid-January, 21 °C in July)
    amplitude  3 to 5 K, drawn per day (coldest near 03:00, warmest near 15:00)
    anomaly    -6 to +6 K drawn per day, linearly interpolated between local noons

Every building of a farm has its own weather (its own seed key), the same for all its
boxes. Pure function of time: no state, no I/O.
"""

from __future__ import annotations

import math

from wesh.sim.clock import CALENDAR
from wesh.sim.rng import uniform

__all__ = ["OutdoorClimate", "seasonal_mean_c"]

_WEATHER_KEY = 0x3EA7


def seasonal_mean_c(day: int) -> float:
    """Return the climatological mean temperature of local day ``day`` (days since 1970)."""
    doy = day % 365.2425
    return 12.5 - 8.5 * math.cos(2 * math.pi * (doy - 20) / 365.25)


class OutdoorClimate:
    """The outdoor temperature of one building (deterministic for its seed and number)."""

    def __init__(self, *, seed: int, building: int) -> None:
        self.seed = seed
        self.building = building
        self._days: dict[int, tuple[float, float]] = {}

    def _day(self, day: int) -> tuple[float, float]:
        """Return ``(anomaly, amplitude)`` of a local day (cached: pure function of the day)."""
        cached = self._days.get(day)
        if cached is None:
            keys = (self.seed, self.building, _WEATHER_KEY, day)
            # Sum of three uniforms: a bell shape on [-6, +6] K.
            anomaly = 4.0 * sum(uniform(*keys, k) for k in range(3)) - 6.0
            amplitude = 3.0 + 2.0 * uniform(*keys, 3)
            if len(self._days) > 8:
                self._days.clear()
            cached = self._days[day] = (anomaly, amplitude)
        return cached

    def _anomaly_of_day(self, day: int) -> float:
        return self._day(day)[0]

    def _amplitude_of_day(self, day: int) -> float:
        return self._day(day)[1]

    def daily_mean_c(self, day: int) -> float:
        """Return the mean outdoor temperature of local day ``day``."""
        return seasonal_mean_c(day) + self._anomaly_of_day(day)

    def temperature_c(self, ts: float) -> float:
        """Return the outdoor temperature at POSIX time ``ts``."""
        local = CALENDAR.local_seconds(ts)
        day = int(local // 86400)
        hour = (local % 86400) / 3600
        # Interpolate the anomaly between the noons around ``ts``.
        if hour >= 12:
            d0, frac = day, (hour - 12) / 24
        else:
            d0, frac = day - 1, (hour + 12) / 24
        anomaly = (1 - frac) * self._anomaly_of_day(d0) + frac * self._anomaly_of_day(d0 + 1)
        daily = self._amplitude_of_day(day) * math.sin(2 * math.pi * (hour - 9) / 24)
        return seasonal_mean_c(day) + daily + anomaly
