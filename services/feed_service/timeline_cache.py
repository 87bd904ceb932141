"""Home timelines cached in Redis, with what it takes to serve a page from
Redis alone.

`timeline:<user>` holds tweet ids scored by id (ids grow with time, so the
highest score is the newest tweet), capped at TIMELINE_SIZE entries, plus a
member "0" scored 0 that marks the timeline as present even when it holds
no tweet. A timeline is complete down to its oldest entry: tweets are fanned
out only into timelines that exist, and a missing one is rebuilt whole from
the source of truth (follows and the tweet service), so a partial timeline
never looks complete. `timeline:<user>:following` (whom the user followed
when it was rebuilt, plus "0") lives and dies with it.

A rebuild reads the source, which takes a while; a tweet fanned out in that
while would be missed. So the rebuild first leaves a token in
`timeline:<user>:build`; fan-out that finds no timeline but a token parks the
tweet in `timeline:<user>:pending`, and the rebuild's last step merges those
in, atomically, only if its token is still there. Dropping a timeline
(follow, unfollow, a user deleted) deletes all four keys, which also voids
any rebuild that started from the old follows.

Beside them: `tweet:<id>` and `author:<id>`, the JSON a timeline entry is
made of ("-": deleted, so a late refill cannot bring it back), and
`feed:big`, the authors merged in at read time (plus "0").
"""
from __future__ import annotations

import secrets

import redis

from common.forking import in_forked_children

SENTINEL = "0"
GONE = b"-"
BUILD_SECONDS = 30  # a rebuild that takes longer than this is abandoned
TWEET_SECONDS = 7 * 24 * 3600  # tweets never change: kept until deleted (or evicted)
# Authors change (PATCH) and go: their events drop them here, and this
# bounds what a refill racing with such an event could leave behind.
AUTHOR_SECONDS = 60
BIG = "feed:big"

# KEYS: timeline, build token, pending, following, for each user. ARGV: tweet id, cap.
_FAN_OUT = """
local id, cap = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS, 4 do
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

# KEYS: timeline, build token, pending, following. ARGV: token, cap,
# number of followees, followee ids..., tweet ids...
_FINISH_REBUILD = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZADD', KEYS[1], 0, '0')
redis.call('SADD', KEYS[4], '0')
local followees = tonumber(ARGV[3])
for i = 4, 3 + followees, 500 do
  redis.call('SADD', KEYS[4], unpack(ARGV, i, math.min(i + 499, 3 + followees)))
end
for i = 4 + followees, #ARGV, 500 do
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

# KEYS: timeline, following, big. ARGV: top score, count. One round trip
# for a page: its ids, whether the timeline is there (and full), the big
# authors it follows, and the bodies and authors of its tweets.
_PAGE = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '(0', 'LIMIT', 0, ARGV[2])
local bodies, authors, seen = {}, {}, {}
for i, id in ipairs(ids) do
  local body = redis.call('GET', 'tweet:' .. id)
  bodies[i] = body
  if body and body ~= '-' then
    local user = string.match(body, '"user_id":(%d+)')
    if user and not seen[user] then
      seen[user] = true
      authors[#authors + 1] = user
      authors[#authors + 1] = redis.call('GET', 'author:' .. user)
    end
  end
end
return {ids, redis.call('ZCARD', KEYS[1]), redis.call('EXISTS', KEYS[2]),
        redis.call('EXISTS', KEYS[3]), redis.call('SINTER', KEYS[2], KEYS[3]), bodies, authors}
"""

KEYS_PER_SCRIPT = 250  # users per script call: Redis is single-threaded, keep each call short


def _keys(user_id: int) -> tuple[str, str, str, str]:
    base = f"timeline:{user_id}"
    return base, f"{base}:build", f"{base}:pending", f"{base}:following"


class Page:
    """What the cache holds for one page of a timeline."""

    def __init__(self, ids: list[int], exists: bool, full: bool, big: list[int] | None,
                 bodies: dict[int, bytes | None], authors: dict[int, bytes | None]):
        self.ids = ids  # newest first
        self.exists = exists  # false: rebuild it
        self.full = full  # older entries may have been dropped
        self.big = big  # followees merged at read time; None: feed:big must be refilled
        self.bodies = bodies  # tweet:<id> of each id (None: not kept)
        self.authors = authors  # author:<id> of their authors (None: not kept)


class TimelineCache:
    def __init__(self, url: str, size: int, socket_timeout: float):
        self.size = size
        self.redis = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                          socket_connect_timeout=socket_timeout)
        # A forked worker must not share the master's sockets.
        in_forked_children(self.redis, lambda client: client.connection_pool.reset())
        self._fan_out = self.redis.register_script(_FAN_OUT)
        self._finish = self.redis.register_script(_FINISH_REBUILD)
        self._page = self.redis.register_script(_PAGE)

    def close(self) -> None:
        self.redis.close()

    # -- timelines

    def page(self, user_id: int, before: int | None, count: int) -> Page:
        """Up to `count` tweet ids older than `before`, and what to merge in."""
        timeline, _, _, following = _keys(user_id)
        top = f"({before}" if before is not None else "+inf"
        ids, size, has_following, has_big, big, bodies, authors = self._page(
            keys=[timeline, following, BIG], args=[top, count])
        ids = [int(i) for i in ids]
        exists = size > 0 and bool(has_following)
        big_ids = sorted(int(i) for i in big if i != b"0") if has_big else None
        return Page(ids, exists, size - 1 >= self.size, big_ids, dict(zip(ids, bodies)),
                    {int(authors[i]): authors[i + 1] for i in range(0, len(authors), 2)})

    def begin_rebuild(self, user_id: int) -> str:
        _, build, pending, _ = _keys(user_id)
        token = secrets.token_hex(8)
        with self.redis.pipeline() as pipe:
            pipe.delete(pending)
            pipe.set(build, token, ex=BUILD_SECONDS)
            pipe.execute()
        return token

    def finish_rebuild(self, user_id: int, token: str, followees: list[int],
                       tweet_ids: list[int]) -> bool:
        """Store the rebuilt timeline, with what was fanned out meanwhile;
        False if it was dropped since the rebuild began."""
        args = [token, self.size, len(followees), *followees, *tweet_ids[:self.size]]
        return bool(self._finish(keys=_keys(user_id), args=args))

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
                timeline, _, pending, _ = _keys(user_id)
                pipe.zrem(timeline, *tweet_ids)
                pipe.zrem(pending, *tweet_ids)
            pipe.execute()

    def drop(self, user_ids: list[int]) -> None:
        """Forget these timelines (and void their rebuilds): the next read rebuilds them."""
        for start in range(0, len(user_ids), KEYS_PER_SCRIPT):
            self.redis.delete(*(k for u in user_ids[start:start + KEYS_PER_SCRIPT] for k in _keys(u)))

    # -- what entries are made of

    def bodies(self, tweet_ids: list[int]) -> list[bytes | None]:
        return self.redis.mget([f"tweet:{i}" for i in tweet_ids]) if tweet_ids else []

    def authors(self, user_ids: list[int]) -> list[bytes | None]:
        return self.redis.mget([f"author:{i}" for i in user_ids]) if user_ids else []

    def keep(self, tweets: dict[int, bytes], authors: dict[int, bytes]) -> None:
        """Remember tweets and authors read from their services, unless a
        deletion was recorded meanwhile (SET NX: a tombstone stays)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tweet_id, body in tweets.items():
                pipe.set(f"tweet:{tweet_id}", body, nx=True, ex=TWEET_SECONDS)
            for user_id, body in authors.items():
                pipe.set(f"author:{user_id}", body, nx=True, ex=AUTHOR_SECONDS)
            pipe.execute()

    def tweet_deleted(self, tweet_id: int) -> None:
        self.redis.set(f"tweet:{tweet_id}", GONE, ex=TWEET_SECONDS)

    def author_changed(self, user_id: int, deleted: bool) -> None:
        with self.redis.pipeline() as pipe:
            if deleted:
                pipe.set(f"author:{user_id}", GONE, ex=AUTHOR_SECONDS)
                pipe.srem(BIG, user_id)
            else:
                pipe.delete(f"author:{user_id}")
            pipe.execute()

    # -- the authors merged at read time

    def big(self, user_id: int) -> bool | None:
        """Whether the author is merged at read time; None if the list is lost."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(BIG)
            pipe.sismember(BIG, user_id)
            listed, member = pipe.execute()
        return bool(member) if listed else None

    def set_big(self, user_id: int, big: bool) -> None:
        """Note whether an author is merged at read time (if the set is there:
        a missing set is refilled whole from the database)."""
        if big:
            self.redis.eval("if redis.call('EXISTS', KEYS[1]) == 1 then "
                            "redis.call('SADD', KEYS[1], ARGV[1]) end", 1, BIG, user_id)
        else:
            self.redis.srem(BIG, user_id)

    def fill_big(self, user_ids: list[int]) -> None:
        with self.redis.pipeline() as pipe:
            pipe.delete(BIG)
            pipe.sadd(BIG, SENTINEL, *user_ids)
            pipe.execute()
