"""Home timelines cached in Redis, one sorted set per user.

`timeline:<user>` holds tweet ids scored by id (ids grow with time, so the
highest score is the newest tweet), capped at TIMELINE_SIZE entries, plus a
member "0" scored 0 that marks the timeline as present even when it holds
no tweet. A timeline is complete down to its oldest entry: tweets are fanned
out only into timelines that exist, and a missing one is rebuilt whole from
the source of truth (follows and the tweet service), so a partial timeline
never looks complete.

A rebuild reads the source, which takes a while; a tweet fanned out in that
while would be missed. So the rebuild first leaves a token in
`timeline:<user>:build`; fan-out that finds no timeline but a token parks the
tweet in `timeline:<user>:pending`, and the rebuild's last step merges those
in, atomically, only if its token is still there. Dropping a timeline
(follow, unfollow, a user deleted) deletes all three keys, which also voids
any rebuild that started from the old follows.
"""
from __future__ import annotations

import secrets

import redis

from common.forking import in_forked_children

SENTINEL = "0"
BUILD_SECONDS = 30  # a rebuild that takes longer than this is abandoned

# KEYS: timeline, build token, pending, for each user. ARGV: tweet id, cap.
_FAN_OUT = """
local id, cap = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('ZADD', KEYS[i], id, id)
    redis.call('ZREMRANGEBYRANK', KEYS[i], 1, -(cap + 1))
  elseif redis.call('EXISTS', KEYS[i + 1]) == 1 then
    redis.call('ZADD', KEYS[i + 2], id, id)
    redis.call('EXPIRE', KEYS[i + 2], ARGV[3])
  end
end
return 0
"""

# KEYS: timeline, build token, pending. ARGV: token, cap, tweet ids...
_FINISH_REBUILD = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[1], 0, '0')
for i = 3, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    args[#args + 1] = ARGV[j]
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[1], KEYS[3], 'AGGREGATE', 'MAX')
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[2]) + 1))
return 1
"""

KEYS_PER_SCRIPT = 300  # users per script call: Redis is single-threaded, keep each call short


def _keys(user_id: int) -> tuple[str, str, str]:
    base = f"timeline:{user_id}"
    return base, f"{base}:build", f"{base}:pending"


class TimelineCache:
    def __init__(self, url: str, size: int, socket_timeout: float):
        self.size = size
        self.redis = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                          socket_connect_timeout=socket_timeout)
        # A forked worker must not share the master's sockets.
        in_forked_children(self.redis, lambda client: client.connection_pool.reset())
        self._fan_out = self.redis.register_script(_FAN_OUT)
        self._finish = self.redis.register_script(_FINISH_REBUILD)

    def close(self) -> None:
        self.redis.close()

    def page(self, user_id: int, before: int | None, count: int) -> tuple[list[int], bool, bool]:
        """Up to `count` tweet ids older than `before`, newest first; then
        whether the timeline exists, and whether it is full (older entries
        may have been dropped from it)."""
        key = _keys(user_id)[0]
        top = f"({before}" if before is not None else "+inf"
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrangebyscore(key, top, f"({SENTINEL}", start=0, num=count)
            pipe.zcard(key)
            ids, size = pipe.execute()
        return [int(i) for i in ids], size > 0, size - 1 >= self.size

    def begin_rebuild(self, user_id: int) -> str:
        _, build, pending = _keys(user_id)
        token = secrets.token_hex(8)
        with self.redis.pipeline() as pipe:
            pipe.delete(pending)
            pipe.set(build, token, ex=BUILD_SECONDS)
            pipe.execute()
        return token

    def finish_rebuild(self, user_id: int, token: str, tweet_ids: list[int]) -> bool:
        """Store the rebuilt timeline, with what was fanned out meanwhile;
        False if it was dropped since the rebuild began."""
        ids = tweet_ids[:self.size]
        return bool(self._finish(keys=_keys(user_id), args=[token, self.size, *ids]))

    def fan_out(self, tweet_id: int, user_ids: list[int]) -> None:
        """Add the tweet to the timelines of `user_ids` that exist (or are being rebuilt)."""
        for start in range(0, len(user_ids), KEYS_PER_SCRIPT):
            keys = [k for u in user_ids[start:start + KEYS_PER_SCRIPT] for k in _keys(u)]
            self._fan_out(keys=keys, args=[tweet_id, self.size, BUILD_SECONDS])

    def remove(self, tweet_ids: list[int], user_ids: list[int]) -> None:
        """Take tweets out of the timelines of `user_ids`."""
        if not tweet_ids:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                timeline, _, pending = _keys(user_id)
                pipe.zrem(timeline, *tweet_ids)
                pipe.zrem(pending, *tweet_ids)
            pipe.execute()

    def drop(self, user_ids: list[int]) -> None:
        """Forget these timelines (and void their rebuilds): the next read rebuilds them."""
        for start in range(0, len(user_ids), KEYS_PER_SCRIPT):
            self.redis.delete(*(k for u in user_ids[start:start + KEYS_PER_SCRIPT] for k in _keys(u)))
