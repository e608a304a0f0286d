"""Calendar days as people name them: in the configured zone (Asia/Tokyo), never UTC days."""

from __future__ import annotations

import datetime as dt
from typing import overload

__all__ = ["local_days"]


@overload
def local_days(first: dt.date, last: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]: ...
@overload
def local_days(
    first: dt.date | None, last: dt.date | None, zone: dt.tzinfo
) -> tuple[dt.datetime | None, dt.datetime | None]: ...
def local_days(
    first: dt.date | None, last: dt.date | None, zone: dt.tzinfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The instants [00:00 of ``first``, 00:00 of the day after ``last``) in ``zone``; None for a
    bound not given. A search "from the 1st to the 3rd" covers all of the 3rd."""
    start = dt.datetime.combine(first, dt.time(), zone) if first else None
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone) if last else None
    return start, end
