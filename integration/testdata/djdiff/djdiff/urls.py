"""The scenario view of the session comparison: /dj/s/?s=NAME&step=N runs
step N of scenario NAME on request.session and answers, as JSON, what the
view saw: the calls' results (r) and the session's state at the end
(state). Values compared by identity only (session keys, password hashes,
CSRF tokens) are sent as {"id": value, "ns": kind}, and values that depend
on the clock as {"~": seconds}."""

import json
import math
from datetime import datetime, timedelta

from django.contrib import auth, messages
from django.contrib.auth import update_session_auth_hash
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.test.utils import override_settings
from django.urls import path
from django.utils import timezone

# Session keys whose values differ between the two sides by construction
# (salted password hashes, random tokens): compared by identity.
BY_IDENTITY = ("_auth_user_hash", "_csrftoken")


class ScenarioSettings:
    """Runs the rest of the stack under the request's X-Djdiff-Settings
    (JSON: SESSION_SAVE_EVERY_REQUEST, ...). gunicorn runs one sync worker
    thread, so no other request sees them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("HTTP_X_DJDIFF_SETTINGS")
        if not raw:
            return self.get_response(request)
        with override_settings(**json.loads(raw)):
            return self.get_response(request)


class Fail(Exception):
    pass


def ident(value, ns):
    return {"id": value, "ns": ns}


def approx(seconds):
    return {"~": round(seconds)}


def finite(v):
    """v with NaN and infinities spelt out: the answer is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return "float:%r" % v
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v


def value(k, v):
    v = finite(v)
    if k in BY_IDENTITY:
        return ident(v, k)
    if k == "_session_expiry":
        # A fixed end: a datetime (Django 3.2's cache backend, which
        # pickles) or its ISO 8601 string (Django 4+, sessiongate_django).
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v)
            except ValueError:
                return v
        if isinstance(v, datetime):
            return approx((v - timezone.now()).total_seconds())
    return v


def state(request, key0):
    s = request.session
    key = s.session_key
    out = {
        # Before anything below reads the session.
        "modified": s.modified,
        "accessed": s.accessed,
        # The key the view ends with: none, the one it started with, or
        # another one.
        "key": "none" if key is None else "start" if key == key0 else "new",
    }
    out["is_empty"] = s.is_empty()
    out["keys"] = list(s.keys())
    out["items"] = [[k, value(k, v)] for k, v in s.items()]
    out["len"] = len(s._session)
    try:
        out["expiry_age"] = approx(s.get_expiry_age())
        date = s.get_expiry_date()
        out["expiry_date"] = approx((date - timezone.now()).total_seconds())
        out["expiry_date_aware"] = timezone.is_aware(date)
        out["expiry_date_whole_second"] = date.microsecond == 0
    except Exception as e:  # noqa: BLE001 - the difference is the observation
        out["expiry_error"] = type(e).__name__
    out["browser_close"] = s.get_expire_at_browser_close()
    return out


def user(name, password=None):
    User = auth.get_user_model()
    u, made = User.objects.get_or_create(username=name)
    if made:
        u.set_password(password or name + "-pw")
        u.save()
    return u


def login(request, name):
    auth.login(request, user(name), backend="django.contrib.auth.backends.ModelBackend")


def whoami(request):
    u = request.user
    return u.get_username() if u.is_authenticated else None


def types(s):
    out = []
    for k, v in s.items():
        r = repr(v)
        out.append([k, type(v).__name__, r if len(r) < 100 else "%d characters" % len(r)])
    return out


def run(request, name, n):
    """Step n of scenario name; returns (results, response or None,
    observe). observe False: the view must not touch the session beyond
    what the step does."""
    s = request.session
    r = []
    key = "%s:%d" % ("nested" if name == "nestedevery" else name, n)
    resp = None
    observe = True
    if n == 0 and name in ("setget", "clear", "clearset", "flush", "flushset", "cycle", "cycleempty", "readonly",
                           "untouched", "create", "raise", "r500", "r503", "flush500", "notmod", "stream",
                           "emptymod", "nested", "nestedevery", "expnone", "exp0then", "saveevery", "browser",
                           "cookieage"):
        s["a"] = 1
        s["b"] = "x"
    if key == "setget:1":
        r += [s["a"], s.get("zz", "dflt"), s.get("b"), "a" in s, s.setdefault("d", 4), s.setdefault("a", 9),
              s.pop("b"), s.pop("zz", "none")]
    elif key == "setget:2":
        del s["a"]
        try:
            del s["nope"]
        except KeyError:
            r.append("KeyError")
        s.update({"e": 5})
    elif key in ("clear:1", "emptymod:1"):
        if name == "clear":
            s.clear()
        else:
            del s["a"]
            del s["b"]
        r.append(s.is_empty())
    elif key == "clearset:1":
        s.clear()
        s["n"] = 1
    elif key == "flush:1":
        s.flush()
        r.append(s.session_key is None)
    elif key == "flushset:1":
        s.flush()
        s["n"] = 1
    elif key in ("cycle:1", "cyclenew:0"):
        s.cycle_key()
    elif key == "cycleempty:1":
        del s["a"]
        del s["b"]
        s.cycle_key()
    elif key == "untouched:1":
        observe = False
    elif key == "readonly:1":
        r.append(s.get("a"))
        observe = False
    elif key == "save:0":
        s["a"] = 1
        s.save()
        r.append(s.session_key is None)
    elif key == "create:1":
        s.create()
        r.append(s.session_key is None)
        s["c"] = 3
    elif key == "raise:1":
        s["c"] = 3
        raise Fail("view failed")
    elif key in ("r500:1", "r503:1"):
        s["c"] = 3
        resp = HttpResponse("failed", status=500 if name == "r500" else 503)
    elif key == "flush500:1":
        s.flush()
        resp = HttpResponse("failed", status=500)
    elif key == "notmod:1":
        s["c"] = 3
        resp = HttpResponseNotModified()
    elif key == "stream:1":
        s["c"] = 3
        resp = StreamingHttpResponse(iter(["a", "b"]))
        observe = False
    elif key == "expint:0":
        s["a"] = 1
        s.set_expiry(300)
    elif key == "expint:1":
        now = timezone.now()
        r += [s.get_expiry_age(expiry=600), approx(s.get_expiry_age(modification=now, expiry=now + timedelta(seconds=60))),
              approx((s.get_expiry_date(expiry=30) - now).total_seconds())]
    elif key == "saveempty:0":
        s.save()
    elif key == "createempty:0":
        s.create()
    elif key in ("loginsame:0", "loginsame:1"):
        login(request, "loginsame")
    elif key == "loginexp0:0":
        s.set_expiry(0)
        login(request, "loginexp0")
    elif key == "browserint:0":
        s["a"] = 1
        s.set_expiry(300)
    elif key == "planted:0":
        r.append(s.get("a"))
    elif key == "planted:1":
        s["a"] = 1
    elif key == "exppast:0":
        s["a"] = 1
    elif key == "exppast:1":
        s.set_expiry(timedelta(seconds=-10))
    elif key == "expneg:0":
        s["a"] = 1
    elif key == "expneg:1":
        s.set_expiry(-5)
    elif key == "expneg1970:0":
        s["a"] = 1
    elif key == "expneg1970:1":
        # Past even counted from 1970: the end is before it.
        s.set_expiry(-(10**10))
    elif key == "nan:0":
        s["a"] = 1
    elif key == "nan:1":
        s["f"] = [float("nan"), float("inf"), float("-inf")]
        observe = False
    elif key == "nan:2":
        r.append(types(s))
    elif key == "intkeys:0":
        s[1] = "int"
        s[None] = "none"
        s[True] = "bool"
        s["nested"] = {2: "int in a dict"}
    elif key == "intkeys:1":
        r.append(types(s))
    elif key == "logoutmsg:0":
        login(request, "logoutmsg")
    elif key == "logoutmsg:1":
        auth.logout(request)
        messages.info(request, "logged out")
    elif key == "logoutmsg:2":
        r.append([m.message for m in messages.get_messages(request)])
    elif key == "cycletwice:0":
        s["a"] = 1
    elif key == "cycletwice:1":
        s.cycle_key()
        s["b"] = 2
        s.cycle_key()
    elif key == "csrf:2":
        auth.logout(request)
        r.append(ident(get_token(request), "_csrftoken"))
    elif key == "login500:0":
        s["a"] = 1
    elif key == "login500:1":
        login(request, "login500")
        resp = HttpResponse("failed", status=500)
    elif key == "big:0":
        s["big"] = "0123456789abcdef" * 20000
        s["list"] = list(range(20000))
    elif key == "big:1":
        r += [len(s["big"]), len(s["list"]), sum(s["list"])]
    elif key == "oddkeys:0":
        s["k\u00e9y \U0001f600"] = 1
        s["with\nnewline"] = 2
        s["nul\x00key"] = 3
        s["pipe|semi;colon:"] = 4
        s[""] = 5
        s["__php__"] = 6
    elif key == "oddkeys:1":
        r.append(types(s))
    elif key == "vary:0":
        s["a"] = 1
        resp = HttpResponse("vary")
        resp["Vary"] = "Accept-Language"
    elif key == "vary:1":
        r.append(s.get("a"))
        resp = HttpResponse("vary")
        resp["Vary"] = "Accept-Language"
    elif key == "public:0":
        s["a"] = 1
        resp = HttpResponse("public")
        resp["Cache-Control"] = "public, max-age=60"
    elif key == "public:1":
        r.append(s.get("a"))
        resp = HttpResponse("public")
        resp["Cache-Control"] = "public, max-age=60"
    elif key == "csrfcookie:0":
        r.append(len(get_token(request)))
    elif key == "exptz:0":
        s["a"] = 1
        s.set_expiry(timezone.now() + timedelta(seconds=300))
    elif key == "head:0":
        s["a"] = request.method
    elif key in ("stalecycle:0", "staleflush:0"):
        s["a"] = 1
    elif key == "stalecycle:1":
        s.cycle_key()
    elif key == "staleflush:1":
        s.flush()
    elif key in ("stalecycle:2", "staleflush:2"):
        s["x"] = 1
    elif key == "expzero:0":
        s["a"] = 1
        s.set_expiry(0)
    elif key == "exptd:0":
        s["a"] = 1
        s.set_expiry(timedelta(seconds=300))
    elif key == "expdt:0":
        s["a"] = 1
        s.set_expiry(timezone.now() + timedelta(seconds=300))
    elif key == "expnone:1":
        s.set_expiry(300)
    elif key == "expnone:2":
        s.set_expiry(None)
    elif key == "exp0then:1":
        s.set_expiry(0)
    elif key == "exp0then:2":
        s.set_expiry(600)
    elif key == "nested:0":
        s["d"] = {"l": [1]}
    elif key == "nested:1":
        s["d"]["l"].append(2)
    elif key == "login:0":
        s["pre"] = 1
    elif key == "login:1":
        login(request, "login")
        r.append(s.session_key is None)
    elif key == "login:3":
        auth.logout(request)
        r.append(s.session_key is None)
    elif key == "loginempty:0":
        login(request, "loginempty")
    elif key == "loginother:0":
        login(request, "other1")
    elif key == "loginother:1":
        login(request, "other2")
    elif key in ("pwchange:0", "pwchange:1"):
        login(request, "pwchange")
    elif key == "pwchange:2":
        u = user("pwchange")
        u.set_password("changed-pw")
        u.save()
        update_session_auth_hash(request, u)
    elif key == "csrf:0":
        r.append(ident(get_token(request), "_csrftoken"))
    elif key == "csrf:1":
        r.append(ident(get_token(request), "_csrftoken"))
        login(request, "csrf")
        r.append(ident(get_token(request), "_csrftoken"))
    elif key == "messages:0":
        messages.info(request, "saved")
    elif key in ("messages:1", "messages:2"):
        r.append([m.message for m in messages.get_messages(request)])
    elif key == "testcookie:0":
        s.set_test_cookie()
    elif key == "testcookie:1":
        r.append(s.test_cookie_worked())
        s.delete_test_cookie()
    elif key == "values:0":
        s["u"] = "h\u00e9llo \U0001f600 \u65e5"
        s["nest"] = {"a": {"b": {"c": [1, 2.5, True, False, None, [], {}]}}}
        s["ints"] = [2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, -(2 ** 63)]
        s["big"] = 2 ** 64
        s["floats"] = [0.1, 1.0, -0.0, 1e300, 1.5e-7]
        s["empty"] = ""
        s["1"] = "numeric key"
        s["a.b"] = "dotted"
        s["long"] = "z" * 5000
    elif key == "values:1":
        r.append(types(s))
    elif key == "tuple:0":
        s["t"] = (1, "two")
    elif key == "tuple:1":
        r.append(types(s))
    r.append(whoami(request) if name in ("login", "loginempty", "loginother", "pwchange", "csrf", "loginsame", "loginexp0", "logoutmsg", "login500") else None)
    return r, resp, observe


def scenario(request):
    name = request.GET["s"]
    n = int(request.GET["step"])
    # The session the request came with (no load: session_key is what
    # the cookie named).
    key0 = request.session.session_key
    r, resp, observe = run(request, name, n)
    if resp is not None:
        return resp
    out = {"r": r, "key_start": ident(key0, "key"), "cookies": sorted(request.COOKIES)}
    if observe:
        out["state"] = state(request, key0)
    return JsonResponse(out)


urlpatterns = [path("dj/s/", scenario)]
