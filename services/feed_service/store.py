"""The feed service's data-access layer: follows in its database, home
timelines in Redis, and the events that change them. It owns the
transactions; the views only parse, call it and shape the answer.

A home timeline is the user's own tweets and those of whom they follow,
newest first. It is served from the Redis cache when there is one and
fan-out is on: each new tweet is added to its followers' cached timelines
as its event arrives, except for authors with more than
FANOUT_MAX_FOLLOWERS followers, whose tweets are merged in at read time.
Otherwise (no Redis, fan-out off, Redis down, or paging past the cached
entries) the timeline is merged at read time from the follows and the
tweet service. Both give the same answer.
"""
from __future__ import annotations

import logging

import orjson

from redis.exceptions import RedisError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.db import Database, utcnow
from common.inbox import (TweetCreated, TweetDeleted, UserDeleted, UserUpdated, dialect_insert,
                          first_seen)
from common.problems import DependencyUnavailable, Problem
from common.service_client import ServiceUnavailable
from common.user_locks import lock_users, record_deletion

from .models import DeletedUser, Follow, FollowerCount, ReceivedEvent
from .settings import FeedSettings
from .sources import Tweets, Users, client
from .timeline_cache import GONE, TimelineCache

log = logging.getLogger(__name__)


def _unavailable(what: str) -> DependencyUnavailable:
    return DependencyUnavailable(f"The {what} is unavailable; nothing was changed.")


_FOLLOWS = Follow.__table__


class FeedStore:
    def __init__(self, settings: FeedSettings):
        self.db = Database(settings)
        self.users = Users(client(settings, "user service", settings.user_service_url))
        self.tweets = Tweets(client(settings, "tweet service", settings.tweet_service_url))
        # Without fan-out no timeline is cached: each is merged at read time.
        self.cache = None
        if settings.redis_url and settings.fanout_enabled:
            self.cache = TimelineCache(settings.redis_url, settings.timeline_size,
                                       settings.redis_socket_timeout)
        self.max_followers = settings.fanout_max_followers

    def close(self) -> None:
        self.users.client.close()
        self.tweets.client.close()
        if self.cache is not None:
            self.cache.close()
        self.db.dispose()

    # -- follows

    def get_follow(self, follower_id: int, followee_id: int):
        rows = self.db.execute(select(_FOLLOWS).where(
            _FOLLOWS.c.follower_id == follower_id, _FOLLOWS.c.followee_id == followee_id))
        return rows[0] if rows else None

    def follow(self, follower_id: int, followee_id: int) -> tuple[object, bool]:
        """The follow, and whether it is new."""
        if follower_id == followee_id:
            raise Problem(422, "A user cannot follow themselves.",
                          type="urn:chirp:problem:self-follow",
                          errors=[{"field": "followee_id", "message": "same as follower_id"}])
        # Asked even for a follow that exists: a user deleted a moment ago
        # keeps their follows until the deletion's event removes them.
        self._require_users(follower_id, followee_id)
        existing = self.get_follow(follower_id, followee_id)
        if existing is not None:
            return existing, False
        with self.db.session() as session:
            # Either the users' deletion, if one is being applied, commits
            # first and is seen here, or it waits and deletes this follow.
            lock_users(session, [follower_id, followee_id])
            gone = session.scalars(select(DeletedUser.user_id).where(
                DeletedUser.user_id.in_([follower_id, followee_id]))).first()
            if gone is not None:
                raise Problem(404, f"User {gone} does not exist.")
            follow = Follow(follower_id=follower_id, followee_id=followee_id, created_at=utcnow())
            session.add(follow)
            try:
                session.flush()
            except IntegrityError:  # the same follow, committed a moment ago
                session.rollback()
                return self.get_follow(follower_id, followee_id), False
            followers = self._count_followers(session, followee_id, +1)
            big = followee_id if followers > self.max_followers else None
            self._commit_with_timeline_dropped(session, follower_id, now_big=big)
            return follow, True

    def unfollow(self, follower_id: int, followee_id: int) -> None:
        with self.db.session() as session:
            gone = session.execute(delete(Follow).where(
                Follow.follower_id == follower_id, Follow.followee_id == followee_id,
            ).returning(Follow.id)).first()
            if gone is None:
                return
            followers = self._count_followers(session, followee_id, -1)
            self._commit_with_timeline_dropped(session, follower_id)
            if self.cache is not None and followers <= self.max_followers:
                try:  # after the commit: while it is still listed it is merged as well, harmlessly
                    self.cache.set_big(followee_id, False)
                except RedisError:
                    log.warning("user %s still listed as merged at read time", followee_id)

    def follows(self, *, follower_id: int | None, followee_id: int | None,
                after_id: int | None, count: int) -> list:
        """Follows of (or to) one user, newest first."""
        statement = select(_FOLLOWS).order_by(Follow.id.desc()).limit(count)
        if follower_id is not None:
            statement = statement.where(Follow.follower_id == follower_id)
        else:
            statement = statement.where(Follow.followee_id == followee_id)
        if after_id is not None:
            statement = statement.where(Follow.id < after_id)
        return self.db.execute(statement)

    def _require_users(self, *user_ids: int) -> None:
        try:
            found = self.users.existing(list(user_ids))
        except ServiceUnavailable:
            raise _unavailable("user service") from None
        for user_id in user_ids:
            if user_id not in found:
                raise Problem(404, f"User {user_id} does not exist.")

    def _count_followers(self, session: Session, user_id: int, delta: int) -> int:
        """Change the user's follower count; the new count."""
        statement = dialect_insert(session, FollowerCount).values(user_id=user_id, followers=delta)
        return session.execute(statement.on_conflict_do_update(
            index_elements=[FollowerCount.user_id],
            set_={"followers": FollowerCount.followers + delta},
        ).returning(FollowerCount.followers)).scalar_one()

    def _commit_with_timeline_dropped(self, session: Session, user_id: int,
                                      now_big: int | None = None) -> None:
        """Commit a change to whom `user_id` follows, and drop their cached
        timeline so the next read rebuilds it. Dropped before the commit (if
        Redis is down, nothing is changed: a stale timeline would outlive the
        outage) and again after it, in case a read rebuilt it in between
        from the old follows. An author who now has too many followers to
        fan out is listed as merged at read time before the commit: listed
        early, their tweets are merely found twice and counted once."""
        if self.cache is not None:
            try:
                self.cache.drop([user_id])
                if now_big is not None:
                    self.cache.set_big(now_big, True)
            except RedisError:
                session.rollback()
                raise _unavailable("timeline cache") from None
        session.commit()
        if self.cache is not None:
            try:
                self.cache.drop([user_id])
            except RedisError:
                log.warning("timeline of user %s not dropped after commit", user_id)

    def _followees(self, user_id: int) -> list[int]:
        return [row.followee_id for row in self.db.execute(
            select(Follow.followee_id).where(Follow.follower_id == user_id))]

    def _followers(self, session: Session, user_id: int, limit: int | None = None) -> list[int]:
        statement = select(Follow.follower_id).where(Follow.followee_id == user_id)
        return list(session.scalars(statement.limit(limit)))

    def _fill_big(self) -> set[int]:
        """List in Redis the authors merged at read time, from the follower counts."""
        big = [row.user_id for row in self.db.execute(
            select(FollowerCount.user_id).where(FollowerCount.followers > self.max_followers))]
        self.cache.fill_big(big)
        return set(big)

    def _is_big(self, author: int) -> bool:
        """Whether the author's tweets are merged at read time rather than
        fanned out: the same list in Redis the reads go by."""
        listed = self.cache.big(author)
        return author in self._fill_big() if listed is None else listed

    # -- timelines

    def timeline(self, user_id: int, before: int | None, count: int) -> list[dict]:
        """Up to `count` tweets of the user's home timeline older than the
        tweet `before`, newest first, each with its author."""
        try:
            if self.cache is not None:
                try:
                    return self._cached_timeline(user_id, before, count)
                except RedisError as error:
                    log.warning("timeline cache unavailable (%s): merging at read time",
                                error.__class__.__name__)
            self._require_users(user_id)
            return self._merged_timeline(user_id, before, count)
        except ServiceUnavailable:
            raise DependencyUnavailable("The user or tweet service is unavailable.") from None

    def _merged_timeline(self, user_id: int, before: int | None, count: int) -> list[dict]:
        authors = [*self._followees(user_id), user_id]
        return [t for t in self.tweets.newest(authors, count, before) if t.get("author")]

    def _cached_timeline(self, user_id: int, before: int | None, count: int) -> list[dict]:
        tweets: list[dict] = []
        while len(tweets) < count:
            wanted = count - len(tweets)
            ids, page = self._cached_ids(user_id, before, wanted)
            if ids is None:  # older than the cache holds
                return tweets + self._merged_timeline(user_id, before, wanted)
            if not ids:
                break
            found = self._entries(ids, page)
            # Deleted tweets drop out at once; their events clean up the rest.
            if gone := set(ids) - {t["id"] for t in found}:
                self.cache.remove(sorted(gone), [user_id])
            tweets += found
            if len(ids) < wanted:
                break
            before = ids[-1]
        return tweets

    def _cached_ids(self, user_id: int, before: int | None, count: int):
        """Up to `count` ids of the timeline's tweets older than `before`,
        from the cache (rebuilt if missing) and the authors merged at read
        time, and the cache's page; None past the oldest cached entry of a
        full timeline."""
        page = self.cache.page(user_id, before, count)
        if page.big is None:  # the list of big authors was lost: refill, look again
            self._fill_big()
            page = self.cache.page(user_id, before, count)
        ids, full = page.ids, page.full
        if not page.exists:
            self._require_users(user_id)
            rebuilt = self._rebuild(user_id)
            full = len(rebuilt) >= self.cache.size
            ids = [i for i in rebuilt if before is None or i < before][:count]
            page = self.cache.page(user_id, before, count)
        if page.big:
            extra = [t["id"] for t in self.tweets.newest(page.big, count, before, expand=False)]
            ids = sorted(set(ids) | set(extra), reverse=True)[:count]
        if len(ids) < count and full:
            return None, page
        return ids, page

    def _entries(self, ids: list[int], page) -> list[dict]:
        """The tweets among `ids` that still exist, in that order, each with
        its author: from Redis (most of it read with the page), and what
        Redis lacks from the tweet service (then kept). A tweet or author
        marked deleted is left out."""
        bodies = dict(page.bodies)
        unread = [i for i in ids if i not in bodies]
        bodies.update(zip(unread, self.cache.bodies(unread)))
        known = {}
        missing = []
        for tweet_id in ids:
            body = bodies[tweet_id]
            if body is None:
                missing.append(tweet_id)
            elif body != GONE:
                known[tweet_id] = orjson.loads(body)
        looked_up = dict(page.authors)
        unread = sorted({t["user_id"] for t in known.values()} - looked_up.keys())
        looked_up.update(zip(unread, self.cache.authors(unread)))
        authors = {a: body for a, body in looked_up.items() if body is not None}
        missing += [i for i, t in known.items() if t["user_id"] not in authors]
        if missing:
            fetched_tweets, fetched_authors = {}, {}
            for tweet in self.tweets.by_ids(missing):
                author = tweet.pop("author")
                if author is not None:  # null: the user was deleted
                    fetched_tweets[tweet["id"]] = tweet
                    fetched_authors[tweet["user_id"]] = orjson.dumps(author)
            self.cache.keep({i: orjson.dumps(t) for i, t in fetched_tweets.items()},
                            fetched_authors)
            known.update(fetched_tweets)
            authors.update(fetched_authors)
        entries = []
        for tweet_id in ids:
            tweet = known.get(tweet_id)
            author = authors.get(tweet["user_id"]) if tweet else None
            if author is not None and author != GONE:
                entries.append({**tweet, "author": orjson.loads(author)})
        return entries

    def _rebuild(self, user_id: int) -> list[int]:
        token = self.cache.begin_rebuild(user_id)
        followees = self._followees(user_id)
        tweets = self.tweets.newest([*followees, user_id], self.cache.size, expand=False)
        self.cache.keep({t["id"]: orjson.dumps(t) for t in tweets}, {})
        ids = [t["id"] for t in tweets]
        self.cache.finish_rebuild(user_id, token, followees, ids)
        return ids

    # -- events

    def apply_events(self, events: list) -> int:
        """Apply each event not applied before, in one transaction; the
        number applied. Timeline changes go to Redis before the commit: if
        the commit fails the events come again, and applying them twice to
        the cache changes nothing."""
        applied, dropped = 0, []
        with self.db.session() as session:
            self._lock_users(session, events)
            new = first_seen(session, ReceivedEvent, [event.id for event in events])
            try:
                for event in events:
                    if event.id not in new:
                        log.info("event %s (%s, request %s) already applied", event.id,
                                 event.type, event.request_id)
                        continue
                    new.discard(event.id)  # a repeat within the batch is a replay too
                    dropped += self._apply(session, event)
                    applied += 1
                    log.info("event %s (%s, request %s) applied", event.id, event.type,
                             event.request_id)
            except RedisError:
                raise _unavailable("timeline cache") from None
            session.commit()
        if dropped:  # again: a read may have rebuilt one from the old follows meanwhile
            try:
                self.cache.drop(dropped)
            except RedisError:
                log.warning("%d timelines not dropped after commit", len(dropped))
        return applied

    @staticmethod
    def _lock_users(session: Session, events: list) -> None:
        """A user's deletion waits for the fan-out of their tweets in flight
        (which read the followers before the follows were deleted) and for
        their follows in flight; a fan-out that comes after it finds no
        followers, a follow is refused (common.user_locks). A relayed batch
        holds one producer's events: tweets' or users'."""
        authors = [e.data.user_id for e in events if isinstance(e, TweetCreated)]
        deleted = [e.data.user_id for e in events if isinstance(e, UserDeleted)]
        lock_users(session, [*authors, *deleted], exclusive=bool(deleted))

    def _apply(self, session: Session, event) -> list[int]:
        """Apply one event; the users whose timelines it dropped."""
        if self.cache is None:
            if isinstance(event, UserDeleted):
                self._forget_user(session, event.data.user_id)
            return []
        if isinstance(event, TweetCreated):
            data = event.data
            if data.content is not None and data.created_at is not None:
                self.cache.keep({data.tweet_id: orjson.dumps({
                    "id": data.tweet_id, "user_id": data.user_id, "content": data.content,
                    "created_at": data.created_at})}, {})
            # A big author's tweets are merged in at read time instead.
            followers = [] if self._is_big(data.user_id) else self._followers(session, data.user_id)
            self.cache.fan_out(data.tweet_id, [*followers, data.user_id])
        elif isinstance(event, TweetDeleted):
            self.cache.tweet_deleted(event.data.tweet_id)
            author = event.data.user_id
            followers = self._followers(session, author, self.max_followers + 1)
            self.cache.remove([event.data.tweet_id], [*followers, author])
        elif isinstance(event, UserDeleted):
            self.cache.author_changed(event.data.user_id, deleted=True)
            return self._forget_user(session, event.data.user_id)
        elif isinstance(event, UserUpdated):
            self.cache.author_changed(event.data.user_id, deleted=False)
        return []

    def _forget_user(self, session: Session, user_id: int) -> list[int]:
        """Remove every follow to or from the user, and refuse any that a
        request checked against the user service just before the deletion;
        drop the timelines that showed their tweets."""
        record_deletion(session, DeletedUser, user_id)
        followers = self._followers(session, user_id)
        followees = list(session.scalars(
            select(Follow.followee_id).where(Follow.follower_id == user_id)))
        session.execute(delete(Follow).where(
            (Follow.follower_id == user_id) | (Follow.followee_id == user_id)))
        session.execute(delete(FollowerCount).where(FollowerCount.user_id == user_id))
        if followees:
            session.execute(update(FollowerCount).where(FollowerCount.user_id.in_(followees))
                            .values(followers=FollowerCount.followers - 1))
        if self.cache is None:
            return []
        self.cache.drop([*followers, user_id])
        return [*followers, user_id]
