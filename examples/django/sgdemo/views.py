"""Views of the example: each reads or changes the session PHP shares."""

import json

from django.contrib.auth import logout
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.middleware.csrf import get_token
from django.utils.html import escape
from django.views.decorators.http import require_http_methods


def _public(session):
    # Django's own keys (_auth_user_hash ...) stay out of the answers.
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _private(key):
    # Django's own keys are never the client's to write: PHP's
    # sessiongate_user_id() believes _auth_user_id, so a view that stored
    # a key the client names would let anyone log in as anyone on the PHP
    # side. Copy this check into any view that does.
    return not isinstance(key, str) or key.startswith("_")


def index(request):
    user = request.user.get_username() if request.user.is_authenticated else "nobody"
    html = (
        "<!doctype html><title>sessiongate: Django side</title>"
        "<h1>Django side</h1><p>Logged in: <b>%s</b></p><ul>"
        '<li><a href="/admin/">admin (log in here)</a></li>'
        '<li><a href="/accounts/cart/">cart (JSON)</a></li>'
        '<li><a href="/accounts/counter/">counter</a></li>'
        '<li><a href="/accounts/whoami/">whoami (JSON)</a></li>'
        '<li><a href="/">the PHP side</a></li></ul>'
    ) % escape(user)
    return HttpResponse(html)


@require_http_methods(["GET", "POST"])
def cart(request):
    """GET: the cart and the rest of the session. POST (JSON object, with
    the CSRF token in X-CSRFToken): each member is stored in the session,
    null deletes it; {"add": "apple"} adds one apple to the cart."""
    if request.method == "POST":
        try:
            change = json.loads(request.body.decode("utf-8") or "{}")
        except ValueError:
            return HttpResponseBadRequest("body must be a JSON object\n")
        if not isinstance(change, dict):
            return HttpResponseBadRequest("body must be a JSON object\n")
        if any(_private(k) for k in change):
            return HttpResponseBadRequest("keys starting with _ are Django's own\n")
        item = change.pop("add", None)
        if isinstance(item, str):
            c = request.session.get("cart") or {}
            if not isinstance(c, dict):
                c = {}
            c[item] = c.get(item, 0) + 1
            request.session["cart"] = c
        for k, v in change.items():
            if v is None:
                request.session.pop(k, None)
            else:
                request.session[k] = v
    # Sets the csrftoken cookie for the next POST.
    get_token(request)
    return JsonResponse({"cart": request.session.get("cart"), "session": _public(request.session)})


def counter(request):
    """Adds one to the session's counter (?key=, default "counter") and
    returns it; PHP can count in the same key. A key that holds anything
    but a number is left alone (400)."""
    key = request.GET.get("key", "counter")
    if _private(key):
        return HttpResponseBadRequest("keys starting with _ are Django's own\n")
    n = request.session.get(key, 0)
    # A GET needs no CSRF token, so a link on another site can make a
    # visitor's browser count here: only ever in a counter, never over the
    # cart or the user name PHP shows.
    if isinstance(n, bool) or not isinstance(n, int):
        return HttpResponseBadRequest("that key holds something other than a counter\n")
    request.session[key] = n + 1
    return HttpResponse(str(request.session[key]), content_type="text/plain")


def boom(request):
    """Changes the session, then fails: Django answers 500 and nothing is
    saved. With ?logout=1 it logs out first, and the logout stands, as with
    Django's own sessions (flush() deletes the stored session at once)."""
    if request.GET.get("logout"):
        logout(request)
    request.session["boom"] = "this must never be stored"
    raise RuntimeError("boom (on purpose)")


def whoami(request):
    user = request.user
    return JsonResponse(
        {
            "user": user.get_username() if user.is_authenticated else None,
            "id": user.pk if user.is_authenticated else None,
            "session_key": request.session.session_key,
        }
    )
