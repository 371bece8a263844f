"""An app's own test suite with sessiongate_django installed: Django's test
client has no gateway in front of it, so sessiongate_django.test.Client
plays the gateway (see README.md, "Testing")."""

import asyncio
import time
import unittest
from datetime import timedelta

from tests import test_middleware  # noqa: F401  (configures settings)

from django.conf import settings  # noqa: E402
from django.contrib import auth  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.urls import path  # noqa: E402


def whoami(request):
    user = request.user
    return JsonResponse(
        {
            "user": user.get_username() if user.is_authenticated else None,
            "cart": request.session.get("cart"),
        }
    )


def add(request):
    cart = request.session.get("cart") or {}
    cart[request.GET["item"]] = cart.get(request.GET["item"], 0) + 1
    request.session["cart"] = cart
    return HttpResponse("ok")


def login_view(request):
    user = auth.authenticate(request, username=request.POST["u"], password=request.POST["p"])
    auth.login(request, user)
    return HttpResponse("in")


def logout_view(request):
    auth.logout(request)
    return HttpResponse("out")


def expire(request):
    # A view that ends the session by its expiry (a past end or a negative
    # number of seconds), as Django's sessions honour it.
    request.session.set_expiry(int(request.GET["s"]) if "s" in request.GET else timedelta(seconds=-10))
    return HttpResponse("expired")


def sets_session_named_cookie(request):
    response = HttpResponse("cookie")
    response.set_cookie(settings.SESSION_COOKIE_NAME, "not-the-gateway's")
    return response


def cookies_seen(request):
    return JsonResponse({"cookies": sorted(request.COOKIES)})


def logout_then_fail(request):
    auth.logout(request)
    raise RuntimeError("boom after logout")


urlpatterns = [
    path("whoami/", whoami),
    path("add/", add),
    path("login/", login_view),
    path("logout/", logout_view),
    path("logout-fail/", logout_then_fail),
    path("cookie/", sets_session_named_cookie),
    path("expire/", expire),
    path("cookies-seen/", cookies_seen),
]

MIDDLEWARE = [
    "sessiongate_django.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


class TestClientTests(unittest.TestCase):
    def setUp(self):
        settings = override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE)
        settings.enable()
        self.addCleanup(settings.disable)
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        call_command("migrate", verbosity=0, interactive=False)
        User = auth.get_user_model()
        cls.user = User.objects.filter(username="tc").first() or User.objects.create_user("tc", password="tc-password")

    def client(self):
        from sessiongate_django.test import Client

        return Client()

    def test_login_then_view_sees_the_user(self):
        c = self.client()
        self.assertTrue(c.login(username="tc", password="tc-password"))
        self.assertEqual(c.get("/whoami/").json()["user"], "tc")

    def test_force_login_and_logout(self):
        c = self.client()
        c.force_login(self.user)
        self.assertEqual(c.get("/whoami/").json()["user"], "tc")
        c.logout()
        self.assertIsNone(c.get("/whoami/").json()["user"])

    def test_client_session_set_then_save_reaches_the_view(self):
        c = self.client()
        s = c.session
        s["cart"] = {"apple": 2}
        s.save()
        self.assertEqual(c.get("/whoami/").json()["cart"], {"apple": 2})

    def test_client_session_unsaved_nested_change_does_not_reach_the_view(self):
        # As with Django's Client, whose session is loaded afresh from
        # SESSION_ENGINE: only save() stores a change, nested ones included.
        c = self.client()
        c.get("/add/?item=apple")
        s = c.session
        s["cart"]["apple"] = 9
        self.assertEqual(c.get("/whoami/").json()["cart"], {"apple": 1})

    def test_view_writes_are_kept_and_visible_in_client_session(self):
        c = self.client()
        c.get("/add/?item=pear")
        c.get("/add/?item=pear")
        self.assertEqual(c.session["cart"], {"pear": 2})
        self.assertEqual(c.get("/whoami/").json()["cart"], {"pear": 2})

    def test_expired_session_is_gone(self):
        # The gateway deletes a session whose expiry has passed (X-Sessiongate-Expiry
        # "at:" in the past); the client kept it, so a test of a view that
        # expires the session passed with Django's Client and failed here.
        for query in ("", "?s=-5"):
            with self.subTest(query=query):
                c = self.client()
                c.force_login(self.user)
                c.get("/add/?item=kiwi")
                c.get("/expire/" + query)
                self.assertEqual(c.get("/whoami/").json(), {"user": None, "cart": None})
                # A live expiry leaves the session alone.
                c.force_login(self.user)
                c.get("/expire/?s=300")
                self.assertEqual(c.get("/whoami/").json()["user"], "tc")

    def test_idle_expiry_ends_an_unused_session(self):
        # set_expiry(n) by a view: the gateway ends the session n seconds
        # after its last use, and each use (the middleware's touch or
        # write) starts the count again. The client kept it for ever.
        c = self.client()
        now = [time.time()]
        c.clock = lambda: now[0]
        c.get("/add/?item=kiwi")
        c.get("/expire/?s=60")
        now[0] += 50
        self.assertEqual(c.get("/whoami/").json()["cart"], {"kiwi": 1})
        now[0] += 50
        self.assertEqual(c.get("/whoami/").json()["cart"], {"kiwi": 1})
        now[0] += 61
        self.assertEqual(c.get("/whoami/").json()["cart"], None)

    def test_client_session_expiry_ends_the_session(self):
        # set_expiry() on client.session then save(), as with Django's
        # backends: a past end or a negative number has expired, a fixed
        # end is not extended by use, seconds are an idle timeout.
        cases = [(-1, 0, None), (timedelta(seconds=100), 50, {"fig": 1}), (timedelta(seconds=100), 101, None), (30, 31, None)]
        for expiry, later, cart in cases:
            with self.subTest(expiry=expiry, later=later):
                c = self.client()
                now = [time.time()]
                c.clock = lambda: now[0]
                c.get("/add/?item=fig")
                s = c.session
                s.set_expiry(expiry)
                s.save()
                now[0] += later
                self.assertEqual(c.get("/whoami/").json()["cart"], cart)
                if cart is not None:
                    # Used, but a fixed end: over all the same.
                    now[0] += 51
                    self.assertEqual(c.get("/whoami/").json()["cart"], None)

    def test_login_view_rotates_and_logout_view_ends_the_session(self):
        c = self.client()
        c.get("/add/?item=fig")
        before = c.session.session_key
        c.post("/login/", {"u": "tc", "p": "tc-password"})
        after = c.session.session_key
        self.assertTrue(after and after != before)
        body = c.get("/whoami/").json()
        self.assertEqual((body["user"], body["cart"]), ("tc", {"fig": 1}))
        c.post("/logout/")
        self.assertEqual(c.get("/whoami/").json(), {"user": None, "cart": None})

    def test_asession_is_the_gateway_session(self):
        # Django 5.0's ClientMixin.alogin(), aforce_login() and alogout()
        # take the session from `await self.asession()`, which opens a
        # SESSION_ENGINE session of the cookie's value: it must be the
        # session this client plays the gateway for, as `session` is.
        c = self.client()
        c.get("/add/?item=plum")
        session = asyncio.run(c.asession())
        self.assertEqual(session["cart"], {"plum": 1})
        # What 5.x's _alogin() then does (alogin, asave, the cookie set to
        # session_key), with the sync calls 3.2 has.
        request = HttpRequest()
        request.session = session
        auth.login(request, self.user, "django.contrib.auth.backends.ModelBackend")
        request.session.save()
        c.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key
        self.assertEqual(c.get("/whoami/").json(), {"user": "tc", "cart": {"plum": 1}})

    @unittest.skipUnless(hasattr(auth, "alogin"), "Django 5.0's async client API; make test-python runs it on 5.2")
    def test_async_login_force_login_and_logout(self):
        # The real alogin(), aforce_login() and alogout() of Django 5's
        # test client, not the sync steps above. async_to_sync, as Django
        # runs async code, keeps their database calls on this thread, the
        # one whose in-memory database has the tables.
        from asgiref.sync import async_to_sync

        c = self.client()
        c.get("/add/?item=plum")
        before = c.session.session_key
        self.assertTrue(async_to_sync(c.alogin)(username="tc", password="tc-password"))
        self.assertEqual(c.get("/whoami/").json(), {"user": "tc", "cart": {"plum": 1}})
        self.assertNotEqual(c.session.session_key, before)
        async_to_sync(c.alogout)()
        self.assertEqual(c.get("/whoami/").json(), {"user": None, "cart": None})
        async_to_sync(c.aforce_login)(self.user)
        self.assertEqual(c.get("/whoami/").json()["user"], "tc")

    def test_asession_starts_a_session_like_session(self):
        c = self.client()
        session = asyncio.run(c.asession())
        session["cart"] = {"lime": 1}
        session.save()
        self.assertEqual(c.get("/whoami/").json()["cart"], {"lime": 1})

    def test_logout_then_exception_still_logs_out(self):
        # The middleware sends delete with the 500 (Django's backends delete
        # a flushed session at once), but the test client re-raises the
        # view's exception: the delete must be applied all the same.
        c = self.client()
        c.force_login(self.user)
        with self.assertRaises(RuntimeError):
            c.get("/logout-fail/")
        self.assertIsNone(c.get("/whoami/").json()["user"])

    def test_app_cookie_of_the_session_name_is_dropped(self):
        # The gateway drops a Set-Cookie the app sends under its cookie's
        # name (protocol.md section 5): the client keeps its session.
        c = self.client()
        c.get("/add/?item=fig")
        c.get("/cookie/")
        self.assertEqual(c.get("/whoami/").json()["cart"], {"fig": 1})

    def test_view_does_not_see_the_session_cookie(self):
        # The gateway takes its cookie out of the Cookie field Django gets
        # (the signed headers name the session) and the middleware puts the
        # sessiongate cache token there: a view that reads
        # request.COOKIES[SESSION_COOKIE_NAME] would pass its tests and
        # fail behind the gateway.
        c = self.client()
        c.cookies["theme"] = "dark"
        c.get("/add/?item=fig")
        self.assertIn(settings.SESSION_COOKIE_NAME, c.cookies)
        self.assertEqual(c.get("/cookies-seen/").json()["cookies"], ["sessiongate", "theme"])

    def test_gateway_headers_do_not_reach_the_test(self):
        c = self.client()
        resp = c.get("/add/?item=kiwi")
        self.assertEqual([k for k, _ in resp.items() if k.lower().startswith("x-sessiongate")], [])


class AsyncTestClientTests(unittest.TestCase):
    """sessiongate_django.test.AsyncClient: Django's AsyncClient
    (TestCase.async_client_class) playing the gateway as Client does."""

    setUp = TestClientTests.setUp

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        call_command("migrate", verbosity=0, interactive=False)
        User = auth.get_user_model()
        cls.user = User.objects.filter(username="tc").first() or User.objects.create_user("tc", password="tc-password")

    def client(self):
        from sessiongate_django.test import AsyncClient

        return AsyncClient()

    def test_async_client_keeps_the_session(self):
        # Django's own AsyncClient sent no signed session: every change
        # was dropped and each request started anonymous.
        from asgiref.sync import async_to_sync

        c = self.client()
        c.cookies["theme"] = "dark"

        async def browse():
            await c.get("/add/?item=fig")
            await c.get("/add/?item=fig")
            return (await c.get("/whoami/")).json(), (await c.get("/cookies-seen/")).json()

        body, seen = async_to_sync(browse)()
        self.assertEqual(body, {"user": None, "cart": {"fig": 2}})
        self.assertEqual(c.session["cart"], {"fig": 2})
        self.assertEqual(seen["cookies"], ["sessiongate", "theme"])

    def test_async_client_login_and_logout(self):
        from asgiref.sync import async_to_sync

        c = self.client()
        c.force_login(self.user)
        self.assertEqual(async_to_sync(c.get)("/whoami/").json()["user"], "tc")
        async_to_sync(c.post)("/logout/")
        self.assertEqual(async_to_sync(c.get)("/whoami/").json(), {"user": None, "cart": None})


if __name__ == "__main__":
    unittest.main()
