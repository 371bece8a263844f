"""Which login hashes of a user Django takes now, told to the gateway so
that PHP pages honour a password change as Django does (docs/protocol.md
section 5, "Logins").

Django keeps a hash of the user's password in the session
(_auth_user_hash) and logs the session out at its next page once it no
longer matches: after a password change every other session of the user,
a stolen one included, is over. PHP cannot compute the hash. So whenever
the valid hashes may have changed (a user saved: a password set, a login,
which saves last_login, a user made inactive; a user deleted; a session's
hash renewed by Django), this module
collects them during the request and the middleware reports them; the
gateway then tells a PHP page whose session holds another hash."""

import contextvars

from django.db import transaction
from django.utils.functional import LazyObject, empty

# The users whose valid hashes changed during this request: {user id:
# [hashes]}, set by the middleware for each request. A dict, shared by the
# copies of the context a view may run in (asgiref's thread for a sync
# view under ASGI), so what they collect reaches the middleware.
_collected = contextvars.ContextVar("sessiongate_django_logins", default=None)

AUTH_USER = "_auth_user_id"
AUTH_HASH = "_auth_user_hash"


def start(request):
    """Starts collecting for request."""
    request._sessiongate_logins = {}
    _collected.set(request._sessiongate_logins)


def finish(request):
    """Stops collecting and returns what was collected for request."""
    _collected.set(None)
    return getattr(request, "_sessiongate_logins", None) or {}


def connect():
    """Collects the saves of the user model, when the site has one, and of
    its proxies and subclasses: Django sends their signals with their own
    class as sender (a proxy registered in the admin for staff, say), so
    the receivers listen to every model and keep the users'."""
    from django.apps import apps
    from django.conf import settings
    from django.db.models.signals import post_delete, post_save

    try:
        model = apps.get_model(settings.AUTH_USER_MODEL, require_ready=False)
    except (LookupError, ValueError):
        return  # no django.contrib.auth: no logins to report
    global _user_model
    _user_model = model
    post_save.connect(user_saved, dispatch_uid="sessiongate_django.logins")
    post_delete.connect(user_deleted, dispatch_uid="sessiongate_django.logins")


# The user model connect() found; the receivers pass over other models.
_user_model = None


def valid_hashes(user):
    """The _auth_user_hash values Django's get_user() accepts for user now:
    its current one, then those made with SECRET_KEY_FALLBACKS (Django 4.1
    and later), or None for a user without them."""
    current = getattr(user, "get_session_auth_hash", None)
    if current is None:
        return None
    hashes = [current()]
    fallback = getattr(user, "get_session_auth_fallback_hash", None)
    if fallback is not None:
        hashes.extend(h for h in fallback() if h not in hashes)
    return hashes


def login_hashes(user):
    """valid_hashes(user), or none at all ([]) for a user no authentication
    backend gives back: Django's get_user() then finds nobody for the
    user's sessions, as for a user made inactive under ModelBackend."""
    hashes = valid_hashes(user)
    if hashes is None or _a_backend_takes(user):
        return hashes
    return []


def _a_backend_takes(user):
    """Whether a backend of AUTHENTICATION_BACKENDS may give user back to
    get_user(). ModelBackend and its subclasses say so by
    user_can_authenticate() (is_active); a backend without that method,
    or AllowAllUsersModelBackend, may take any user, and the sessions of
    such a user are not ended on PHP pages. With no backend at all
    get_user() takes nobody."""
    from django.conf import settings
    from django.contrib.auth import load_backend

    for path in settings.AUTHENTICATION_BACKENDS:
        can = getattr(load_backend(path), "user_can_authenticate", None)
        if can is None or can(user):
            return True
    return False


def user_id(user):
    """The user's id as login() stores it in the session."""
    return user._meta.pk.value_to_string(user)


def user_saved(sender, instance, using=None, **kwargs):
    """post_save of the user model: a password set, a login (Django saves
    last_login), a user made inactive or active again."""
    if _user_model is not None and isinstance(instance, _user_model):
        _collect_when_committed(instance, using, _committed_login_hashes)


def user_deleted(sender, instance, using=None, **kwargs):
    """post_delete of the user model: Django's get_user() finds nobody for
    the user's sessions any more, so no login of the user is valid (an
    empty list)."""
    if _user_model is not None and isinstance(instance, _user_model):
        _collect_when_committed(instance, using, lambda user, using: [])


def _committed_login_hashes(user, using):
    """login_hashes of the user as the database holds it now, not of the
    instance that was saved: login() saves only last_login on a user it
    loaded before checking the password, so a password change committed
    meanwhile (another device, another gateway) leaves that instance with
    the old password, whose hash Django no longer takes. A user gone since
    has no valid login."""
    fresh = type(user)._base_manager.db_manager(using).filter(pk=user.pk).first()
    if fresh is None:
        return []
    return login_hashes(fresh)


def _collect_when_committed(user, using, hashes_of):
    """Collects hashes_of(user, using) as the user's valid hashes (None:
    none to report) once the save or deletion is committed: a transaction
    rolled back (ATOMIC_REQUESTS and a 500) changed nothing, and reporting
    it would end the user's valid sessions on PHP pages."""
    users = _collected.get()
    if users is None:
        return  # not in a request through the middleware (manage.py)
    uid = user_id(user)

    def collect():
        hashes = hashes_of(user, using)
        if hashes is not None:
            users[uid] = hashes

    transaction.on_commit(collect, using=using)


def session_renewed(request, given, written):
    """A session written with another login hash than it was given (a
    login, update_session_auth_hash() after a password change, or Django
    4.2's renewal of a hash made with a fallback secret): the user is the
    request's, already loaded. Collected unless a save of that user was."""
    users = getattr(request, "_sessiongate_logins", None)
    if users is None or not isinstance(written, dict):
        return
    uid, h = written.get(AUTH_USER), written.get(AUTH_HASH)
    if not isinstance(uid, str) or not isinstance(h, str) or uid in users:
        return
    if isinstance(given, dict) and given.get(AUTH_USER) == uid and given.get(AUTH_HASH) == h:
        return
    for user in _loaded_users(request):
        if getattr(user, "pk", None) is not None and user_id(user) == uid:
            hashes = valid_hashes(user)
            if hashes and h in hashes:
                users[uid] = hashes
            return


def _loaded_users(request):
    """The users the request already loaded: request.user once evaluated
    (evaluating it here would run get_user(), which may flush the session),
    and what AuthenticationMiddleware cached for request.user and for an
    async view's request.auser()."""
    user = request.__dict__.get("user")
    if isinstance(user, LazyObject):
        user = user._wrapped
    for u in (user, request.__dict__.get("_acached_user"), request.__dict__.get("_cached_user")):
        if u is not None and u is not empty:
            yield u
