"""request.session backed by the session the gateway sent with the request.

Nothing here does I/O: ``load`` returns what the gateway sent, and every
change (save, cycle_key, flush, set_expiry) is only recorded; the
middleware turns the record into the signed response headers the gateway
persists. So the session API behaves like Django's, with one difference a
view can see: the ID of a new session (after ``cycle_key()`` or on first
use) is minted by the gateway when the response passes, and ``session_key``
is ``None`` until then.
"""

import math
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone

from .protocol import MAX_EXPIRY

EXPIRY_KEY = "_session_expiry"

# Django keeps its own session keys (32 characters) in a
# CharField(max_length=40), and apps that record
# request.session.session_key copy that column (django-cas-server's User,
# visitor trackers); PostgreSQL and MySQL in strict mode refuse a longer
# value. The gateway's IDs are 64 hex characters, so Django sees their first
# 40: still unique (160 bits), and no more use to a thief than the whole ID,
# since only a cookie signed by the gateway opens a session.
DJANGO_KEY_LENGTH = 40


def django_session_key(gateway_id):
    """The session_key Django code sees for the gateway's ID."""
    return gateway_id[:DJANGO_KEY_LENGTH] or None


class SessionStore(SessionBase):
    def __init__(self, session_key=None, data=None):
        # The ID the gateway loaded this request's data for ("" = none);
        # session_key is its Django form.
        self._gateway_id = session_key or ""
        super().__init__(django_session_key(self._gateway_id))
        self._loaded = data if data is not None else {}
        # True once the gateway's session was deleted (flush(), or
        # cycle_key() which moves the data to a new ID).
        self._deleted = False
        # True once the data stopped deriving from what the gateway loaded
        # (flush(), clear(), delete(), a create() before anything was
        # read): a new ID then starts from nothing, and what other requests
        # stored in the old session meanwhile must not move to it.
        self._wiped = False
        # True while the view wants the session stored even if it is
        # empty: it saved it (save(), create(), cycle_key()), which gives a
        # Django session a key and a row. Apps call save() to give an
        # anonymous visitor a session key (carts, polls); an empty session
        # that was only modified is still no session, as in Django.
        self._saved = False

    # -- storage API (SessionBase subclasses must provide it) ------------

    def load(self):
        # A shallow copy, like a fresh load: top-level assignments and
        # deletions mark the session modified as in Django.
        return dict(self._loaded)

    def exists(self, session_key):
        # The only session this request can know of is the one the gateway
        # loaded; it mints every new ID itself, so Django never needs to
        # probe for a free one. The common "if not
        # exists(session_key): create()" must leave a live session alone.
        return self._is_gateway_session(session_key) and not self._deleted

    def create(self):
        # A new session, as Django's create() makes one: the client's
        # session is replaced (the gateway's, if any, goes with the
        # response) and the new one starts with what is cached, else empty.
        # Its ID comes from the gateway with the response.
        if self._gateway_id:
            self._deleted = True
            if not hasattr(self, "_session_cache"):
                self._wiped = True  # nothing loaded: an empty session
        self._session_key = None
        self._get_session(no_load=True)
        self._saved = True
        self.modified = True

    def save(self, must_create=False):
        # Persisting happens when the response passes the gateway. Like
        # Django's save(), it reads the data (the response varies on the
        # cookie) and stores the session even when it is empty.
        self._get_session(no_load=must_create)
        self._saved = True
        self.modified = True

    def is_empty(self):
        # A saved session has a key in Django, even while the gateway has
        # yet to mint it.
        return not self._saved and super().is_empty()

    def _is_gateway_session(self, session_key):
        """True when session_key names the session the gateway loaded, in
        Django's form or as the whole ID."""
        return bool(session_key) and session_key in (self._gateway_id, django_session_key(self._gateway_id))

    def delete(self, session_key=None):
        if session_key is None:
            # The current session, the one a save() made included (login()
            # then logout(): Django's flush() deletes what cycle_key()
            # stored).
            self._saved = False
        if session_key is None or self._is_gateway_session(session_key):
            if self._gateway_id:
                if self._session_key is not None:
                    # The session under its stored ID (not cycle_key(),
                    # whose create() dropped the ID and which moves the
                    # data on): Django deletes the stored data, and what it
                    # still holds in memory is never saved again. Without
                    # this, the data read before would move to a new ID:
                    # a logout by delete() after request.user read the
                    # session would keep the user logged in.
                    self._session_cache = {}
                    self._wiped = True
                self._deleted = True
            self.modified = True

    def clear(self):
        super().clear()
        self._wiped = True

    @classmethod
    def clear_expired(cls):
        # The gateway's store expires sessions itself (Redis TTL).
        pass

    # -- expiry -----------------------------------------------------------

    def set_expiry(self, value):
        """Like Django's: an int n > 0 expires the session after n idle
        seconds, 0 at browser close, None restores the gateway's policy, a
        datetime or timedelta is a fixed end that no request extends, and a
        negative int or a past end has expired. A fixed end is kept as
        Django 4+ keeps it (an ISO 8601 string, JSON having no datetime); a
        naive datetime is local time."""
        if value is None:
            try:
                del self[EXPIRY_KEY]
            except KeyError:
                pass
            return
        if isinstance(value, timedelta):
            now = timezone.now()
            if timezone.is_naive(now):
                # Without USE_TZ: that much real time on, in naive local
                # time. A naive sum is wall-clock time, an hour off when
                # a DST change lies between.
                value = (now.astimezone() + value).astimezone().replace(tzinfo=None)
            else:
                value = now + value
        if isinstance(value, datetime):
            # In the form timezone.now() has, so that get_expiry_age() can
            # subtract them: naive in local time without USE_TZ.
            if settings.USE_TZ and timezone.is_naive(value):
                value = value.astimezone()
            elif not settings.USE_TZ and timezone.is_aware(value):
                value = value.astimezone().replace(tzinfo=None)
            value = value.isoformat()
        else:
            # A negative one, as in Django, has expired already
            # (expiry_header).
            value = int(value)
        self[EXPIRY_KEY] = value

    async def aset_expiry(self, value):
        self.set_expiry(value)

    @staticmethod
    def _instant(end, ref):
        """Unix seconds of the fixed end ``end``; ``ref`` (unix seconds) is
        the time it is read at. A naive end is local time, and in the hour
        a DST fall-back repeats it names two instants an hour apart (an ISO
        string keeps no fold): the first one still ahead of ref is meant,
        or the later when both are past. Read as the first, a 10-minute end
        set in the second pass lay 50 minutes past, and the gateway ended
        the session at once."""
        if timezone.is_aware(end):
            return end.timestamp()
        first, second = end.replace(fold=0).timestamp(), end.replace(fold=1).timestamp()
        return first if first >= ref or first == second else max(first, second)

    def _deadline(self):
        """The fixed end set_expiry() gave the session, as unix seconds, or
        None."""
        value = self.get(EXPIRY_KEY)
        if not isinstance(value, str):
            return None
        try:
            end = datetime.fromisoformat(value)
        except ValueError:
            return None
        return self._instant(end, timezone.now().timestamp())

    def _with_deadline(self, kwargs):
        # Django 3.2's get_expiry_age() and get_expiry_date() take a
        # datetime, not the ISO string this store (and Django 4+) keeps.
        expiry = kwargs["expiry"] if "expiry" in kwargs else self.get(EXPIRY_KEY)
        if isinstance(expiry, str):
            try:
                expiry = datetime.fromisoformat(expiry)
            except ValueError:
                return kwargs
        if isinstance(expiry, datetime):
            modification = kwargs.get("modification") or timezone.now()
            if timezone.is_naive(expiry) and timezone.is_naive(modification):
                # Django subtracts naive local times, wall-clock time: the
                # end as the naive time the real time left after the
                # modification, so that a DST change between them, or an
                # end in the hour a fall-back repeats, counts as the
                # gateway counts it.
                # Only then: the float sum would move a whole-second end
                # by a microsecond.
                ref = modification.timestamp()
                left = self._instant(expiry, ref) - ref
                if abs(left - (expiry - modification).total_seconds()) >= 1:
                    expiry = modification + timedelta(seconds=left)
            kwargs["expiry"] = expiry
        return kwargs

    def get_expiry_age(self, **kwargs):
        return super().get_expiry_age(**self._with_deadline(kwargs))

    def get_expiry_date(self, **kwargs):
        return super().get_expiry_date(**self._with_deadline(kwargs))

    def expiry_header(self, at=True):
        """X-Sessiongate-Expiry for this session: "browser", seconds,
        "at:" and the unix time of a fixed end, "default" when the view
        dropped the expiry the session had (set_expiry(None): the gateway's
        own policy again), or "" when the gateway's own policy applies and
        did before. ``at``: the gateway takes "at:"; an older one gets the
        seconds left, which it counts as idle time."""
        if self.get_expire_at_browser_close():
            return "browser"
        deadline = self._deadline()
        if deadline is not None:
            if at:
                # Rounded up: never before Django would end it.
                return "at:%d" % max(0, math.ceil(deadline))
            left = int(deadline - time.time())
            return str(min(max(1, left), MAX_EXPIRY))
        value = self.get(EXPIRY_KEY)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            # Expired, as Django's session is: the gateway ends it now
            # (an older one, which takes no "at:", after a second). Never
            # before 1970, which the gateway refuses with the whole change.
            return "at:%d" % max(0, math.floor(time.time()) + value) if at else "1"
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            # The gateway caps it further; an older one ignored the whole
            # change over MAX_EXPIRY.
            return str(min(value, MAX_EXPIRY))
        if EXPIRY_KEY in self._loaded and EXPIRY_KEY not in self._session:
            return "default"
        return ""

    # -- what the middleware sends back -----------------------------------

    def deleted_by_view(self):
        """True when the view deleted the session the gateway loaded
        (flush(), cycle_key()): Django's own backends delete it there and
        then, so the deletion stands even when the response is a 500."""
        return self._deleted

    def gateway_change(self, save_every_request=None, accessed=False):
        """Returns (op, rotate, data) for the response, or None when the
        gateway has nothing to do. ``rotate`` is False, True (a new ID for
        data made anew: flush() then a write) or "carry" (a new ID for the
        data the view was given: cycle_key(), whose gateway then moves along
        what other requests stored in the old session meanwhile, as PHP's
        session_regenerate_id() does). ``data`` is the dict to write (write)
        or None. ``accessed``: the view read the session (request.user does),
        which is use of it: the gateway is told, so its idle timeout counts
        from this request, as it does for a PHP page that only reads."""
        if save_every_request is None:
            save_every_request = settings.SESSION_SAVE_EVERY_REQUEST
        had = bool(self._gateway_id)
        data = getattr(self, "_session_cache", None)
        if self._deleted:
            if data or self._saved:
                # flush()/cycle_key() then data, or a saved session: a new
                # ID with that data, the old one destroyed.
                return ("write", True if self._wiped else "carry", data or {})
            return ("delete", False, None)
        if self.modified or (save_every_request and had and data is not None):
            # SESSION_SAVE_EVERY_REQUEST saves a session the view loaded
            # even when it is not marked modified: Django documents it as
            # the way to keep changes made inside stored dicts and lists,
            # which do not set session.modified. One never loaded cannot
            # have changed: a touch below does the rest of a save.
            if data is None:
                data = self._loaded
            if not data and not had and not self._saved:
                return None  # an empty new session is no session
            return ("write", False, data)
        if had and (save_every_request or accessed or self.expiry_header()):
            # Unchanged: refresh the expiry. A session with its own expiry
            # repeats it on every response, or the gateway's idle timeout
            # would take over again; one that was only read was still used
            # (SESSIONGATE_SESSION_IDLE_TIMEOUT: "a session unused this
            # long expires"), or a user who only browses would be logged
            # out while active.
            return ("touch", False, None)
        return None
