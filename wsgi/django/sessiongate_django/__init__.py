"""Django side of sessiongate: request.session is the gateway's shared
session (see README.md and docs/protocol.md section 5).

    MIDDLEWARE = [..., "sessiongate_django.SessionMiddleware", ...]
"""

__version__ = "0.1.0"

__all__ = ["SessionMiddleware", "SessionStore"]


def __getattr__(name):
    # Lazy, so that `import sessiongate_django.protocol` works without
    # Django settings (and without Django at all).
    if name == "SessionMiddleware":
        from .middleware import SessionMiddleware

        return SessionMiddleware
    if name == "SessionStore":
        from .store import SessionStore

        return SessionStore
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
