import asyncio
import base64
import json
import logging
import os
import re
import sys
import time
import traceback
import unittest
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SECRET = "python-test-secret-0123456789abcdef0123"
OLD_SECRET = "python-test-old-secret-0123456789abcdef"

import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        SECRET_KEY="test-only",
        SESSIONGATE_SESSION_KEYS=SECRET + "," + OLD_SECRET,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

urlpatterns = []

from django.contrib import auth  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.signals import got_request_exception  # noqa: E402
from django.http import HttpResponse, HttpResponseServerError  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from sessiongate_django import SessionMiddleware, SessionStore, protocol  # noqa: E402
from sessiongate_django.middleware import load_keys  # noqa: E402

KEY = protocol.derive_key(SECRET.encode())
OLD_KEY = protocol.derive_key(OLD_SECRET.encode())
SID = "ab" * 32
NONCE = "0123456789abcdef0123456789abcdef"


def signed_meta(sid="", data=b"{}", key=KEY, ts=None, nonce=NONCE):
    if not isinstance(data, bytes):
        data = protocol.dumps(data)
    ts = str(int(time.time()) if ts is None else ts)
    return protocol.request_meta(key, sid, data, nonce, ts)


class Change:
    """The verified change of a response, as the gateway reads it."""

    def __init__(self, response, key=KEY, nonce=NONCE):
        h = response
        self.op = h.get("X-Sessiongate-Op")
        self.rotate = h.get("X-Sessiongate-Rotate", "")
        self.expiry = h.get("X-Sessiongate-Expiry", "")
        self.raw = b""
        self.data = None
        if self.op == "write":
            n = int(h["X-Sessiongate-Data-Count"])
            self.raw = base64.b64decode("".join(h["X-Sessiongate-Data-%d" % i] for i in range(n)))
            self.data = json.loads(self.raw)
        if self.op:
            want = protocol.response_signature(key, nonce, self.op, self.rotate, self.expiry, self.raw)
            assert h["X-Sessiongate-Signature"] == want, "bad response signature"


def run(view, meta=None, method="get", path="/accounts/x/"):
    rf = RequestFactory()
    request = getattr(rf, method)(path, **(meta if meta is not None else signed_meta()))
    mw = SessionMiddleware(view)
    response = mw(request)
    return request, response


def run_refused(view, meta=None, path="/accounts/x/"):
    """Runs view through the middleware for a session change it must
    refuse: the 500 Django makes of the error (got_request_exception sent,
    handler500's page), and the error."""
    caught = []

    def keep(sender, **kwargs):
        caught.append(sys.exc_info()[1])

    got_request_exception.connect(keep)
    try:
        _, response = run(view, meta, path=path)
    finally:
        got_request_exception.disconnect(keep)
    # The logins the view committed still go (LoginsTests).
    change = [k for k in internal_headers(response) if not k.lower().startswith(protocol.LOGINS_HEADER.lower())]
    if response.status_code != 500 or len(caught) != 1 or change:
        raise AssertionError(
            "want a 500 without a change for one error, got %d, %r, %r" % (response.status_code, caught, change)
        )
    return response, caught[0]


def internal_headers(response):
    """The change headers of a response: X-Sessiongate-* but the mark every
    handled response carries (MarkTests)."""
    return [
        k
        for k, _ in response.items()
        if k.lower().startswith("x-sessiongate") and k.lower() != protocol.MARK_HEADER.lower()
    ]


from django.contrib.sessions.middleware import SessionMiddleware as _StockSessionMiddleware  # noqa: E402


class ProjectSessionMiddleware(_StockSessionMiddleware):
    """A project's own session middleware, built on Django's."""


class SamlLikeSessionMiddleware(_StockSessionMiddleware):
    """djangosaml2's SamlSessionMiddleware: its own session, elsewhere."""

    def process_request(self, request):
        request.saml_session = self.SessionStore(request.COOKIES.get("saml_session"))


class OwnSubclass(SessionMiddleware):
    """A project's subclass of sessiongate_django's middleware."""


class CacheTests(unittest.TestCase):
    """Django's cache keys a response marked Vary: Cookie on the Cookie
    header, from which the gateway removes its session cookie: the session
    must still be part of that key."""

    def test_cached_page_is_not_served_to_another_session(self):
        from django.core.cache import cache
        from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware

        cache.clear()

        def view(request):
            return HttpResponse("user=%s" % request.session.get("user"))

        # MIDDLEWARE order: UpdateCacheMiddleware first, sessions, then
        # FetchFromCacheMiddleware last, as Django's documentation asks.
        stack = UpdateCacheMiddleware(SessionMiddleware(FetchFromCacheMiddleware(view)))
        rf = RequestFactory()
        bodies = []
        for sid, user in (("ab" * 32, "ana"), ("cd" * 32, "bob"), ("ab" * 32, "ana")):
            request = rf.get("/accounts/profile/", **signed_meta(sid, {"user": user}))
            response = stack(request)
            self.assertIn("Cookie", response["Vary"])
            bodies.append(response.content.decode())
        self.assertEqual(bodies, ["user=ana", "user=bob", "user=ana"])
        # And a request without a session never gets a session's page.
        response = stack(rf.get("/accounts/profile/", **signed_meta()))
        self.assertEqual(response.content.decode(), "user=None")
        cache.clear()

    def test_page_that_starts_a_session_is_not_cached_for_everyone(self):
        # Django's own SessionMiddleware sets the new session's cookie on
        # such a response, and UpdateCacheMiddleware never caches a
        # response that sets a cookie for a request without cookies: the
        # next cookieless visitor must not get the first one's page.
        from django.core.cache import cache
        from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware

        cache.clear()
        visitors = iter(range(1, 10))

        def view(request):
            if "visitor" not in request.session:
                request.session["visitor"] = next(visitors)
            return HttpResponse("visitor=%s" % request.session["visitor"])

        stack = UpdateCacheMiddleware(SessionMiddleware(FetchFromCacheMiddleware(view)))
        rf = RequestFactory()
        bodies, changes = [], []
        for nonce in ("1" * 32, "2" * 32):
            response = stack(rf.get("/accounts/welcome/", **signed_meta(nonce=nonce)))
            bodies.append(response.content.decode())
            changes.append(Change(response, nonce=nonce).data)
        self.assertEqual(bodies, ["visitor=1", "visitor=2"])
        self.assertEqual(changes, [{"visitor": 1}, {"visitor": 2}])
        cache.clear()

    def test_cached_page_carries_no_stale_change(self):
        # A page cached with its session change (a logged-in page read the
        # session: touch) is served from the cache to the same session
        # later, without the view: the old change, signed for another
        # request's nonce, must not go with it (the gateway refuses and
        # logs it on every hit).
        from django.core.cache import cache
        from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware

        cache.clear()

        def view(request):
            return HttpResponse("user=%s" % request.session.get("user"))

        stack = UpdateCacheMiddleware(SessionMiddleware(FetchFromCacheMiddleware(view)))
        rf = RequestFactory()
        ops = []
        for nonce in ("1" * 32, "2" * 32):
            response = stack(rf.get("/accounts/profile/", **signed_meta("ab" * 32, {"user": "ana"}, nonce=nonce)))
            self.assertEqual(response.content.decode(), "user=ana")
            ops.append(Change(response, nonce=nonce).op)
        self.assertEqual(ops[0], "touch")
        self.assertIn(ops[1], (None, "touch"))
        cache.clear()

    def test_client_copy_of_the_cache_cookie_is_replaced(self):
        meta = signed_meta("ab" * 32, {"user": "ana"})
        meta["HTTP_COOKIE"] = "theme=dark; sessiongate=forged"
        request, _ = run(lambda r: HttpResponse(r.session.get("user")), meta)
        pairs = [p.strip() for p in request.META["HTTP_COOKIE"].split(";")]
        self.assertEqual(pairs[0], "theme=dark")
        self.assertEqual(len(pairs), 2)
        self.assertRegex(pairs[1], r"^sessiongate=[0-9a-f]{32}$")
        self.assertRegex(request.COOKIES["sessiongate"], r"^[0-9a-f]{32}$")

    def test_request_without_a_session_cannot_claim_a_sessions_cached_page(self):
        # A visitor without a session who learnt a session's cache token
        # (request.COOKIES shows it to every view, error reporter and APM
        # hook) sends it as its own cookie: it is dropped, so Django's
        # cache does not key that request as the session's.
        from django.core.cache import cache
        from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware

        cache.clear()

        def view(request):
            return HttpResponse("user=%s" % request.session.get("user"))

        stack = UpdateCacheMiddleware(SessionMiddleware(FetchFromCacheMiddleware(view)))
        rf = RequestFactory()
        owner = rf.get("/accounts/profile/", **signed_meta("ab" * 32, {"user": "ana"}))
        self.assertEqual(stack(owner).content, b"user=ana")
        for meta in (signed_meta("", {}, nonce="2" * 32), {}):  # no session; no gateway
            meta["HTTP_COOKIE"] = owner.META["HTTP_COOKIE"] + "; theme=dark"
            request = rf.get("/accounts/profile/", **meta)
            self.assertEqual(stack(request).content, b"user=None")
            self.assertEqual(request.META["HTTP_COOKIE"], "theme=dark")
        cache.clear()


    def _cache_varying_on(self, field):
        from django.core.cache import cache
        from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware
        from django.utils.cache import patch_vary_headers

        cache.clear()
        self.addCleanup(cache.clear)

        def view(request):
            response = HttpResponse("user=%s" % request.session.get("user"))
            patch_vary_headers(response, (field,))
            return response

        return UpdateCacheMiddleware(SessionMiddleware(FetchFromCacheMiddleware(view)))

    def test_token_spelled_across_two_fields_claims_no_cached_page(self):
        # Django's cache key joins the varied fields' values with nothing
        # between them: a visitor without a session who learnt a token
        # spelled it across Cookie and the field after it (User-Agent) or
        # before it (Accept-Encoding), kept the dropped name out of its
        # Cookie, and got the session's cached page.
        rf = RequestFactory()
        ua, ae = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "gzip, br"
        for field, spell in (
            ("User-Agent", lambda token: {"HTTP_COOKIE": "sessiongat", "HTTP_USER_AGENT": "e=" + token + ua}),
            ("Accept-Encoding", lambda token: {"HTTP_ACCEPT_ENCODING": ae + "s", "HTTP_COOKIE": "essiongate=" + token}),
        ):
            stack = self._cache_varying_on(field)
            owner = rf.get("/accounts/profile/", HTTP_USER_AGENT=ua, HTTP_ACCEPT_ENCODING=ae, **signed_meta("ab" * 32, {"user": "ana"}))
            self.assertEqual(stack(owner).content, b"user=ana")
            meta = signed_meta("", {}, nonce="2" * 32)
            meta.update(spell(owner.COOKIES["sessiongate"]))
            self.assertEqual(stack(rf.get("/accounts/profile/", **meta)).content, b"user=None", field)


class CheckTests(unittest.TestCase):
    def test_gateway_check_is_answered_before_any_view(self):
        def view(request):
            raise AssertionError("the check reached the view")

        with self.assertNoLogs("sessiongate_django", level="INFO") if hasattr(self, "assertNoLogs") else _nothing():
            request, resp = run(view, {"HTTP_X_SESSIONGATE_CHECK": "1"}, method="options", path="*")
        self.assertEqual(resp.status_code, 204)
        self.assertEqual([k for k, _ in resp.items() if k.lower().startswith("x-sessiongate")], [])
        self.assertFalse(hasattr(request, "session"))

    def test_options_without_the_header_reaches_the_view(self):
        _, resp = run(lambda r: HttpResponse("view", status=200), signed_meta(), method="options")
        self.assertEqual((resp.status_code, resp.content), (200, b"view"))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class SessionAPITests(unittest.TestCase):
    def test_new_session_write(self):
        def view(request):
            self.assertIsNone(request.session.session_key)
            request.session["cart"] = {"apple": 2}
            return HttpResponse("ok")

        _, resp = run(view)
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.expiry), ("write", "", ""))
        self.assertEqual(c.data, {"cart": {"apple": 2}})
        self.assertIn("Cookie", resp["Vary"])

    def test_read_only_touches(self):
        # A read is use: the gateway's idle timeout must count from it, as
        # from a PHP page that only reads (lazy write sends touch).
        def view(request):
            return HttpResponse(request.session.get("name"))

        _, resp = run(view, signed_meta(SID, {"name": "José"}))
        self.assertEqual(resp.content.decode(), "José")
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.expiry), ("touch", "", ""))
        self.assertIn("Cookie", resp["Vary"])
        # Reading no session at all sends nothing.
        _, resp = run(view)
        self.assertEqual(internal_headers(resp), [])

    def test_untouched_session_no_vary(self):
        _, resp = run(lambda r: HttpResponse("x"), signed_meta(SID, {"a": 1}))
        self.assertFalse(resp.has_header("Vary"))
        self.assertEqual(internal_headers(resp), [])

    def test_empty_new_session_creates_nothing(self):
        def view(request):
            request.session["x"] = 1
            del request.session["x"]
            return HttpResponse("x")

        _, resp = run(view)
        self.assertEqual(internal_headers(resp), [])

    def test_saved_empty_session_is_stored(self):
        # Django stores a session the view saves, created or cycled even
        # with nothing in it, under a key, and sets its cookie:
        # "request.session.save()" is how apps give an anonymous visitor a
        # session key (carts, votes). Dropped, every request of that
        # visitor had a new session again, and session_key stayed None.
        def save(request):
            request.session.save()
            return HttpResponse("ok")

        def create(request):
            request.session.create()
            return HttpResponse("ok")

        def cycle(request):
            request.session.cycle_key()
            return HttpResponse("ok")

        for view in (save, create, cycle):
            with self.subTest(view.__name__):
                request, resp = run(view)
                c = Change(resp)
                self.assertEqual((c.op, c.rotate, c.data), ("write", "", {}))
                self.assertFalse(request.session.is_empty())
                self.assertIn("Cookie", resp["Vary"])

        # The emptied session of a request, cycled: a new ID, still empty.
        def empty_then_cycle(request):
            del request.session["cart"]
            request.session.cycle_key()
            return HttpResponse("ok")

        _, resp = run(empty_then_cycle, signed_meta(SID, {"cart": [1]}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("write", "carry", {}))

    def test_saved_then_flushed_session_is_no_session(self):
        # login() then logout() in one request: Django's flush() deletes
        # the session cycle_key() made, and nothing is stored.
        def view(request):
            request.session.cycle_key()
            request.session.save()
            request.session.flush()
            return HttpResponse("ok")

        _, resp = run(view)
        self.assertEqual(internal_headers(resp), [])
        _, resp = run(view, signed_meta(SID, {"cart": [1]}))
        self.assertEqual(Change(resp).op, "delete")

    def test_data_round_trip_keeps_order_tags_unicode_numbers(self):
        raw = (
            '{"z":1,"tag":{"__php__":"O:3:\\"Foo\\":1:{s:1:\\"a\\";i:1;}"},'
            '"uni":"日本 é ✓","big":123456789012345678901234567890,"f":0.1,"one":1.0,'
            '"nested":{"b":[1,{"c":null}],"a":true},"empty":{},"list":[]}'
        ).encode()

        def view(request):
            request.session["added"] = "new"
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, raw))
        c = Change(resp)
        self.assertEqual(c.op, "write")
        want = raw[:-1] + b',"added":"new"}'
        self.assertEqual(c.raw, want)

    def test_modify_then_500_saves_nothing(self):
        def view(request):
            request.session["n"] = 99
            return HttpResponseServerError("boom")

        _, resp = run(view, signed_meta(SID, {"n": 1}))
        self.assertEqual(internal_headers(resp), [])
        self.assertIn("Cookie", resp["Vary"])

    def test_5xx_saves_nothing_from_django_4_2(self):
        # Django 4.2's SessionMiddleware saves for status_code < 500 (ticket
        # #34173; 3.2 skipped only 500): a view that changed the session
        # and then answers 502 or 503 (an upstream payment API failed) keeps
        # the old session under Django's own sessions, and must here too.
        from unittest import mock

        def view(request):
            request.session["step"] = 2
            return HttpResponse("upstream failed", status=503)

        with mock.patch.object(django, "VERSION", (4, 2, 0, "final", 0)):
            _, resp = run(view, signed_meta(SID, {"step": 1}))
        self.assertEqual(internal_headers(resp), [])
        # 3.2, like its own middleware, saves it.
        with mock.patch.object(django, "VERSION", (3, 2, 25, "final", 0)):
            _, resp = run(view, signed_meta(SID, {"step": 1}))
        self.assertEqual(Change(resp).data, {"step": 2})

        def logout(request):
            request.session.flush()
            return HttpResponse("upstream failed", status=502)

        with mock.patch.object(django, "VERSION", (5, 2, 0, "final", 0)):
            _, resp = run(logout, signed_meta(SID, {"_auth_user_id": "2"}))
        self.assertEqual(Change(resp).op, "delete")

    def test_logout_then_500_still_deletes(self):
        # Django's flush() deletes the stored session at once, so a logout
        # whose page then fails (django-session-security's idle logout
        # before a view that errors, a logout view whose template breaks)
        # still logs the user out behind nginx: it must here too.
        def view(request):
            request.session.flush()
            return HttpResponseServerError("boom")

        _, resp = run(view, signed_meta(SID, {"_auth_user_id": "2"}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("delete", "", None))

    def test_cycle_key_then_500_deletes_old_session(self):
        # Django's cycle_key() deletes the old session at once too; the new
        # one never reaches the client on a 500.
        def view(request):
            request.session.cycle_key()
            request.session["_auth_user_id"] = "2"
            return HttpResponseServerError("boom")

        _, resp = run(view, signed_meta(SID, {"cart": [1]}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("delete", "", None))

    def test_cycle_key_rotates(self):
        def view(request):
            request.session.cycle_key()
            self.assertIsNone(request.session.session_key)
            self.assertEqual(request.session["cart"], [1])
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"cart": [1]}))
        c = Change(resp)
        # carry: the data is the session's, so what PHP stored in it
        # meanwhile (merge mode) moves to the new ID along with it.
        self.assertEqual((c.op, c.rotate), ("write", "carry"))
        self.assertEqual(c.data, {"cart": [1]})

        # A gateway older than carry does not announce it, and refuses a
        # change that uses it: the rotation it knows.
        meta = signed_meta(SID, {"cart": [1]})
        del meta[protocol.META_FEATURES]
        _, resp = run(view, meta)
        self.assertEqual((Change(resp).op, Change(resp).rotate), ("write", "1"))

    def test_rotation_of_wiped_data_does_not_carry(self):
        # Data that no longer derives from the old session (cleared,
        # flushed, deleted) starts anew: nothing of the old one may move.
        def clear_then_cycle(request):
            request.session.get("cart")
            request.session.clear()
            request.session.cycle_key()
            request.session["n"] = 1
            return HttpResponse("ok")

        def flush_then_cycle(request):
            request.session.flush()
            request.session.cycle_key()
            request.session["n"] = 1
            return HttpResponse("ok")

        for view in (clear_then_cycle, flush_then_cycle):
            with self.subTest(view.__name__):
                _, resp = run(view, signed_meta(SID, {"cart": [1]}))
                c = Change(resp)
                self.assertEqual((c.op, c.rotate, c.data), ("write", "1", {"n": 1}))

    def test_exists_then_create_idiom_keeps_the_session(self):
        # "if not exists(session_key): create()" is a common way to make
        # sure a session exists; on a live session it must change nothing.
        def view(request):
            if not request.session.exists(request.session.session_key):
                request.session.create()
            return HttpResponse("user=%s" % request.session.get("user"))

        _, resp = run(view, signed_meta(SID, {"user": "ana", "php": 1}))
        self.assertEqual(resp.content, b"user=ana")
        # The view read the session: a touch, nothing written or rotated.
        c = Change(resp)
        self.assertEqual((c.op, c.rotate), ("touch", ""))

    def test_session_key_fits_djangos_column(self):
        # Django keeps session keys in CharField(max_length=40), and apps
        # that record request.session.session_key copy that column
        # (django-cas-server's User): PostgreSQL refuses a longer value.
        sid = "0123456789abcdef" * 4
        seen = {}

        def view(request):
            seen["key"] = request.session.session_key
            seen["exists"] = request.session.exists(request.session.session_key)
            request.session.delete(request.session.session_key)
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(sid, {"user": "ana"}))
        self.assertLessEqual(len(seen["key"]), 40)
        self.assertEqual(seen["key"], sid[:40])
        self.assertTrue(seen["exists"])
        # delete(session_key) is the gateway's session: deleted.
        self.assertEqual(Change(resp).op, "delete")

    def test_exists(self):
        store = SessionStore(SID, {"a": 1})
        self.assertTrue(store.exists(SID))
        self.assertFalse(store.exists("cd" * 32))
        self.assertFalse(store.exists(None))
        self.assertFalse(SessionStore().exists(None))
        store.cycle_key()
        self.assertFalse(store.exists(SID))

    def test_create_replaces_the_session(self):
        # Django's create() gives the client a new session, empty unless
        # the data was already loaded; the old ID is not the client's any
        # more.
        def fresh(request):
            request.session.create()
            request.session["n"] = 1
            return HttpResponse("ok")

        _, resp = run(fresh, signed_meta(SID, {"user": "ana"}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("write", "1", {"n": 1}))

        def keep(request):
            request.session["n"] = 1
            request.session.create()
            return HttpResponse("ok")

        _, resp = run(keep, signed_meta(SID, {"user": "ana"}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("write", "carry", {"user": "ana", "n": 1}))

    def test_delete_after_a_read_deletes(self):
        # Django's delete() removes the stored session, whatever the view
        # read before: a "logout" written as request.session.delete() after
        # request.user loaded the session must not keep the user logged in
        # under a new ID.
        def view(request):
            self.assertEqual(request.session.get("_auth_user_id"), "1")
            request.session.delete()
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"_auth_user_id": "1", "cart": [1]}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("delete", "", None))

        # The same with the session's own key, as Django code often passes it.
        def by_key(request):
            request.session.get("cart")
            request.session.delete(request.session.session_key)
            return HttpResponse("ok")

        _, resp = run(by_key, signed_meta(SID, {"_auth_user_id": "1", "cart": [1]}))
        self.assertEqual(Change(resp).op, "delete")

        # A value stored after the delete starts a new session with only
        # that value, as after flush(): the deleted data does not come back.
        def then_write(request):
            request.session.get("cart")
            request.session.delete()
            request.session["after"] = 1
            return HttpResponse("ok")

        _, resp = run(then_write, signed_meta(SID, {"_auth_user_id": "1", "cart": [1]}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("write", "1", {"after": 1}))

    def test_flush_deletes(self):
        def view(request):
            request.session.flush()
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"cart": [1]}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("delete", "", None))
        self.assertNotIn("X-Sessiongate-Data-Count", resp)

    def test_flush_then_write_rotates(self):
        def view(request):
            request.session.flush()
            request.session["user"] = "other"
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"cart": [1]}))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("write", "1", {"user": "other"}))

    def test_negative_set_expiry_ends_the_session(self):
        # Django's session with set_expiry(-5) has expired: its cookie goes
        # (a negative Max-Age) and the next request has no session. It was
        # taken for one second of idleness, which every request within
        # that second extended.
        seen = {}

        def view(request):
            request.session.set_expiry(-5)
            seen["age"] = request.session.get_expiry_age()
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"a": 1}))
        c = Change(resp)
        self.assertEqual(seen["age"], -5)
        self.assertRegex(c.expiry, r"^at:[0-9]+$")
        self.assertLessEqual(int(c.expiry[3:]), time.time() - 4)
        # A gateway older than "at:" gets the shortest idle time it takes.
        meta = signed_meta(SID, {"a": 1})
        del meta[protocol.META_FEATURES]
        _, resp = run(view, meta)
        self.assertEqual(Change(resp).expiry, "1")

    def test_negative_set_expiry_before_1970_ends_the_session(self):
        # A negative number larger than the seconds since 1970 is still an
        # end in the past, as in Django (its cookie's expires is a date
        # before 1970). The gateway refuses an "at:" below zero with the
        # whole change, so the session was kept and the user saw a 500.
        def view(request):
            request.session.set_expiry(-(10**10))
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"a": 1}))
        c = Change(resp)
        self.assertRegex(c.expiry, r"^at:[0-9]+$")
        self.assertLessEqual(int(c.expiry[3:]), time.time())

    def test_set_expiry(self):
        for value, header in [(300, "300"), (0, "browser"), (timedelta(minutes=5), None)]:

            def view(request):
                request.session.set_expiry(value)
                return HttpResponse("ok")

            _, resp = run(view, signed_meta(SID, {"a": 1}))
            c = Change(resp)
            self.assertEqual(c.op, "write")
            if header is None:
                # A fixed end, which no later request extends.
                now = time.time()
                self.assertRegex(c.expiry, r"^at:[0-9]+$")
                self.assertTrue(now + 298 <= int(c.expiry[3:]) <= now + 301, c.expiry)
                self.assertIsInstance(c.data["_session_expiry"], str)
            else:
                self.assertEqual(c.expiry, header)
        # set_expiry(None) goes back to the gateway's policy, which the
        # gateway must be told: "" would mean "no change" and keep the old
        # expiry (a time or a browser-session cookie).

        def reset(request):
            request.session.set_expiry(None)
            return HttpResponse("ok")

        for loaded in (300, 0):
            _, resp = run(reset, signed_meta(SID, {"a": 1, "_session_expiry": loaded}))
            c = Change(resp)
            self.assertEqual((c.op, c.expiry, c.data), ("write", "default", {"a": 1}))

    def test_huge_expiry_is_capped_to_what_the_gateway_accepts(self):
        # The gateway refuses the whole change (the write too) for an
        # X-Sessiongate-Expiry over 10 years (wsgi/headers.go maxExpiry).
        for value in [timedelta(days=365 * 20), 10**12]:

            def view(request):
                request.session["user"] = "u"
                request.session.set_expiry(value)
                return HttpResponse("ok")

            _, resp = run(view, signed_meta(SID, {"a": 1}))
            c = Change(resp)
            self.assertEqual(c.op, "write")
            if c.expiry.startswith("at:"):
                self.assertLessEqual(int(c.expiry[3:]), 1 << 40)
            else:
                self.assertTrue(1 <= int(c.expiry) <= 10 * 365 * 24 * 3600, c.expiry)
            # An older gateway gets the seconds left, which it takes as idle.
            meta = signed_meta(SID, {"a": 1})
            del meta[protocol.META_FEATURES]
            _, resp = run(view, meta)
            self.assertTrue(1 <= int(Change(resp).expiry) <= 10 * 365 * 24 * 3600, Change(resp).expiry)

    def test_set_expiry_datetime_is_a_fixed_end(self):
        # As in Django: a datetime (aware, or naive in local time) or a
        # timedelta ends the session then, and the end is repeated, not
        # moved, by later responses; a past one ends it now. (The
        # standard library's UTC: django.utils.timezone.utc is gone in 5.0.)
        end = int(time.time()) + 600
        for use_tz, value in [
            (use_tz, value)
            for use_tz in (True, False)
            for value in [
                datetime.fromtimestamp(end, dt_timezone.utc),
                datetime.fromtimestamp(end),
                timedelta(seconds=end - time.time()),
            ]
        ]:
            with self.subTest(value=value, use_tz=use_tz), override_settings(USE_TZ=use_tz):

                def view(request):
                    request.session.set_expiry(value)
                    self.assertTrue(590 <= request.session.get_expiry_age() <= 600)
                    self.assertFalse(request.session.get_expire_at_browser_close())
                    return HttpResponse("ok")

                _, resp = run(view, signed_meta(SID, {"a": 1}))
                c = Change(resp)
                self.assertIn(c.expiry, ("at:%d" % end, "at:%d" % (end + 1)))
                # The next request, which does not touch the expiry, sends
                # the same end.
                _, resp = run(lambda r: HttpResponse("x"), signed_meta(SID, c.data))
                self.assertEqual(Change(resp).expiry, c.expiry)

        def past(request):
            request.session.set_expiry(datetime.fromtimestamp(time.time() - 60, dt_timezone.utc))
            return HttpResponse("ok")

        _, resp = run(past, signed_meta(SID, {"a": 1}))
        c = Change(resp)
        self.assertTrue(c.expiry.startswith("at:") and int(c.expiry[3:]) < time.time(), c.expiry)

    def test_naive_fixed_end_across_a_dst_fall_back(self):
        # Without USE_TZ, timezone.now() is naive local time. In the hour a
        # fall-back repeats (New York, 2026-11-01: 01:00-02:00 EDT, then
        # again EST) the end must be the real time that far on, as Django's
        # own backends keep it: a naive end read as the first pass of the
        # hour was an hour early, and the gateway ended the session at once.
        from unittest import mock

        old_tz = os.environ.get("TZ")
        os.environ["TZ"] = "America/New_York"
        time.tzset()
        try:
            second_pass = datetime(2026, 11, 1, 1, 30, fold=1)  # 06:30 UTC
            first_pass = datetime(2026, 11, 1, 1, 50)  # 05:50 UTC
            for now, value, left in [
                (second_pass, timedelta(minutes=10), 600),
                (second_pass, datetime(2026, 11, 1, 1, 40, fold=1), 600),
                # Across the change: 20 minutes on is 01:10 EST.
                (first_pass, timedelta(minutes=20), 1200),
                (first_pass, datetime(2026, 11, 1, 1, 10, fold=1), 1200),
            ]:
                with self.subTest(now=now, value=value), override_settings(USE_TZ=False), mock.patch(
                    "sessiongate_django.store.timezone.now", return_value=now
                ):
                    store = SessionStore(SID, {"a": 1})
                    store.set_expiry(value)
                    self.assertEqual(store.expiry_header(), "at:%d" % (now.timestamp() + left))
                    # Django's own readings, naive as timezone.now().
                    self.assertEqual(store.get_expiry_age(), left)
                    self.assertEqual(store.get_expiry_date(), now + timedelta(seconds=left))
                    # And so on the next request, from the stored session.
                    again = SessionStore(SID, dict(store.items()))
                    self.assertEqual(again.expiry_header(), "at:%d" % (now.timestamp() + left))
                    self.assertEqual(again.get_expiry_age(), left)
        finally:
            if old_tz is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = old_tz
            time.tzset()

    def test_own_expiry_repeated_on_unchanged_requests(self):
        _, resp = run(lambda r: HttpResponse("x"), signed_meta(SID, {"a": 1, "_session_expiry": 600}))
        c = Change(resp)
        self.assertEqual((c.op, c.expiry), ("touch", "600"))

    def test_save_every_request(self):
        with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
            _, resp = run(lambda r: HttpResponse("x"), signed_meta(SID, {"a": 1}))
            self.assertEqual(Change(resp).op, "touch")
            # Nothing to touch without a session.
            _, resp = run(lambda r: HttpResponse("x"))
            self.assertEqual(internal_headers(resp), [])

    def test_save_every_request_saves_nested_changes(self):
        # Django's documented remedy for a change inside a stored dict,
        # which does not set session.modified: with SESSION_SAVE_EVERY_REQUEST
        # it saves the session on every request, so the change is kept.
        def view(request):
            request.session["cart"]["pear"] = 1
            return HttpResponse("x")

        with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
            _, resp = run(view, signed_meta(SID, {"cart": {"apple": 2}}))
            c = Change(resp)
            self.assertEqual((c.op, c.rotate, c.data), ("write", "", {"cart": {"apple": 2, "pear": 1}}))
        # Without the setting, as in Django, only session.modified saves it.
        _, resp = run(view, signed_meta(SID, {"cart": {"apple": 2}}))
        self.assertEqual(Change(resp).op, "touch")

    def test_expire_at_browser_close_setting(self):
        with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):

            def view(request):
                request.session["a"] = 2
                return HttpResponse("x")

            _, resp = run(view, signed_meta(SID, {"a": 1}))
            self.assertEqual(Change(resp).expiry, "browser")

    def test_lone_surrogate_from_a_json_body_is_stored_as_replacement_character(self):
        # A JSON API view keeps a client's string, whose "\\ud800" escape
        # json.loads turns into a lone surrogate: Django's JSONSerializer
        # stores it, so the page must not become a 500; UTF-8 (and PHP)
        # can only have U+FFFD of it.
        def view(request):
            request.session["q"] = json.loads('"abc\\ud800"')
            return HttpResponse("ok")

        _, resp = run(view, signed_meta(SID, {"a": 1}))
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(Change(resp).data, {"a": 1, "q": "abc\ufffd"})

    def test_unserializable_value_is_refused(self):
        def view(request):
            request.session["when"] = object()
            return HttpResponse("x")

        with self.assertLogs("sessiongate_django", "ERROR"):
            _, e = run_refused(view)
        self.assertIsInstance(e, TypeError)

    def test_refused_write_after_logout_still_deletes(self):
        # Django's flush() deletes the stored session at once: a logout
        # view that then stores a value JSON cannot hold (a datetime) fails
        # with a 500 under Django's own sessions, but the user is logged
        # out. The refused write must not keep the old session alive here.
        from datetime import datetime

        def view(request):
            request.session.get("_auth_user_id")
            request.session.flush()
            request.session["logged_out_at"] = datetime(2024, 1, 2)
            return HttpResponse("x")

        with self.assertLogs("sessiongate_django", "ERROR") as logs:
            _, resp = run(view, signed_meta(SID, {"_auth_user_id": "2"}))
        self.assertIn("not JSON-serializable", "\n".join(logs.output))
        self.assertEqual(resp.status_code, 500)
        c = Change(resp)
        self.assertEqual((c.op, c.rotate, c.data), ("delete", "", None))

        # The same for a write too large for the gateway after a login's
        # cycle_key(), which deletes the old session at once too.
        def big(request):
            request.session.cycle_key()
            request.session["big"] = "x" * (8 << 20)
            return HttpResponse("x")

        with self.assertLogs("sessiongate_django", "ERROR"):
            _, resp = run(big, signed_meta(SID, {"cart": [1]}))
        self.assertEqual(resp.status_code, 500)
        self.assertEqual(Change(resp).op, "delete")

    def test_session_too_large_for_the_gateway_is_refused(self):
        # Over the gateway's response header limit the gateway answers 502
        # and drops the change; the view must get a clear error instead.
        def view(request):
            request.session["big"] = "x" * (8 << 20)
            return HttpResponse("x")

        with self.assertLogs("sessiongate_django", "ERROR") as logs:
            _, e = run_refused(view, signed_meta(SID, {"a": 1}))
        self.assertIsInstance(e, ValueError)
        self.assertIn("too large for the gateway", str(e))
        self.assertIn("session change refused", "\n".join(logs.output))

        # Just under the limit still goes.
        def under(request):
            request.session["big"] = "x" * (6 << 20)
            return HttpResponse("x")

        _, resp = run(under, signed_meta(SID, {"a": 1}))
        self.assertEqual(len(Change(resp).data["big"]), 6 << 20)
        size = sum(len(k) + len(v) + 4 for k, v in resp.items() if k.startswith("X-Sessiongate"))
        self.assertLess(size, protocol.MAX_CHANGE_HEADER_BYTES)

    def test_session_too_large_for_uwsgi_is_refused(self):
        # uWSGI fails start_response() past 65535 bytes of response head
        # (status line and headers, whatever its --buffer-size): no
        # answer, the gateway's 502, and the change lost. Under uWSGI the
        # view gets a clear error instead; elsewhere the same write goes.
        uwsgi = {"uwsgi.version": b"2.0.21-debian"}

        def view(request):
            request.session["big"] = "x" * int(request.GET["n"])
            return HttpResponse("x")

        meta = signed_meta(SID, {"a": 1})
        with self.assertLogs("sessiongate_django", "ERROR") as logs:
            _, e = run_refused(view, dict(meta, **uwsgi), path="/accounts/x/?n=48000")
        self.assertIsInstance(e, ValueError)
        self.assertIn("too large for uWSGI", str(e))
        self.assertIn("session change refused", "\n".join(logs.output))
        _, resp = run(view, signed_meta(SID, {"a": 1}), path="/accounts/x/?n=48000")
        self.assertEqual(len(Change(resp).data["big"]), 48000)
        # What uWSGI carries goes under it too (45000 bytes passed it).
        _, resp = run(view, dict(signed_meta(SID, {"a": 1}), **uwsgi), path="/accounts/x/?n=45000")
        self.assertEqual(len(Change(resp).data["big"]), 45000)

    def test_refused_change_leaves_no_data_in_the_report(self):
        # Django's error report prints every frame's variables, and Django
        # 3.2 builds it on every 500 (AdminEmailHandler, ADMINS set or
        # not): with the refused session among them it took seconds.
        big = "x" * (8 << 20)

        def view(request):
            request.session["big"] = big
            request.session["when"] = object() if request.GET.get("bad") else 1
            return HttpResponse("x")

        for query, exc in [("", ValueError), ("?bad=1", TypeError)]:
            with self.assertLogs("sessiongate_django", "ERROR"):
                _, caught = run_refused(view, signed_meta(SID, {"a": 1}), path="/accounts/x/" + query)
            self.assertIsInstance(caught, exc, query)
            chain, e = [], caught
            while e is not None:
                chain.append(e)
                e = e.__cause__ or e.__context__
            for e in chain:
                for frame, _ in traceback.walk_tb(e.__traceback__):
                    if frame.f_code.co_filename == __file__:
                        continue
                    for name, value in frame.f_locals.items():
                        self.assertLess(
                            len(repr(value)), 1 << 16, "%s: %s in %s" % (query, name, frame.f_code.co_name)
                        )

    def test_session_php_cannot_read_is_refused(self):
        # The gateway stores what PHP cannot be given (phpserial's depth
        # and value limits) and then answers every PHP page of the session
        # with a 500: refuse it here, where the view can see why.
        def nested(depth):
            v = 1
            for _ in range(depth):
                v = [v]
            return v

        for value, reason in [
            (nested(protocol.PHP_MAX_DEPTH), "nested more than"),
            ([0] * protocol.PHP_MAX_VALUES, "values"),
            # Within the value count, but 17.9 MB of PHP text: over the
            # 16 MiB the gateway gives PHP, it refuses the write itself.
            (["xx"] * (protocol.PHP_MAX_VALUES - 2), "too large for PHP"),
            # PHP could only get INF: the gateway refuses the write.
            (10**400, "beyond a float's range"),
            ({"k": [-(2**1024)]}, "beyond a float's range"),
        ]:

            def view(request, value=value):
                request.session["v"] = value
                return HttpResponse("x")

            with self.assertLogs("sessiongate_django", "ERROR"):
                _, e = run_refused(view, signed_meta(SID, {"a": 1}))
            self.assertIsInstance(e, ValueError)
            self.assertRegex(str(e), reason)

        # At the limits (the session object is depth 1 and one value), and
        # a PHP scalar tag one level deeper, which the gateway allows.
        deepest_tag = nested(protocol.PHP_MAX_DEPTH - 1)
        inner = deepest_tag
        while isinstance(inner[0], list):
            inner = inner[0]
        inner[0] = {"__php__": "d:INF;"}
        for value in [
            nested(protocol.PHP_MAX_DEPTH - 1),
            [0] * (protocol.PHP_MAX_VALUES - 3),
            deepest_tag,
            [{"k": "[" * 100}],
            # A float PHP gets, digits in a string, the largest float.
            [2**64, 10**308, "1" * 400, int(1.7976931348623157e308)],
        ]:

            def ok(request, value=value):
                request.session["v"] = value
                return HttpResponse("x")

            _, resp = run(ok, signed_meta(SID, {"a": 1}))
            self.assertEqual(Change(resp).op, "write")

    def test_session_reserved_shapes_are_refused(self):
        # Shapes the contract reserves for PHP's tags: the gateway refused
        # the first ones with only its own log saying why, and stored the
        # last, which PHP then read as its whole session.
        def whole_next_to(s):
            s["__php_session__"] = "a:0:{}"

        def tag_int(s):
            s["v"] = {"__php__": 5}

        def nested_tag_none(s):
            s["v"] = [{"k": {"__php__b64": None}}]

        def root_tag_list(s):
            s.clear()
            s["__php_session__"] = ["a:0:{}"]

        def only_tag(s):
            s.clear()
            s["__php__"] = 'a:1:{s:1:"x";i:1;}'

        def only_tag_b64(s):
            s.clear()
            s["__php__b64"] = "YTowOnt9"

        for change, reason in [
            (whole_next_to, '"__php_session__" must be the only key'),
            (tag_int, '"__php__" must hold a string'),
            (nested_tag_none, '"__php__b64" must hold a string'),
            (root_tag_list, '"__php_session__" must hold a string'),
            (only_tag, 'a session whose only key is "__php__"'),
            (only_tag_b64, 'a session whose only key is "__php__b64"'),
        ]:

            def view(request, change=change):
                change(request.session)
                return HttpResponse("x")

            with self.assertLogs("sessiongate_django", "ERROR") as logs:
                _, e = run_refused(view, signed_meta(SID, {"a": 1}))
            self.assertIsInstance(e, ValueError)
            self.assertIn(reason, str(e))
            self.assertIn(reason, logs.output[0])

        # Tag names that are no tag: next to other keys, with another
        # member, "__php_session__" below the top, and the whole-session
        # member alone holding text, as the gateway gives a linked session.
        for change in [
            lambda s: s.__setitem__("__php__", 5),
            lambda s: s.__setitem__("v", {"__php__": 5, "b": 1}),
            lambda s: s.__setitem__("v", {"__php_session__": 5}),
            lambda s: s.__setitem__("v", {"__php__": "d:INF;"}),
        ]:

            def ok(request, change=change):
                change(request.session)
                return HttpResponse("x")

            _, resp = run(ok, signed_meta(SID, {"a": 1}))
            self.assertEqual(Change(resp).op, "write")

        def linked(request):
            request.session["__php_session__"] = 'a:1:{s:1:"a";i:2;}'
            return HttpResponse("x")

        _, resp = run(linked, signed_meta(SID, {"__php_session__": 'a:1:{s:1:"a";i:1;}'}))
        self.assertEqual(Change(resp).data, {"__php_session__": 'a:1:{s:1:"a";i:2;}'})

        # A login (cycle_key()) next to a linked PHP session is refused
        # whole, not turned into a deletion of PHP's data.
        def login(request):
            request.session.cycle_key()
            request.session["_auth_user_id"] = "1"
            return HttpResponse("x")

        with self.assertLogs("sessiongate_django", "ERROR"):
            _, e = run_refused(login, signed_meta(SID, {"__php_session__": 'a:1:{s:1:"a";i:1;}'}))
        self.assertIsInstance(e, ValueError)
        self.assertIn("must be the only key", str(e))

    def test_old_key_verifies_and_signs_the_answer(self):
        def view(request):
            request.session["a"] = 2
            return HttpResponse("x")

        _, resp = run(view, signed_meta(SID, {"a": 1}, key=OLD_KEY))
        c = Change(resp, key=OLD_KEY)
        self.assertEqual(c.data, {"a": 2})


class AsyncAPITests(unittest.TestCase):
    """Django 5.1's SessionBase.aset_expiry: ours must keep what set_expiry
    keeps. (The other async methods of 5.1 reach our load, create, delete
    and save through sync_to_async and need nothing of their own.)"""

    def test_aset_expiry_is_set_expiry(self):
        from django.utils import timezone

        for value, want in [
            (timedelta(minutes=5), (298, 301)),
            (timezone.now() + timedelta(minutes=5), (298, 301)),
            (600, (600, 600)),
        ]:
            store = SessionStore(SID, {"a": 1})
            asyncio.run(store.aset_expiry(value))
            header = store.expiry_header()
            left = int(header[3:]) - time.time() if header.startswith("at:") else int(header)
            self.assertTrue(want[0] <= left <= want[1], header)
        store = SessionStore(SID, {"a": 1, "_session_expiry": 300})
        asyncio.run(store.aset_expiry(None))
        self.assertEqual(store.gateway_change(False), ("write", False, {"a": 1}))
        self.assertEqual(store.expiry_header(), "default")


class UntrustedRequestTests(unittest.TestCase):
    def writer(self, request):
        self.seen = dict(request.session.items())
        self.seen_key = request.session.session_key
        request.session["_auth_user_id"] = "1"
        return HttpResponse("ok")

    def check(self, meta, level, mark="refused-signature"):
        with self.assertLogs("sessiongate_django", level=level) as logs:
            _, resp = run(self.writer, meta)
        self.assertEqual(resp.status_code, 200)
        self.assertEqual((self.seen, self.seen_key), ({}, None))
        self.assertEqual(internal_headers(resp), [])
        # The gateway logs why, naming the fix (SESSIONGATE_SESSION_KEYS,
        # the clock): Django's log may be far from the operator's eyes.
        self.assertEqual(resp.get(protocol.MARK_HEADER), mark)
        return "\n".join(logs.output)

    def test_missing_headers(self):
        out = self.check({}, "INFO", mark="refused-missing")
        self.assertIn("no gateway signature", out)
        self.assertIn("change dropped", out)

    def test_forged(self):
        other = protocol.derive_key(b"attacker-secret-0123456789abcdef0123")
        out = self.check(signed_meta(SID, {"_auth_user_id": "1"}, key=other), "WARNING")
        self.assertIn("bad signature", out)
        # It came through a gateway (or claims to): the dropped change must
        # say why, not send the operator looking for a bypass during a key
        # rotation.
        self.assertRegex(out, r"change dropped.*bad signature")
        self.assertNotIn("did not come through the gateway", out)

    def test_stale(self):
        out = self.check(signed_meta(SID, {"_auth_user_id": "1"}, ts=int(time.time()) - 120), "WARNING", mark="refused-clock")
        self.assertIn("more than 60 s", out)
        self.assertRegex(out, r"change dropped.*more than 60 s")
        self.assertNotIn("did not come through the gateway", out)

    def test_non_ascii_signature(self):
        # WSGI decodes header bytes as latin-1: a client can send any of them.
        meta = signed_meta(SID, {"_auth_user_id": "1"})
        meta[protocol.META_SIGNATURE] = "\u00e9" * 64
        out = self.check(meta, "WARNING", mark="refused-malformed")
        self.assertIn("bad signature", out)

    def test_aliased_header_spelling_is_same_environ_key(self):
        # WSGI servers map X_Sessiongate_Signature and X-Sessiongate-Signature
        # to the same key: only the signature protects the session.
        meta = signed_meta(SID, {"_auth_user_id": "1"})
        meta[protocol.META_DATA + "0"] = base64.b64encode(b'{"_auth_user_id":"2"}').decode()
        self.check(meta, "WARNING")

    def test_mangled_headers(self):
        meta = signed_meta(SID, {"_auth_user_id": "1"})
        del meta[protocol.META_DATA + "0"]
        out = self.check(meta, "WARNING", mark="refused-malformed")
        self.assertIn("chunk 0 missing", out)


class MarkTests(unittest.TestCase):
    """Every response the middleware handled says so (and what it made of
    the gateway's headers) in X-Sessiongate-Django: the gateway's one way to
    tell a site where it is missing (Django's own SessionMiddleware left in
    MIDDLEWARE) or refuses the gateway's signature from a working one."""

    def test_verified_request_is_marked_ok_whatever_the_response(self):
        from django.http import Http404, StreamingHttpResponse

        def page(request):
            return HttpResponse("x")

        def missing(request):
            raise Http404("no such page")

        def stream(request):
            return StreamingHttpResponse(iter([b"a", b"b"]))

        def not_modified(request):
            return HttpResponse(status=304)

        from django.core.handlers.exception import convert_exception_to_response

        for view in (page, missing, stream, not_modified):
            for method in ("get", "head"):
                # As Django's handler wraps every layer: the 404 page is a
                # response by the time it reaches the middleware.
                _, resp = run(convert_exception_to_response(view), method=method)
                self.assertEqual(resp.get(protocol.MARK_HEADER), "ok", (view.__name__, method, resp.status_code))
        # A key of the rotation's older secrets verifies too.
        _, resp = run(page, signed_meta(SID, {}, key=OLD_KEY))
        self.assertEqual(resp.get(protocol.MARK_HEADER), "ok")

    def test_500_of_a_refused_write_is_marked(self):
        from datetime import datetime

        def view(request):
            request.session.flush()
            request.session["at"] = datetime(2024, 1, 2)
            return HttpResponse("x")

        with self.assertLogs("sessiongate_django", "ERROR"):
            _, resp = run(view, signed_meta(SID, {"_auth_user_id": "2"}))
        self.assertEqual((resp.status_code, resp.get(protocol.MARK_HEADER)), (500, "ok"))

    def test_a_copy_from_the_view_or_the_cache_is_replaced(self):
        # A cached page stored with another request's mark, or a view's
        # own header of that name, must not speak for this request.
        def view(request):
            r = HttpResponse("x")
            r[protocol.MARK_HEADER] = "refused-signature"
            return r

        _, resp = run(view)
        self.assertEqual(resp.get(protocol.MARK_HEADER), "ok")

        def claims_ok(request):
            r = HttpResponse("x")
            r["x-sessiongate-django"] = "ok"
            return r

        other = protocol.derive_key(b"another-gateway-secret-0123456789abcdef")
        with self.assertLogs("sessiongate_django", "WARNING"):
            _, resp = run(claims_ok, signed_meta(SID, {}, key=other))
        self.assertEqual([v for k, v in resp.items() if k.lower() == "x-sessiongate-django"], ["refused-signature"])


class AuthTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        call_command("migrate", verbosity=0, interactive=False)
        User = auth.get_user_model()
        cls.user = User.objects.create_user("demo", password="demo-password")

    def test_login_rotates_and_logout_deletes(self):
        def login(request):
            user = auth.authenticate(request, username="demo", password="demo-password")
            auth.login(request, user)
            return HttpResponse("in")

        _, resp = run(login, signed_meta(SID, {"cart": {"apple": 2}}), method="post")
        c = Change(resp)
        self.assertEqual((c.op, c.rotate), ("write", "carry"))
        self.assertEqual(c.data["_auth_user_id"], str(self.user.pk))
        self.assertEqual(c.data["cart"], {"apple": 2})
        self.assertIn("_auth_user_hash", c.data)

        def whoami(request):
            return HttpResponse(auth.get_user(request).username)

        # The session as the gateway would send it next time.
        request, resp = run(whoami, signed_meta(SID, c.data))
        self.assertEqual(resp.content, b"demo")

        def logout(request):
            auth.logout(request)
            return HttpResponse("out")

        _, resp = run(logout, signed_meta(SID, c.data), method="post")
        self.assertEqual(Change(resp).op, "delete")

    def test_login_as_another_user_flushes(self):
        other = auth.get_user_model().objects.create_user("other", password="pw-0123456789")

        def login(request):
            auth.login(request, other, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponse("in")

        data = {"_auth_user_id": str(self.user.pk), "_auth_user_backend": "x", "secret": "of demo"}
        _, resp = run(login, signed_meta(SID, data))
        c = Change(resp)
        self.assertEqual((c.op, c.rotate), ("write", "1"))
        self.assertNotIn("secret", c.data)
        self.assertEqual(c.data["_auth_user_id"], str(other.pk))


class SilentBackend:
    """An authentication backend that does not say whether it takes an
    inactive user (no user_can_authenticate())."""

    def get_user(self, user_id):
        return auth.get_user_model().objects.filter(pk=user_id).first()


def reported_logins(response, key=KEY, nonce=NONCE):
    """X-Sessiongate-Logins as the gateway reads it: {user id: [hashes]},
    after checking its signature; {} when there is none."""
    value = response.get(protocol.LOGINS_HEADER)
    if value is None:
        assert response.get(protocol.LOGINS_SIGNATURE_HEADER) is None
        return {}
    assert response[protocol.LOGINS_SIGNATURE_HEADER] == protocol.logins_signature(key, nonce, value)
    out = {}
    for entry in value.split(" "):
        user, hashes = entry.split(":", 1)
        out[base64.b64decode(user).decode()] = hashes.split(",") if hashes else []
    return out


class LoginsTests(unittest.TestCase):
    """The middleware reports the login hashes Django takes for a user
    whenever they may have changed, so that the gateway can tell PHP pages
    of a session a password change ended (docs/protocol.md, "Logins")."""

    @classmethod
    def setUpClass(cls):
        call_command("migrate", verbosity=0, interactive=False)
        cls.user = auth.get_user_model().objects.create_user("logins-demo", password="old-password-0123")

    def setUp(self):
        self.user.refresh_from_db()

    def login(self, data=None):
        def view(request):
            auth.login(request, self.user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponse("in")

        _, resp = run(view, signed_meta(SID, data or {}), method="post")
        return Change(resp).data, resp

    def test_login_reports_the_users_valid_hashes(self):
        data, resp = self.login()
        got = reported_logins(resp)
        self.assertEqual(list(got), [str(self.user.pk)])
        self.assertEqual(got[str(self.user.pk)][0], data["_auth_user_hash"])

    def test_password_change_reports_the_new_hash_only(self):
        data, _ = self.login()

        def change_password(request):
            # As AuthenticationMiddleware gives it, loaded by the view.
            from django.utils.functional import SimpleLazyObject

            request.user = SimpleLazyObject(lambda: auth.get_user(request))
            request.user.pk  # loaded, as a view that looks at it loads it
            user = request.user._wrapped
            user.set_password("new-password-0123")
            user.save()
            auth.update_session_auth_hash(request, user)
            return HttpResponse("changed")

        _, resp = run(change_password, signed_meta(SID, data), method="post")
        c = Change(resp)
        got = reported_logins(resp)[str(self.user.pk)]
        self.assertNotEqual(c.data["_auth_user_hash"], data["_auth_user_hash"])
        self.assertEqual(got[0], c.data["_auth_user_hash"])
        self.assertNotIn(data["_auth_user_hash"], got)

        # The session of the old password: Django logs it out.
        def whoami(request):
            return HttpResponse(auth.get_user(request).is_authenticated and "in" or "out")

        _, resp = run(whoami, signed_meta(SID, data))
        self.assertEqual(resp.content, b"out")

    @unittest.skipIf(django.VERSION < (4, 2), "SECRET_KEY_FALLBACKS renews a session's hash from Django 4.2")
    def test_hash_renewed_from_a_fallback_secret_is_reported(self):
        # A rotated SECRET_KEY: Django takes the session's hash made with
        # the old key and renews it, saving no user. Unreported, the
        # gateway would keep only hashes of the old key, and PHP would
        # name nobody in the renewed session.
        data, _ = self.login()
        with override_settings(SECRET_KEY="rotated-" + "k" * 50, SECRET_KEY_FALLBACKS=["test-only"]):
            from django.utils.functional import SimpleLazyObject

            def page(request):
                request.user = SimpleLazyObject(lambda: auth.get_user(request))
                return HttpResponse(request.user.is_authenticated and "in" or "out")

            _, resp = run(page, signed_meta(SID, data))
            self.assertEqual(resp.content, b"in")
            c = Change(resp)
            self.assertNotEqual(c.data["_auth_user_hash"], data["_auth_user_hash"])
            got = reported_logins(resp)[str(self.user.pk)]
            self.assertEqual(got, [c.data["_auth_user_hash"], data["_auth_user_hash"]])

    @unittest.skipIf(django.VERSION < (5, 0), "request.auser() and aget_user() from Django 5.0")
    def test_hash_renewed_in_an_async_views_user_is_reported(self):
        # An async view loads the user with await request.auser(), which
        # AuthenticationMiddleware caches apart from request.user.
        from asgiref.sync import async_to_sync

        data, _ = self.login()
        with override_settings(SECRET_KEY="rotated-" + "k" * 50, SECRET_KEY_FALLBACKS=["test-only"]):

            def page(request):
                request._acached_user = async_to_sync(auth.aget_user)(request)
                return HttpResponse(request._acached_user.is_authenticated and "in" or "out")

            _, resp = run(page, signed_meta(SID, data))
            self.assertEqual(resp.content, b"in")
            c = Change(resp)
            self.assertEqual(reported_logins(resp)[str(self.user.pk)][0], c.data["_auth_user_hash"])

    def test_password_set_without_a_session_is_reported(self):
        # A password reset by e-mail, or an administrator's change of
        # another user's password: no session of that user is written.
        def reset(request):
            self.user.set_password("reset-password-0123")
            self.user.save()
            return HttpResponse("done")

        _, resp = run(reset, signed_meta(SID, {"cart": 1}), method="post")
        got = reported_logins(resp)
        self.assertEqual(got[str(self.user.pk)][0], self.user.get_session_auth_hash())

    def test_login_racing_a_password_change_reports_the_committed_hash(self):
        # login() saves last_login on the user it loaded before checking
        # the password (update_fields, so the password in the database
        # stays). A password change committed in between (another device,
        # another gateway) must not be reported back as the old hash: the
        # gateway keeps the latest report, and that one would make the old
        # password's sessions valid on PHP pages and the new one's not.
        model = auth.get_user_model()
        user = model.objects.create_user("logins-race", password="old-password-0123")

        def login_view(request):
            loaded = auth.authenticate(request, username="logins-race", password="old-password-0123")
            elsewhere = model.objects.get(pk=loaded.pk)
            elsewhere.set_password("new-password-0123")
            elsewhere.save()
            auth.login(request, loaded)
            return HttpResponse("in")

        _, resp = run(login_view, signed_meta(SID, {}), method="post")
        user.refresh_from_db()
        self.assertEqual(reported_logins(resp), {str(user.pk): [user.get_session_auth_hash()]})

    def test_committed_password_change_is_reported_on_a_refused_change(self):
        # The password change is committed; the session write after it
        # holds a value JSON cannot hold, so the page is a 500 and the
        # change is refused. The report still goes with that 500: without
        # it PHP pages would go on naming the user in every other session.
        user = auth.get_user_model().objects.create_user("logins-refused", password="old-password-0123")

        def change_password(request):
            user.set_password("new-password-0123")
            user.save()
            request.session["changed_at"] = datetime.now()  # not JSON
            return HttpResponse("changed")

        with self.assertLogs("sessiongate_django", "ERROR"):
            resp, _ = run_refused(change_password, signed_meta(SID, {"_auth_user_id": str(user.pk)}))
        user.refresh_from_db()
        self.assertEqual(reported_logins(resp), {str(user.pk): [user.get_session_auth_hash()]})
        self.assertEqual(resp[protocol.MARK_HEADER], protocol.MARK_OK)

    def test_user_saved_or_deleted_through_a_proxy_model_is_reported(self):
        # Django sends a proxy's (or a subclass's) signals with its own
        # class as sender: a password set on an admin's proxy for staff,
        # or a user deleted through one, is a change of the user all the
        # same.
        from django.apps import apps

        try:
            staff_model = apps.get_model("auth", "LoginsStaffUser")
        except LookupError:

            class LoginsStaffUser(auth.get_user_model()):
                class Meta:
                    proxy = True
                    app_label = "auth"

            staff_model = LoginsStaffUser
        user = auth.get_user_model().objects.create_user("logins-staff", password="old-password-0123")
        staff = staff_model.objects.get(pk=user.pk)

        def reset(request):
            staff.set_password("new-password-0123")
            staff.save()
            return HttpResponse("done")

        _, resp = run(reset, signed_meta(SID, {"x": 1}), method="post")
        self.assertEqual(reported_logins(resp), {str(user.pk): [staff.get_session_auth_hash()]})

        def delete(request):
            staff_model.objects.get(pk=user.pk).delete()
            return HttpResponse("deleted")

        _, resp = run(delete, signed_meta(SID, {"x": 1}), method="post")
        self.assertEqual(reported_logins(resp), {str(user.pk): []})

    def test_deleted_user_has_no_valid_login(self):
        gone = auth.get_user_model().objects.create_user("logins-gone", password="gone-password-0123")
        uid = str(gone.pk)

        def delete(request):
            gone.delete()
            return HttpResponse("deleted")

        _, resp = run(delete, method="post")
        self.assertEqual(reported_logins(resp), {uid: []})
        self.assertEqual(resp[protocol.LOGINS_HEADER], base64.b64encode(uid.encode()).decode() + ":")

    def test_inactive_user_has_no_valid_login(self):
        # ModelBackend's get_user() gives back no inactive user, so Django
        # finds nobody for the user's sessions until the user is active
        # again, when they are valid again as they were.
        user = auth.get_user_model().objects.create_user("logins-idle", password="idle-password-0123")
        uid = str(user.pk)

        def set_active(active):
            def view(request):
                user.is_active = active
                user.save()
                return HttpResponse("saved")

            _, resp = run(view, method="post")
            return reported_logins(resp)

        self.assertEqual(set_active(False), {uid: []})
        self.assertEqual(set_active(True), {uid: [user.get_session_auth_hash()]})

    def test_inactive_user_keeps_logins_a_backend_takes(self):
        # AllowAllUsersModelBackend, or a backend that does not say
        # (no user_can_authenticate()), may give back an inactive user:
        # the user's hashes stay valid. With no backend Django takes
        # nobody.
        user = auth.get_user_model().objects.create_user("logins-allowed", password="allowed-password-0123", is_active=False)
        uid = str(user.pk)
        valid = [user.get_session_auth_hash()]

        def saved():
            def view(request):
                user.save()
                return HttpResponse("saved")

            _, resp = run(view, method="post")
            return reported_logins(resp)

        for backends, want in [
            (["django.contrib.auth.backends.ModelBackend", "django.contrib.auth.backends.AllowAllUsersModelBackend"], valid),
            ([__name__ + ".SilentBackend"], valid),
            (["django.contrib.auth.backends.ModelBackend"], []),
            ([], []),
        ]:
            with self.subTest(backends=backends), override_settings(AUTHENTICATION_BACKENDS=backends):
                self.assertEqual(saved(), {uid: want})

    def test_rolled_back_save_is_not_reported(self):
        from django.db import transaction

        def failing(request):
            try:
                with transaction.atomic():
                    self.user.set_password("never-stored-0123")
                    self.user.save()
                    raise RuntimeError("rolled back")
            except RuntimeError:
                pass
            return HttpResponse("kept")

        _, resp = run(failing, method="post")
        self.assertEqual(reported_logins(resp), {})

    def test_nothing_reported_to_a_gateway_without_the_feature(self):
        meta = protocol.request_meta(KEY, SID, b"{}", NONCE, str(int(time.time())), features="rotate-carry expiry-at")

        def view(request):
            auth.login(request, self.user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponse("in")

        _, resp = run(view, meta, method="post")
        self.assertEqual(internal_headers(resp).count(protocol.LOGINS_HEADER), 0)
        self.assertIsNone(resp.get(protocol.LOGINS_HEADER))
        self.assertEqual(Change(resp).op, "write")

    def test_a_page_that_changes_no_login_reports_nothing(self):
        data, _ = self.login()

        def whoami(request):
            request.session["seen"] = auth.get_user(request).username
            return HttpResponse("x")

        _, resp = run(whoami, signed_meta(SID, data))
        self.assertEqual(Change(resp).op, "write")
        self.assertEqual(reported_logins(resp), {})

    def test_users_and_hashes_the_gateway_cannot_take_are_left_out(self):
        v = protocol.Verified(SID, {}, KEY, NONCE)
        users = {"u%d" % i: ["h%d" % i] for i in range(protocol.MAX_LOGIN_USERS + 3)}
        users["{tag}"] = ["h"]
        users["no-hash"] = ["a,b", "with space"]
        users["many"] = ["h%d" % i for i in range(20)]
        headers = dict(protocol.logins_headers(v, users))
        entries = headers[protocol.LOGINS_HEADER].split(" ")
        self.assertEqual(len(entries), protocol.MAX_LOGIN_USERS)
        self.assertNotIn(base64.b64encode(b"{tag}").decode() + ":h", entries)
        self.assertEqual(protocol.logins_headers(v, {"no-hash": ["a,b"]}), [])
        self.assertEqual(dict(protocol.logins_headers(v, {"gone": []}))[protocol.LOGINS_HEADER], "Z29uZQ==:")
        # Part of a user's hashes would end the sessions of the others:
        # such a user is left out whole.
        for hashes in (["good", "a,b"], ["h%d" % i for i in range(protocol.MAX_LOGIN_HASHES + 1)]):
            self.assertEqual(protocol.logins_headers(v, {"u": hashes}), [])
        self.assertEqual(len(protocol.logins_headers(v, {"u": ["h"] * protocol.MAX_LOGIN_HASHES})), 2)


class KeyConfigTests(unittest.TestCase):
    def test_setting_then_environment(self):
        self.assertEqual(load_keys(), [KEY, OLD_KEY])
        with override_settings(SESSIONGATE_SESSION_KEYS=None):
            old = os.environ.get("SESSIONGATE_SESSION_KEYS")
            try:
                os.environ["SESSIONGATE_SESSION_KEYS"] = OLD_SECRET
                self.assertEqual(load_keys(), [OLD_KEY])
                del os.environ["SESSIONGATE_SESSION_KEYS"]
                with self.assertRaises(ImproperlyConfigured):
                    load_keys()
            finally:
                if old is not None:
                    os.environ["SESSIONGATE_SESSION_KEYS"] = old
        # A key byte that is not UTF-8 (the gateway takes the variable's
        # bytes): it failed to encode, and Django refused to start with a
        # key the gateway accepted.
        raw = OLD_SECRET.encode() + b"\xe9"
        with override_settings(SESSIONGATE_SESSION_KEYS=None):
            old = os.environb.get(b"SESSIONGATE_SESSION_KEYS")
            try:
                os.environb[b"SESSIONGATE_SESSION_KEYS"] = raw
                self.assertEqual(load_keys(), [protocol.derive_key(raw)])
            finally:
                if old is None:
                    del os.environb[b"SESSIONGATE_SESSION_KEYS"]
                else:
                    os.environb[b"SESSIONGATE_SESSION_KEYS"] = old
        with override_settings(SESSIONGATE_SESSION_KEYS=SECRET.encode()):
            self.assertEqual(load_keys(), [KEY])
        with override_settings(SESSIONGATE_SESSION_KEYS="too-short"):
            with self.assertRaises(ImproperlyConfigured):
                SessionMiddleware(lambda r: HttpResponse())

    def test_django_session_middleware_left_in_is_refused(self):
        # Next to ours, Django's SessionMiddleware replaced request.session
        # with a SESSION_ENGINE session: nothing reached the gateway, and a
        # cookie of the gateway's name was set, with no word at start.
        stock = "django.contrib.sessions.middleware.SessionMiddleware"
        ours = "sessiongate_django.SessionMiddleware"
        for mw in ([ours, stock], [stock, ours]):
            with override_settings(MIDDLEWARE=mw):
                with self.assertRaisesRegex(ImproperlyConfigured, "replace"):
                    SessionMiddleware(lambda r: HttpResponse())
        with override_settings(MIDDLEWARE=[ours]):
            SessionMiddleware(lambda r: HttpResponse())

    def test_subclass_of_djangos_session_middleware_left_in_is_refused(self):
        # A project's own subclass of Django's SessionMiddleware (one that
        # turns SessionInterrupted into a redirect, say) left next to ours
        # does the same: after ours it replaces request.session with a
        # SESSION_ENGINE session, and ours then sends nothing.
        custom = __name__ + ".ProjectSessionMiddleware"
        ours = "sessiongate_django.SessionMiddleware"
        for mw in ([ours, custom], [custom, ours]):
            with override_settings(MIDDLEWARE=mw):
                with self.assertRaisesRegex(ImproperlyConfigured, "ProjectSessionMiddleware"):
                    SessionMiddleware(lambda r: HttpResponse())
        # Subclasses of ours are ours; one that keeps a session of its own
        # elsewhere (djangosaml2's SamlSessionMiddleware) may stay.
        for other in ("OwnSubclass", "SamlLikeSessionMiddleware"):
            with override_settings(MIDDLEWARE=[ours, __name__ + "." + other]):
                OwnSubclass(lambda r: HttpResponse())

    def test_conditional_get_outside_is_refused(self):
        # ConditionalGetMiddleware before ours in MIDDLEWARE runs its
        # process_response after ours and turns a revalidated page into a
        # fresh 304 that keeps only a few headers (and Django's cookies):
        # the session change is lost. A logout page the browser revalidates
        # would leave the user logged in, where Django's own flush() has
        # deleted the session before any response exists.
        from django.http import HttpResponse
        from django.middleware.http import ConditionalGetMiddleware

        def logout(request):
            request.session.flush()
            return HttpResponse("You are logged out")

        cond = "django.middleware.http.ConditionalGetMiddleware"
        ours = "sessiongate_django.SessionMiddleware"
        with override_settings(MIDDLEWARE=[cond, ours]):
            with self.assertRaisesRegex(ImproperlyConfigured, "ConditionalGetMiddleware"):
                ConditionalGetMiddleware(SessionMiddleware(logout))
        # After ours (Django's documented order) the 304 is made inside and
        # carries the change.
        with override_settings(MIDDLEWARE=[ours, cond]):
            stack = SessionMiddleware(ConditionalGetMiddleware(logout))
            rf = RequestFactory()
            first = stack(rf.get("/x/", **signed_meta(SID, {"_auth_user_id": "1"})))
            meta = signed_meta(SID, {"_auth_user_id": "1"})
            meta["HTTP_IF_NONE_MATCH"] = first["ETag"]
            resp = stack(rf.get("/x/", **meta))
            self.assertEqual(resp.status_code, 304)
            self.assertEqual(Change(resp).op, "delete")

    def test_without_get_response_as_djangos_own(self):
        # Test code from before Django 3.1 builds the middleware without
        # get_response (SessionMiddleware().process_request(request)):
        # Django 3.2's own takes it with a RemovedInDjango40Warning, 4.0
        # and later refuse it. Ours does as Django's does.
        if django.VERSION >= (4, 0):
            with self.assertRaises(ValueError):
                SessionMiddleware(None)
            return
        from django.utils.deprecation import RemovedInDjango40Warning

        with self.assertWarns(RemovedInDjango40Warning):
            mw = SessionMiddleware()
        request = RequestFactory().get("/", **signed_meta(SID, {"cart": 1}))
        mw.process_request(request)
        self.assertEqual(request.session["cart"], 1)

    def test_store_is_a_session_base(self):
        from django.contrib.sessions.backends.base import SessionBase
        from django.contrib.sessions.middleware import SessionMiddleware as Stock

        self.assertTrue(issubclass(SessionStore, SessionBase))
        self.assertTrue(issubclass(SessionMiddleware, Stock))


if __name__ == "__main__":
    logging.basicConfig()
    unittest.main()
