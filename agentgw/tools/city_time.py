"""``city_datetime {city}``: the current date and time of a city (SPEC §6, §11.7).

A city is found, in order, as: a well-known name (English or Chinese, table below), a
full IANA zone name (``Asia/Shanghai``), or the last component of any IANA zone, matched
case-insensitively with spaces as underscores (``new york`` → ``America/New_York``).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from agentgw.errors import ToolError
from agentgw.tools._args import opt_str
from agentgw.tools.base import ToolContext

DEFAULT_CITY = "Shanghai"
SOURCE = "system clock + IANA time zone database"
# Not strftime("%A"): that follows the process locale.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Cities people ask about whose names are not the last component of an IANA zone.
_CITY_ZONES: dict[str, str] = {
    "beijing": "Asia/Shanghai",
    "peking": "Asia/Shanghai",
    "guangzhou": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai",
    "hangzhou": "Asia/Shanghai",
    "nanjing": "Asia/Shanghai",
    "suzhou": "Asia/Shanghai",
    "tianjin": "Asia/Shanghai",
    "chengdu": "Asia/Shanghai",
    "wuhan": "Asia/Shanghai",
    "xian": "Asia/Shanghai",
    "xi'an": "Asia/Shanghai",
    "osaka": "Asia/Tokyo",
    "kyoto": "Asia/Tokyo",
    "busan": "Asia/Seoul",
    "delhi": "Asia/Kolkata",
    "new_delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "san_francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "san_diego": "America/Los_Angeles",
    "washington": "America/New_York",
    "washington_dc": "America/New_York",
    "boston": "America/New_York",
    "miami": "America/New_York",
    "atlanta": "America/New_York",
    "houston": "America/Chicago",
    "dallas": "America/Chicago",
    "munich": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "milan": "Europe/Rome",
    "barcelona": "Europe/Madrid",
    "geneva": "Europe/Zurich",
    "st_petersburg": "Europe/Moscow",
    "rio_de_janeiro": "America/Sao_Paulo",
    "melbourne": "Australia/Melbourne",
    "上海": "Asia/Shanghai",
    "北京": "Asia/Shanghai",
    "广州": "Asia/Shanghai",
    "深圳": "Asia/Shanghai",
    "杭州": "Asia/Shanghai",
    "南京": "Asia/Shanghai",
    "苏州": "Asia/Shanghai",
    "天津": "Asia/Shanghai",
    "成都": "Asia/Shanghai",
    "重庆": "Asia/Shanghai",
    "武汉": "Asia/Shanghai",
    "西安": "Asia/Shanghai",
    "香港": "Asia/Hong_Kong",
    "澳门": "Asia/Macau",
    "台北": "Asia/Taipei",
    "东京": "Asia/Tokyo",
    "大阪": "Asia/Tokyo",
    "首尔": "Asia/Seoul",
    "新加坡": "Asia/Singapore",
    "曼谷": "Asia/Bangkok",
    "迪拜": "Asia/Dubai",
    "伦敦": "Europe/London",
    "巴黎": "Europe/Paris",
    "柏林": "Europe/Berlin",
    "莫斯科": "Europe/Moscow",
    "纽约": "America/New_York",
    "洛杉矶": "America/Los_Angeles",
    "旧金山": "America/Los_Angeles",
    "芝加哥": "America/Chicago",
    "多伦多": "America/Toronto",
    "悉尼": "Australia/Sydney",
}


@functools.cache
def _zones_by_city() -> dict[str, str]:
    out: dict[str, str] = {}
    # Sorted so the choice is stable when two regions share a last component.
    for zone in sorted(zoneinfo.available_timezones()):
        if "/" in zone and not zone.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            out.setdefault(zone.rsplit("/", 1)[1].lower(), zone)
    return out


def zone_for_city(city: str) -> str | None:
    """The IANA zone of ``city``, or None."""
    key = "_".join(city.strip().lower().split())
    if key in _CITY_ZONES:
        return _CITY_ZONES[key]
    for zone in (city.strip(), city.strip().replace(" ", "_")):
        if "/" in zone and zone in zoneinfo.available_timezones():
            return zone
    return _zones_by_city().get(key) or _zones_by_city().get(key.replace("-", "_"))


def now_in(zone: str) -> dt.datetime:
    """The current time in ``zone``."""
    return dt.datetime.now(zoneinfo.ZoneInfo(zone))


async def city_datetime(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """``{city}`` → ``{city, timezone, date, weekday, time, iso, source}``."""
    city = opt_str(args, "city", max_len=100, default=DEFAULT_CITY) or DEFAULT_CITY
    zone = zone_for_city(city)
    if zone is None:
        raise ToolError(
            f"unknown city: {city} (use a city name such as 'Tokyo' or an IANA zone such as 'Europe/Paris')",
            "unknown_city",
        )
    now = now_in(zone).replace(microsecond=0)
    return {
        "city": city,
        "timezone": zone,
        "date": now.date().isoformat(),
        "weekday": WEEKDAYS[now.weekday()],
        "time": now.strftime("%H:%M:%S"),
        "iso": now.isoformat(),
        "source": SOURCE,
    }
