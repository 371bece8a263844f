"""A test client for an app's own test suite.

Django's ``django.test.Client`` keeps its sessions in ``SESSION_ENGINE``
and sends their key in a cookie, but sessiongate_django.SessionMiddleware
only takes the session from the gateway's signed headers: with the stock
client, ``client.login()``, ``force_login()`` and ``client.session`` cannot
reach a view (and fail outright when ``django.contrib.sessions`` is not
installed). This Client plays the gateway instead: it keeps the sessions
in memory, signs each request's session with SESSIONGATE_SESSION_KEYS as
the gateway does, and applies the change the middleware answers with, so
the real middleware runs in the tests. AsyncClient does the same for
Django's AsyncClient (``self.async_client``).

    from sessiongate_django.test import AsyncClient, Client

    class Tests(TestCase):
        client_class = Client
        async_client_class = AsyncClient
"""

import secrets
import time

from django.conf import settings
from django.test import AsyncClient as DjangoAsyncClient
from django.test import Client as DjangoClient

from . import protocol
from .middleware import load_keys
from .store import SessionStore, django_session_key

_CHANGE_PREFIX = "x-sessiongate-"


def _new_id():
    # The gateway's IDs: 64 hex characters.
    return secrets.token_hex(32)


def _hide_cookie(value, name):
    """The Cookie field value without the pairs of the cookie name, as the
    gateway gives it to Django (wsgi/proxy.go hideCookie): views never see
    the session cookie, whose ID the signed headers carry."""
    kept = []
    for pair in value.split(";"):
        if pair.split("=", 1)[0].strip() == name or not pair.strip():
            continue
        kept.append(pair.strip())
    return "; ".join(kept)


class _ClientSession(SessionStore):
    """``client.session``: saving it stores the data where the next request
    of the client finds it, as a save by Django's SESSION_ENGINE would."""

    def __init__(self, client, session_key=None, data=None):
        super().__init__(session_key, data)
        self._client = client

    def save(self, must_create=False):
        super().save(must_create)
        # Round-trip through JSON like the gateway, so a value the real
        # session could not hold fails here too.
        data = protocol.loads(protocol.dumps(self._get_session()))
        if self._deleted and self._gateway_id:
            self._client._drop(self._gateway_id)
        if not self._session_key:
            self._gateway_id = _new_id()
            self._session_key = django_session_key(self._gateway_id)
        self._client._sessions[self._gateway_id] = data
        # The expiry as a write of the middleware would give it, so that
        # set_expiry() here ends the session as it would in Django.
        self._client._expiry.pop(self._gateway_id, None)
        self._client._set_expiry(self._gateway_id, self.expiry_header())
        self._loaded = dict(data)
        self._deleted = False
        self._client._set_session_cookie(self._gateway_id)

    def delete(self, session_key=None):
        super().delete(session_key)
        key = self._gateway_id if session_key is None or self._is_gateway_session(session_key) else session_key
        if key:
            self._client._drop(key)


class _Gateway:
    """The gateway's part of the session, played in memory for Client and
    AsyncClient (see the module's doc comment). The cookie is
    settings.SESSION_COOKIE_NAME, which the test client's login() uses.

    A session's own expiry (set_expiry(), by a view or on client.session)
    ends it as the gateway does; the gateway's own idle timeout and maximum
    age are not played. ``clock`` is the gateway's clock (unix seconds): a
    test moves it rather than sleep."""

    clock = staticmethod(time.time)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Session ID -> data, what the gateway keeps in Redis.
        self._sessions = {}
        # Session ID -> the time it ends, for a session with an expiry of
        # its own (the Redis TTL).
        self._expiry = {}
        # The session the request under way was signed with.
        self._request_sid = ""

    def _session_id(self):
        cookie = self.cookies.get(settings.SESSION_COOKIE_NAME)
        if cookie is None:
            return ""
        sid = ""
        if cookie.value in self._sessions:
            sid = cookie.value
        else:
            # Django's Client.login() and force_login() set the cookie to
            # session_key, the Django form of the ID.
            for candidate in self._sessions:
                if django_session_key(candidate) == cookie.value:
                    sid = candidate
                    break
        if sid in self._expiry and self._expiry[sid] <= self.clock():
            # Expired: Redis has let it go, and the cookie names nothing.
            self._drop(sid)
            return ""
        return sid

    def _drop(self, sid):
        self._sessions.pop(sid, None)
        self._expiry.pop(sid, None)

    def _set_expiry(self, sid, header):
        """Keeps what X-Sessiongate-Expiry says for the session sid, as
        the gateway does: seconds are an idle timeout counted from now (the
        middleware repeats them on every response that uses the session),
        "at:" a fixed end, "browser" and "default" leave it to the
        gateway's own policy, and no header changes nothing."""
        if header.startswith("at:"):
            self._expiry[sid] = int(header[3:])
        elif header.isdigit():
            self._expiry[sid] = self.clock() + int(header)
        elif header in ("browser", "default"):
            self._expiry.pop(sid, None)

    def _set_session_cookie(self, session_id):
        name = settings.SESSION_COOKIE_NAME
        self.cookies[name] = session_id
        self.cookies[name]["path"] = "/"

    @property
    def session(self):
        """The client's session, like Django's Client.session: change it
        and call save() to have the next request see the change."""
        sid = self._session_id()
        if sid:
            # A copy of every level, as a load from the store would give:
            # a change the test does not save() must not reach a view.
            return _ClientSession(self, sid, protocol.loads(protocol.dumps(self._sessions[sid])))
        session = _ClientSession(self)
        session.save()
        return session

    async def asession(self):
        """Django 5.0's async form of ``session``: its alogin(),
        aforce_login() and alogout() take the session from here, and
        Django's own would open a SESSION_ENGINE session the views never
        see. Ours does no I/O."""
        return self.session

    def _signed_meta(self):
        """The gateway's signed session fields for the next request, under
        their WSGI environ names."""
        sid = self._session_id()
        data = protocol.dumps(self._sessions[sid]) if sid else b"{}"
        self._request_sid = sid
        return protocol.request_meta(load_keys()[0], sid, data, secrets.token_hex(16), str(int(time.time())))

    def check_exception(self, response):
        # Django's Client.request() calls this with the response before it
        # re-raises a view's exception: the middleware's change (a logout's
        # delete goes with a 500) is applied first, as the gateway would.
        self._apply_change(self._request_sid, response)
        super().check_exception(response)

    def _apply_change(self, sid, response):
        """Does with the middleware's answer what the gateway does: store
        or delete the session, mint a new ID, and keep the headers (and a
        cookie of the session cookie's name) from the client."""
        # The gateway drops a Set-Cookie of its cookie's name from the app.
        response.cookies.pop(settings.SESSION_COOKIE_NAME, None)
        headers = {}
        for name, value in list(response.items()):
            if name.lower().startswith(_CHANGE_PREFIX):
                headers[name.lower()] = value
                del response[name]
        op = headers.get(_CHANGE_PREFIX + "op")
        expiry = headers.get(_CHANGE_PREFIX + "expiry", "")
        if op and expiry.startswith("at:") and int(expiry[3:]) <= self.clock():
            # An end already past (set_expiry() with a past datetime or a
            # negative number): the gateway ends the session, whatever the
            # change.
            op = "delete"
        if op == "delete":
            if sid:
                self._drop(sid)
                self.cookies.pop(settings.SESSION_COOKIE_NAME, None)
        elif op == "write":
            raw = protocol.decode_chunks(headers.get, _CHANGE_PREFIX + "data-", _CHANGE_PREFIX + "data-count")
            kept = self._expiry.get(sid)
            if sid and headers.get(_CHANGE_PREFIX + "rotate") in ("1", "carry"):
                self._drop(sid)
                sid = ""
            if not sid:
                sid = _new_id()
                self._set_session_cookie(sid)
            self._sessions[sid] = protocol.loads(raw)
            if kept is not None:
                # The expiry moves with the session to its new ID.
                self._expiry[sid] = kept
        if op in ("write", "touch") and sid in self._sessions:
            self._set_expiry(sid, expiry)


class Client(_Gateway, DjangoClient):
    """django.test.Client with the gateway played in memory."""

    def request(self, **request):
        request.update(self._signed_meta())
        return super().request(**request)

    def _base_environ(self, **request):
        environ = super()._base_environ(**request)
        cookie = _hide_cookie(environ.get("HTTP_COOKIE", ""), settings.SESSION_COOKIE_NAME)
        if cookie:
            environ["HTTP_COOKIE"] = cookie
        else:
            environ.pop("HTTP_COOKIE", None)
        return environ


class AsyncClient(_Gateway, DjangoAsyncClient):
    """django.test.AsyncClient with the gateway played in memory: the
    signed fields go into the ASGI scope's headers, where a server puts the
    gateway's request headers."""

    async def request(self, **request):
        fields = [
            (name[len("HTTP_") :].lower().replace("_", "-").encode("ascii"), value.encode("latin-1"))
            for name, value in self._signed_meta().items()
        ]
        request["headers"] = list(request.get("headers") or ()) + fields
        return await super().request(**request)

    def _base_scope(self, **request):
        scope = super()._base_scope(**request)
        headers = []
        for name, value in scope["headers"]:
            if name.lower() == b"cookie":
                value = _hide_cookie(value.decode("latin-1"), settings.SESSION_COOKIE_NAME).encode("latin-1")
                if not value:
                    continue
            headers.append((name, value))
        scope["headers"] = headers
        return scope
