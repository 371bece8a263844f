"""sessiongate_django.SessionMiddleware: Django's session middleware for a
site behind sessiongate."""

import logging
import os
import time
import traceback

import django
from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import response_for_exception
from django.http import HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from . import logins, protocol
from .store import SessionStore

logger = logging.getLogger("sessiongate_django")

SETTING = "SESSIONGATE_SESSION_KEYS"

# The cookie name under which the session is put back into the Cookie
# header Django sees (see _key_cache_by_session).
CACHE_COOKIE = "sessiongate"


def _key_cache_by_session(meta, verified):
    """Django's cache (cache middleware, cache_page) keys a response marked
    Vary: Cookie on the request's Cookie header, and the gateway removes its
    session cookie from that header: without this, one visitor's cached page
    would be served to every other visitor with the same other cookies. A
    cookie derived from the session ID, which nobody can compute without the
    key, restores what Django's own session cookie does for the cache. A
    copy the client sent under that name is dropped on every request, with
    a session or not: a visitor holding a leaked token would otherwise get
    that session's cached pages without its cookie. Django's cache key is
    the digest of the varied fields' values joined with nothing between
    them, so the token could also be spelled across the Cookie field and
    its neighbour (`Cookie: sessiongat` and `User-Agent: e=<token>...`): a
    line feed, which no field a client sends can carry, goes before it.
    Django's cookie parser strips it."""
    cookie = meta.get("HTTP_COOKIE", "")
    has_session = verified is not None and verified.session_id
    if not has_session and CACHE_COOKIE not in cookie:
        return
    pairs = [p.strip() for p in cookie.split(";") if p.strip() and p.split("=", 1)[0].strip() != CACHE_COOKIE]
    if has_session:
        token = protocol.mac(verified.key, "sg1-cache", verified.session_id)[:32]
        pairs.append("\n%s=%s" % (CACHE_COOKIE, token))
    if pairs:
        meta["HTTP_COOKIE"] = "; ".join(pairs)
    else:
        meta.pop("HTTP_COOKIE", None)


def load_keys():
    """The derived header keys from the Django setting SESSIONGATE_SESSION_KEYS
    or, when it is not set, the environment variable of the same name (the
    gateway's value)."""
    value = getattr(settings, SETTING, None)
    if value in (None, "", b"", [], ()):
        # The variable's bytes, as the gateway reads them: os.environ would
        # decode them with the locale's encoding.
        if os.supports_bytes_environ:
            value = os.environb.get(SETTING.encode(), b"")
        else:
            value = os.environ.get(SETTING, "")
    if not value:
        raise ImproperlyConfigured(
            "%s is not set: give Django the gateway's session keys "
            "(environment variable or setting of that name)" % SETTING
        )
    try:
        secrets = protocol.parse_secrets(value)
    except ValueError as e:
        raise ImproperlyConfigured(str(e)) from None
    return [protocol.derive_key(s) for s in secrets]


_DJANGO_SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"


def _django_skips_save(status):
    """Whether Django's own SessionMiddleware leaves the session unsaved
    for a response of this status: a 500 up to Django 4.1, every 5xx since
    4.2 (ticket #34173)."""
    if django.VERSION >= (4, 2):
        return status >= 500
    return status == 500


def _check_middleware(middleware):
    """Refuses, in MIDDLEWARE:

    - another subclass of Django's SessionMiddleware that keeps Django's
      process_request (a project's own, built on Django's to change what
      process_response does), anywhere: like Django's own (checked by name
      in SessionMiddleware.__init__), it puts a SESSION_ENGINE session in
      request.session and nothing reaches the gateway. One with its own
      process_request keeps a session elsewhere (djangosaml2's
      SamlSessionMiddleware: request.saml_session) and may stay;
    - ConditionalGetMiddleware (or a subclass) before ours. Its
      process_response then runs after ours and replaces a revalidated page
      with a new 304 that keeps only a few headers and Django's cookies:
      the session change is lost (a logout page the browser revalidates
      leaves the user logged in), where Django's own sessions were saved or
      deleted before any response existed. After ours, Django's documented
      place for it, the 304 is made first and carries the change."""
    from django.middleware.http import ConditionalGetMiddleware
    from django.utils.module_loading import import_string

    ours_seen = False
    for path in middleware:
        try:
            cls = import_string(path)
        except ImportError:
            continue  # Django reports it when it loads the middleware
        if not isinstance(cls, type):
            continue
        if issubclass(cls, SessionMiddleware):
            ours_seen = True
        elif issubclass(cls, DjangoSessionMiddleware) and cls.process_request is DjangoSessionMiddleware.process_request:
            raise ImproperlyConfigured(
                "MIDDLEWARE has %s, a session middleware built on Django's, next to "
                "sessiongate_django.SessionMiddleware: its SESSION_ENGINE session never reaches the "
                "gateway; remove it, or build it on sessiongate_django.SessionMiddleware" % path
            )
        elif issubclass(cls, ConditionalGetMiddleware) and not ours_seen:
            raise ImproperlyConfigured(
                "MIDDLEWARE has %s before sessiongate_django.SessionMiddleware: its 304 responses "
                "would drop the session changes; put it after ours, as Django's documentation orders "
                "ConditionalGetMiddleware after SessionMiddleware" % path
            )


def _drop_frame_locals(exc):
    """Django's error report prints every local variable of every frame of
    a 500's exception and of its causes, and Django 3.2 builds it for the
    admins' mail on every 500 even when ADMINS is empty (Sentry and the like
    capture the same). With the session's data, its JSON and its base64
    chunks among those locals, the 500 of a refused 9 MiB session took 3.5 s
    of CPU. The frames stay in the report; their variables go."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # An executing frame (the caller's) refuses to be cleared, and
        # clear_frames passes over it.
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


class SessionMiddleware(DjangoSessionMiddleware):
    """Put it where django.contrib.sessions.middleware.SessionMiddleware was.

    It subclasses Django's middleware so that checks looking for it (the
    admin's) are satisfied, but shares none of its storage: the session
    comes from the gateway's signed headers and goes back in signed response
    headers."""

    def __init__(self, get_response=None):
        # Not DjangoSessionMiddleware.__init__: it would import
        # SESSION_ENGINE, which is not used. Without get_response (test
        # code from before Django 3.1), Django 3.2's own middleware still
        # works with a RemovedInDjango40Warning and 4.0's refuses it:
        # MiddlewareMixin does each as its version does.
        MiddlewareMixin.__init__(self, get_response)
        # Left in next to this one, Django's own replaces request.session
        # with a SESSION_ENGINE session that never reaches the gateway, and
        # sets a cookie of the gateway's name: refuse to start instead.
        if _DJANGO_SESSION_MIDDLEWARE in (getattr(settings, "MIDDLEWARE", None) or ()):
            raise ImproperlyConfigured(
                "MIDDLEWARE has both %s and sessiongate_django.SessionMiddleware: "
                "replace Django's with ours, do not add ours next to it" % _DJANGO_SESSION_MIDDLEWARE
            )
        _check_middleware(getattr(settings, "MIDDLEWARE", None) or ())
        self.SessionStore = SessionStore
        self._keys = load_keys()
        logins.connect()

    def process_request(self, request):
        if request.method == "OPTIONS" and request.META.get(protocol.CHECK_META):
            # The gateway's check (SESSIONGATE_DJANGO_CHECK_INTERVAL), sent
            # to a backend that answered nothing for a while: any answer
            # shows a worker took it. Answered here, it runs no view and
            # logs nothing, where Django would log its 404 every interval.
            # It carries no session and this answer tells nothing, so
            # whoever sends it directly learns nothing either.
            return HttpResponse(status=204)
        verified = None
        # Why the request has no gateway session, for the log line of a
        # change dropped because of it.
        request._sessiongate_refused = None
        try:
            verified = protocol.verify_request(request.META, self._keys, time.time())
        except protocol.ProtocolError as e:
            request._sessiongate_refused = e
            # Never a 500: the request simply has no session.
            level = logging.INFO if e.missing else logging.WARNING
            logger.log(
                level,
                "request without a valid gateway session (%s): anonymous session; path=%s",
                e,
                request.path,
            )
        request._sessiongate = verified
        logins.start(request)
        if verified is None:
            request.session = SessionStore()
        else:
            request.session = SessionStore(verified.session_id, verified.data)
        _key_cache_by_session(request.META, verified)

    def process_response(self, request, response):
        try:
            response = self._answer(request, response)
        except (TypeError, ValueError) as e:
            # A change the gateway, PHP or Django's server could not take
            # (logged by _change_headers): the 500 Django would make of the
            # error (logged, got_request_exception sent, handler500's page),
            # made here so that it still carries the logins below, which
            # the view committed whatever became of its session.
            response = response_for_exception(request, e)
        verified = getattr(request, "_sessiongate", None)
        # The login hashes that changed (a password, a login): reported on
        # any response, a 500 too, since what was collected is committed.
        users = logins.finish(request)
        if users and verified is not None and protocol.LOGINS in verified.features:
            for name, value in protocol.logins_headers(verified, users):
                response[name] = value
        # On every response, the 500 of a refused change included: the
        # gateway counts and logs a Django response without it (Django's
        # own SessionMiddleware still in MIDDLEWARE) or with a refusal
        # (SESSIONGATE_SESSION_KEYS differs, clock skew), which otherwise
        # only look like users logged out on Django.
        refused = getattr(request, "_sessiongate_refused", None)
        if verified is not None:
            response[protocol.MARK_HEADER] = protocol.MARK_OK
        elif refused is not None:
            response[protocol.MARK_HEADER] = "refused-" + refused.kind
        return response

    def _answer(self, request, response):
        # A response from Django's cache (FetchFromCacheMiddleware) still
        # has the change of the request it was made for, signed for that
        # request's nonce: the gateway would refuse and log it on every
        # hit. Only this request's change may go back.
        for name in [k for k, _ in response.items() if k.lower().replace("_", "-").startswith("x-sessiongate-")]:
            del response[name]
        session = getattr(request, "session", None)
        if not isinstance(session, SessionStore):
            return response
        # Read before gateway_change(), which may look at the data itself.
        accessed = session.accessed
        if accessed:
            patch_vary_headers(response, ("Cookie",))
        # Like Django: nothing is saved on a 500 (the view failed halfway),
        # nor, from Django 4.2 on, on any 5xx. But Django's flush() and
        # cycle_key() delete the stored session at once, whatever the
        # response: a logout (django-session-security's idle logout
        # included) before the view failed still logs the user out, and so
        # must it here, for Django and PHP alike.
        if _django_skips_save(response.status_code):
            if not session.deleted_by_view():
                return response
            change = ("delete", False, None)
        else:
            change = session.gateway_change(accessed=accessed)
        if change is None:
            return response
        verified = getattr(request, "_sessiongate", None)
        if change[0] == "write" and verified is not None:
            logins.session_renewed(request, verified.data, change[2])
        if verified is None:
            # A request with gateway headers that fail (keys that differ
            # during a rotation, clock skew) did come through a gateway:
            # say what was wrong rather than send the operator looking for
            # a way around it.
            refused = getattr(request, "_sessiongate_refused", None)
            if refused is None or refused.missing:
                reason = "the request did not come through the gateway"
            else:
                reason = "the gateway's session headers were refused (%s)" % refused
            logger.warning("session change dropped: %s; path=%s", reason, request.path)
            return response
        try:
            headers = self._change_headers(request, response, session, verified, change)
        except (TypeError, ValueError) as e:
            _drop_frame_locals(e)
            change = None  # this frame's own reference to the data
            if not session.deleted_by_view() or isinstance(e, protocol.LinkedSessionError):
                # A login next to a linked PHP session is refused whole:
                # deleting the session would lose PHP's data for a fault
                # that is not the view's.
                raise
            # flush() or cycle_key() came first: Django's backends deleted
            # the stored session there and then, and its failed save() only
            # turns the page into a 500. A logout that then stored a value
            # JSON cannot hold (a datetime) must still log the user out, so
            # the 500 Django makes of the error (logged, got_request_exception
            # sent, handler500's page) carries the deletion.
            error = response_for_exception(request, e)
            for name, value in protocol.change_headers(verified, "delete"):
                error[name] = value
            return error
        for name, value in headers:
            response[name] = value
        if change[0] == "write" and not verified.session_id:
            # A new session: the gateway sets its cookie on this response,
            # as Django's own middleware would. Django's cache never stores
            # a response that sets a cookie while varying on Cookie; this
            # one sets none Django can see, and its cache key (the client's
            # other cookies, often none) is every new visitor's: cached, the
            # first visitor's page would be served to the next ones.
            patch_cache_control(response, private=True)
        return response

    def _change_headers(self, request, response, session, verified, change):
        """The signed response headers for change; raises TypeError or
        ValueError (logged) for data the gateway, PHP or Django's server
        could not take."""
        op, rotate, data = change
        if rotate == "carry" and protocol.ROTATE_CARRY not in verified.features:
            # A gateway older than "carry" refuses it with the whole change:
            # the rotation it knows moves only the data sent.
            rotate = True
        payload = b""
        expiry = ""
        if op == "write":
            try:
                payload = protocol.dumps(data)
            except (TypeError, ValueError) as e:
                # A value JSON cannot hold is a bug in the view, as with
                # Django's JSONSerializer: fail loudly.
                logger.error("session change refused: data is not JSON-serializable: %s; path=%s", e, request.path)
                raise TypeError("session data is not JSON-serializable: %s" % e) from e
        if op != "delete":
            expiry = session.expiry_header(at=protocol.EXPIRY_AT in verified.features)
        try:
            if op == "write":
                protocol.check_php_limits(data, payload)
                protocol.check_member_names(data)
                protocol.check_reserved_shapes(data, payload)
            headers = protocol.change_headers(verified, op, rotate, expiry, payload)
            if request.META.get("uwsgi.version"):
                cookies = [c.output(header="") for c in response.cookies.values()]
                size = protocol.response_head_bytes(response.status_code, list(response.items()) + headers, cookies)
                if size + protocol.UWSGI_HEAD_MARGIN > protocol.UWSGI_MAX_RESPONSE_HEAD_BYTES:
                    raise ValueError(
                        "session data too large for uWSGI: %d bytes of JSON make a response head of %d bytes, "
                        "and uWSGI sends at most %d" % (len(payload), size, protocol.UWSGI_MAX_RESPONSE_HEAD_BYTES)
                    )
        except ValueError as e:
            # Too large for the gateway (it would answer 502 and drop the
            # change without a word here) or too deep or big for PHP (every
            # PHP page of the session would fail). Fail loudly instead.
            logger.error("session change refused: %s; path=%s", e, request.path)
            raise
        return headers
