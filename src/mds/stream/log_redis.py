"""The StreamLog on Redis, so any API replica resumes any client exactly.

Keys, for a symbol (names from :mod:`mds.constants`, under ``prefix``)::

    {SYMBOL}:epoch      STR   the history's identity, a random hex string
    {SYMBOL}:offset     STR   the last offset handed out (INCR)
    {SYMBOL}:entries    LIST  the newest ``max_messages`` entries, oldest first, each
                              ``{"o": offset, "t": micros since 1970, "m": message}``

Every operation is one Lua script, so it is atomic across processes: an append INCRs the
offset, RPUSHes and LTRIMs the entry and refreshes the expiry of all three keys together;
a read sees the head, the list and the epoch of one instant. The list therefore always
holds exactly the offsets ``head - LLEN + 1 … head``, which is how ``since`` finds its
slice without scanning.

History is lost when its keys go (a flush, an eviction, ``ttl_sec`` without an append).
Each script first checks that both the epoch and the offset keys exist; if either is
missing (partly lost), it starts a new history: a new epoch (drawn by the caller, since a
script may not draw random numbers), offset 0, an empty list. An old cursor then gets a
reset rather than offsets that happen to collide with new ones. Reads that start a
history set the expiry but do not refresh an existing one: only appends keep a log alive.

The entry JSON is assembled in the script around the caller's message JSON, so Lua's
cjson (which rounds floats to 14 digits) never re-encodes a message. Redis errors are not
translated: the caller (the WebSocket hub) decides what a failed append means.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from mds import constants as keys
from mds.domain.clock import Clock
from mds.stream.log import Entry, Replay, from_micros, to_micros

# KEYS: epoch, offset, entries. ARGV[1]: a fresh epoch, ARGV[2]: ttl in ms.
_ENSURE = """
local function ensure()
  local epoch = redis.call('GET', KEYS[1])
  local head = redis.call('GET', KEYS[2])
  if epoch and head then return epoch, tonumber(head) end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], 0, 'PX', ARGV[2])
  redis.call('DEL', KEYS[3])
  return ARGV[1], 0
end
"""

# ARGV[3]: max entries, ARGV[4]: append time (micros), ARGV[5]: message JSON.
_APPEND = (
    _ENSURE
    + """
local epoch = ensure()
local head = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[3], '{"o":' .. head .. ',"t":' .. ARGV[4] .. ',"m":' .. ARGV[5] .. '}')
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return {epoch, head}
"""
)

# ARGV[3]: the client's epoch, ARGV[4]: the client's offset.
# Returns {epoch, head, reset (0/1), entries after the offset}.
_SINCE = (
    _ENSURE
    + """
local epoch, head = ensure()
local offset = tonumber(ARGV[4])
local oldest = head - redis.call('LLEN', KEYS[3]) + 1
if epoch ~= ARGV[3] or offset > head or offset < oldest - 1 then
  return {epoch, head, 1, {}}
end
return {epoch, head, 0, redis.call('LRANGE', KEYS[3], offset - oldest + 1, -1)}
"""
)

# Returns {epoch, head, every entry kept}.
_ALL = (
    _ENSURE
    + """
local epoch, head = ensure()
return {epoch, head, redis.call('LRANGE', KEYS[3], 0, -1)}
"""
)

_HEAD = (
    _ENSURE
    + """
local epoch, head = ensure()
return {epoch, head}
"""
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStreamLog:
    """Replay log shared by every process on one Redis; the client is not closed by the log."""

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        *,
        max_messages: int = 5000,
        ttl_sec: float = 4 * 3600,
        prefix: str = keys.STREAM_LOG_PREFIX,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if ttl_sec < 0.001:
            raise ValueError("ttl_sec must be at least one millisecond")
        self.redis = redis
        self.prefix = prefix
        self._clock = clock
        self._max = max_messages
        self._ttl_ms = int(ttl_sec * 1000)
        self._append = redis.register_script(_APPEND)
        self._since = redis.register_script(_SINCE)
        self._all = redis.register_script(_ALL)
        self._head = redis.register_script(_HEAD)

    def _keys(self, symbol: str) -> list[str]:
        return [
            self.prefix + keys.stream_log_epoch_key(symbol),
            self.prefix + keys.stream_log_offset_key(symbol),
            self.prefix + keys.stream_log_entries_key(symbol),
        ]

    def _new_epoch(self) -> list[Any]:
        return [uuid.uuid4().hex, self._ttl_ms]

    async def append(self, symbol: str, message: dict[str, Any]) -> Entry:
        body = json.dumps(message)
        ts = self._clock.now()
        args = [*self._new_epoch(), self._max, to_micros(ts), body]
        epoch, offset = await self._append(keys=self._keys(symbol), args=args)
        return Entry(symbol, int(offset), _text(epoch), json.loads(body), ts)

    async def since(self, symbol: str, offset: int, epoch: str) -> Replay:
        args = [*self._new_epoch(), epoch, int(offset)]
        current, head, reset, raw = await self._since(keys=self._keys(symbol), args=args)
        current = _text(current)
        return Replay(int(head), current, self._parse(symbol, current, raw), reset=bool(reset))

    async def since_time(self, symbol: str, ts: datetime) -> list[Entry]:
        at = to_micros(ts)
        epoch, _, raw = await self._all(keys=self._keys(symbol), args=self._new_epoch())
        # Times are the appenders' clocks, nearly but not strictly in offset order across
        # processes, so the whole (bounded) list is filtered rather than bisected.
        return [e for e in self._parse(symbol, _text(epoch), raw) if to_micros(e.ts) >= at]

    async def head(self, symbol: str) -> tuple[int, str]:
        epoch, head = await self._head(keys=self._keys(symbol), args=self._new_epoch())
        return int(head), _text(epoch)

    @staticmethod
    def _parse(symbol: str, epoch: str, raw: list[bytes]) -> list[Entry]:
        out = []
        for item in raw:
            d = json.loads(item)
            out.append(Entry(symbol, d["o"], epoch, d["m"], from_micros(d["t"])))
        return out

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever built it."""
