"""Views of the session API integration tests: each answers with what the
test checks, as JSON or plain text."""

import json
from urllib.parse import quote

from django.contrib import auth, messages
from django.contrib.sessions.backends.base import SessionBase
import time

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.views.decorators.clickjacking import xframe_options_deny


class Conflict(Exception):
    pass


class HandleConflict:
    """A middleware that turns Conflict into a 409 (process_exception)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Conflict):
            return HttpResponse("conflict", status=409)
        return None


def public(session):
    return {k: v for k, v in session.items() if not k.startswith("_")}


def token(request):
    return HttpResponse(get_token(request), content_type="text/plain")


def ensure_api_user():
    """The user the login views accept (api / api-password), made on first
    use."""
    User = auth.get_user_model()
    if not User.objects.filter(username="api").exists():
        User.objects.create_user("api", password="api-password")


def login(request):
    ensure_api_user()
    user = auth.authenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return HttpResponse("bad credentials", status=403)
    if "remember" in request.POST:
        # A login form's "remember me" box, set before login() as most
        # LoginView subclasses do.
        request.session.set_expiry(1209600 if request.POST["remember"] == "1" else 0)
    auth.login(request, user)
    return HttpResponse("in", content_type="text/plain")


def whoami(request):
    u = request.user
    return JsonResponse({"user": u.get_username() if u.is_authenticated else None, "session": public(request.session)})


@xframe_options_deny
def deny_frames(request):
    # A view that sets a header of its own, as Django's clickjacking
    # decorators do.
    return HttpResponse("no frames")


def login_logout_write(request):
    # login(), logout(), then a value: flush then write in one request.
    auth.login(request, auth.get_user_model().objects.get(username="api"), backend="django.contrib.auth.backends.ModelBackend")
    auth.logout(request)
    request.session["after_logout"] = "kept"
    return HttpResponse("ok", content_type="text/plain")


def message(request):
    messages.info(request, request.GET.get("text", "hello"))
    return HttpResponseRedirect("/accounts/api/messages/")


def message_fallback(request):
    # ?n=: one message of n random letters (the cookie is compressed) with
    # Django's default storage: cookie, then session for what the cookie
    # cannot hold.
    import random
    import string

    from django.contrib.messages.storage.fallback import FallbackStorage

    request._messages = FallbackStorage(request)
    rnd = random.Random(1)
    messages.info(request, "".join(rnd.choice(string.ascii_letters) for _ in range(int(request.GET["n"]))))
    return HttpResponseRedirect("/accounts/api/messages-fallback/")


def show_messages_fallback(request):
    from django.contrib.messages.storage.fallback import FallbackStorage

    request._messages = FallbackStorage(request)
    return JsonResponse({"sizes": [len(str(m)) for m in messages.get_messages(request)]})


def show_messages(request):
    return JsonResponse({"messages": [str(m) for m in messages.get_messages(request)]})


def expire_in(request):
    # ?s=seconds: set_expiry(timedelta), a fixed end, and a value.
    from datetime import timedelta

    request.session["until"] = True
    request.session.set_expiry(timedelta(seconds=int(request.GET["s"])))
    return HttpResponse("ok", content_type="text/plain")


def set_value(request):
    # POST body: a JSON object whose members are stored.
    for k, v in json.loads(request.body.decode("utf-8")).items():
        request.session[k] = v
    return HttpResponse("ok", content_type="text/plain")


def set_big(request):
    # ?n=bytes: a string that long under "big" (a POST body that big would
    # be slow to send for nothing).
    request.session["big"] = "x" * int(request.GET["n"])
    return HttpResponse("ok", content_type="text/plain")


def stream(request):
    request.session["streamed"] = True

    def body():
        yield "a"
        yield "b"

    return StreamingHttpResponse(body(), content_type="text/plain")


def stall(request):
    # ?ms=: a streamed body that stops after its first part for that long
    # (a view stuck mid-export), then sends "b"; several pauses,
    # comma-separated, each followed by the next letter; with ?length=1,
    # of a declared length.
    pauses = [int(ms) for ms in request.GET.get("ms", "1000").split(",")]

    def body():
        yield "a"
        for i, ms in enumerate(pauses):
            time.sleep(ms / 1000)
            yield "bcdefgh"[i]

    response = StreamingHttpResponse(body(), content_type="text/plain")
    if request.GET.get("length"):
        response["Content-Length"] = str(1 + len(pauses))
    return response


def conflict(request):
    request.session["before_conflict"] = True
    raise Conflict()


def types_show(request):
    # What Django sees of the values types.php stored: type and repr.
    rt = request.session.get("rt", {})
    return JsonResponse({k: [type(v).__name__, repr(v)[:200]] for k, v in rt.items()})


def types_mutate(request):
    # Changes "rt" (so Django re-encodes all of it) and another key.
    rt = request.session["rt"]
    rt["py"] = 1
    request.session["rt"] = rt
    request.session["django_key"] = "d"
    return HttpResponse("ok", content_type="text/plain")


def pyset(request):
    # ?kind=: stores a Python value of that kind under "py".
    import datetime
    import decimal

    values = {
        "bigint": 2**70,
        "hugeint": [10**400, -(10**400)],
        "tuple": (1, "a"),
        "intkeys": {1: "a", 2: "b"},
        "intkeys0": {0: "a", 1: "b"},
        "dupkeys": {1: "a", "1": "b"},
        "otherkeys": {True: "t", None: "n", 1.5: "f"},
        "inf": float("inf"),
        "nan": float("nan"),
        "datetime": datetime.datetime(2020, 1, 2),
        "decimal": decimal.Decimal("1.10"),
        "bytes": b"ab",
        "float_int": 3.0,
        "negzero": -0.0,
        "surrogate": "a\ud800b",
        "emptydict": {},
        "emptylist": [],
    }
    kind = request.GET["kind"]
    if kind == "topdupkeys":
        request.session[7] = "int"
        request.session["7"] = "str"
    elif kind == "wholenextto":
        # PHP's whole-session member next to another key.
        request.session["__php_session__"] = "a:0:{}"
    elif kind == "tagnotstring":
        request.session["py"] = {"__php__": 5}
    elif kind == "planted":
        # A PHP object the session did not hold (built from a client's
        # input), stored with set_expiry(): the gateway refuses the write.
        request.session["py"] = {"__php__": 'O:8:"stdClass":0:{}'}
        request.session.set_expiry(60)
    elif kind == "onlytag":
        # A session whose only key is "__php__", holding PHP array text.
        request.session.clear()
        request.session["__php__"] = 'a:1:{s:4:"user";s:3:"eve";}'
    else:
        request.session["py"] = values[kind]
    return HttpResponse("ok", content_type="text/plain")


def login_as(request):
    # ?u=name: logs that user in (created on first use), in whatever session
    # the request has; after ?ms= (a slow password check).
    time.sleep(int(request.GET.get("ms", "0")) / 1000)
    User = auth.get_user_model()
    user, _ = User.objects.get_or_create(username=request.GET["u"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse(str(user.pk), content_type="text/plain")


def delete_user(request):
    # ?u=name: deletes that user (an administrator's deletion).
    auth.get_user_model().objects.filter(username=request.GET["u"]).delete()
    return HttpResponse("deleted", content_type="text/plain")


def set_active(request):
    # ?u=name&active=0|1: makes that user inactive or active again (an
    # administrator unticking "Active" in the admin).
    user = auth.get_user_model().objects.get(username=request.GET["u"])
    user.is_active = request.GET["active"] == "1"
    user.save()
    return HttpResponse("active" if user.is_active else "inactive", content_type="text/plain")


def slow_set(request):
    # ?ms=&k=&v=: reads the session, waits, then sets k to v.
    request.session.get("x")
    time.sleep(int(request.GET["ms"]) / 1000)
    request.session[request.GET["k"]] = request.GET["v"]
    return HttpResponse("ok", content_type="text/plain")


def change_password(request):
    # POST password=: the logged-in user's new password; the user stays
    # logged in (update_session_auth_hash), as after Django's
    # PasswordChangeView.
    request.user.set_password(request.POST["password"])
    request.user.save()
    auth.update_session_auth_hash(request, request.user)
    return HttpResponse("changed", content_type="text/plain")


def remember(request):
    # ?keep=0|1 after a login: a "remember me" box unticked ends the session
    # at browser close, ticked keeps it two weeks.
    request.session.set_expiry(1209600 if request.GET["keep"] == "1" else 0)
    return HttpResponse("ok", content_type="text/plain")


def protected(request, name):
    # A protected download the way django-sendfile2's nginx backend sends
    # one: the view checks the session, the server in front sends the file
    # from the internal URL (SENDFILE_URL), percent-encoded.
    if not request.session.get("user"):
        return HttpResponse("log in first", status=403, content_type="text/plain")
    request.session["downloads"] = request.session.get("downloads", 0) + 1
    response = HttpResponse(content_type="application/pdf")
    response["Content-Disposition"] = 'inline; filename="%s"' % name
    # sendfile2 also declares the file's length on the empty body.
    response["Content-length"] = request.GET.get("size", "0")
    response["X-Accel-Redirect"] = "/protected/" + quote(name)
    response["X-Accel-Buffering"] = "no"
    return response


def contract_gen(request):
    # ?seed=&n=: stores contract.values(seed, n) under d0..d<n-1>.
    from . import contract

    for i, v in enumerate(contract.values(int(request.GET["seed"]), int(request.GET["n"]))):
        request.session["d%d" % i] = v
    return HttpResponse("ok", content_type="text/plain")


def contract_check(request):
    # ?seed=&n=: "same" when every d<i> is still exactly the value stored
    # (with &poked=1: contract.poked() of it) and p<i> (PHP's copy, contract_rt.php?op=copy) is [PHP's model of
    # it], else one line per difference. ?write=1 then stores a key, so
    # that Django writes back all it was given.
    from . import contract

    diff = []
    for i, v in enumerate(contract.values(int(request.GET["seed"]), int(request.GET["n"]))):
        got = request.session.get("d%d" % i)
        want = contract.poked(v) if request.GET.get("poked") == "1" else v
        if not contract.same(got, want):
            diff.append("d%d: %s\n  want %s" % (i, repr(got)[:300], repr(want)[:300]))
        if "p%d" % i in request.session:
            got, want = request.session["p%d" % i], [contract.php_model(v)]
            if not contract.same(got, want):
                diff.append("p%d: %s\n  want %s" % (i, repr(got)[:300], repr(want)[:300]))
    if request.GET.get("write") == "1":
        request.session["dj_after"] = True
    return HttpResponse("\n".join(diff) or "same", content_type="text/plain")


def contract_wrap(request):
    # ?n=: for each PHP value r<i>: w<i> = [r<i>, "dj"], which the gateway
    # must take as Django encoded it, and r<i> set again to an equal copy.
    import copy

    for i in range(int(request.GET["n"])):
        if "r%d" % i in request.session:
            v = request.session["r%d" % i]
            request.session["w%d" % i] = [v, "dj"]
            request.session["r%d" % i] = copy.deepcopy(v)
    return HttpResponse("ok", content_type="text/plain")


def version(request):
    import django

    return HttpResponse(django.get_version(), content_type="text/plain")


# Django 5.1's async session API (aget, aset, acycle_key, aflush, ...) and
# 5.0's alogin/alogout, which use it: async views reach the store through
# SessionBase's async methods, not the sync ones sessiongate_django's
# SessionStore overrides.
ASYNC_SESSIONS = hasattr(SessionBase, "aget")


async def alogin(request):
    from asgiref.sync import sync_to_async

    await sync_to_async(ensure_api_user)()
    user = await auth.aauthenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return HttpResponse("bad credentials", status=403)
    await auth.alogin(request, user)
    return HttpResponse("in", content_type="text/plain")


async def alogout(request):
    await auth.alogout(request)
    return HttpResponse("out", content_type="text/plain")


async def asession(request):
    # ?op=set&k=&v= (v is JSON), get&k=, pop&k=, cycle, flush, expiry&s=;
    # answers with what the async API then reads.
    s = request.session
    op, k = request.GET["op"], request.GET.get("k", "")
    value = None
    if op == "set":
        await s.aset(k, json.loads(request.GET["v"]))
    elif op == "get":
        value = await s.aget(k)
    elif op == "pop":
        value = await s.apop(k, None)
    elif op == "cycle":
        await s.acycle_key()
    elif op == "flush":
        await s.aflush()
    elif op == "expiry":
        await s.aset_expiry(int(request.GET["s"]))
    user = await request.auser()
    return JsonResponse(
        {
            "value": value,
            "keys": sorted(await s.akeys()),
            "expiry_age": await s.aget_expiry_age(),
            "user": user.get_username() if user.is_authenticated else None,
        }
    )


urlpatterns = [
    path("accounts/api/protected/<str:name>", protected),
    path("accounts/api/login-as/", login_as),
    path("accounts/api/delete-user/", delete_user),
    path("accounts/api/set-active/", set_active),
    path("accounts/api/slow-set/", slow_set),
    path("accounts/api/types-show/", types_show),
    path("accounts/api/types-mutate/", types_mutate),
    path("accounts/api/pyset/", pyset),
    path("accounts/api/token/", token),
    path("accounts/api/login/", login),
    path("accounts/api/whoami/", whoami),
    path("accounts/api/deny-frames/", deny_frames),
    path("accounts/api/login-logout-write/", login_logout_write),
    path("accounts/api/message/", message),
    path("accounts/api/messages/", show_messages),
    path("accounts/api/message-fallback/", message_fallback),
    path("accounts/api/messages-fallback/", show_messages_fallback),
    path("accounts/api/expire-in/", expire_in),
    path("accounts/api/set/", set_value),
    path("accounts/api/big/", set_big),
    path("accounts/api/stream/", stream),
    path("accounts/api/stall/", stall),
    path("accounts/api/conflict/", conflict),
    path("accounts/api/password/", change_password),
    path("accounts/api/remember/", remember),
    path("accounts/api/contract-gen/", contract_gen),
    path("accounts/api/contract-check/", contract_check),
    path("accounts/api/contract-wrap/", contract_wrap),
    path("accounts/api/version/", version),
]
if ASYNC_SESSIONS:
    urlpatterns += [
        path("accounts/api/alogin/", alogin),
        path("accounts/api/alogout/", alogout),
        path("accounts/api/asession/", asession),
    ]
