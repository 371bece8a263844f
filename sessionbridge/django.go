package sessionbridge

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sessiongate/sessiongate/server"
)

// DjangoMarkHeader is the header sessiongate_django's middleware sets on
// every response it handled: DjangoMarkOK, or "refused-" and why it
// refused the gateway's session headers (docs/protocol.md section 5). A
// Django whose MIDDLEWARE still lists Django's own SessionMiddleware, or
// whose SESSIONGATE_SESSION_KEYS differs from the gateway's, serves every
// page with a session of its own or none: users look logged out there and
// nothing else would tell. The proxy strips it with the other
// X-Sessiongate-* headers.
const (
	DjangoMarkHeader = "X-Sessiongate-Django"
	DjangoMarkOK     = "ok"
)

// DjangoSessionTooBig counts a request that Django's server refused (400,
// 431) or dropped before Django ran while its session took more request
// header than the server's limits likely allow: every Django page of that
// session fails so, which an operator wants to alert on. The caller logs
// the request's sizes.
func (m *Manager) DjangoSessionTooBig() {
	m.event("django_session_too_big")
}

// DjangoMiddlewareMissing reports a Django response that should have
// passed sessiongate_django's middleware and carries no DjangoMarkHeader
// (the caller rules out what an earlier middleware or the WSGI server
// answers by itself): counted each time, logged once a minute.
func (m *Manager) DjangoMiddlewareMissing(path string, status int, backend string) {
	m.event("django_middleware_missing")
	if !m.dueAgain(&m.djangoUnmarkedWarned) {
		return
	}
	m.log.Warn("Django answered without sessiongate_django's middleware, so its pages do not share the session (users look logged out there). "+
		"Most likely its MIDDLEWARE still lists django.contrib.sessions.middleware.SessionMiddleware (or no session middleware): "+
		"put \"sessiongate_django.SessionMiddleware\" in its place, where Django's sat. "+
		"If MIDDLEWARE has ours, the sessiongate_django installed there is older than this gateway and marks no response (header "+DjangoMarkHeader+"): upgrade it. "+
		"Logged once a minute.", "path", server.LogValue(path), "status", status, "backend", backend)
}

// queuedWait is how long, by the gateway's clock, a request refused for its
// timestamp (refused-clock) must have waited for its answer to be taken
// for one that sat in the backend's queue rather than for clocks that
// differ: the middleware's window is 60 s, less a margin for the page's
// own run time after the check.
const queuedWait = 55 * time.Second

// DjangoSessionRefused reports a Django response whose mark (the value of
// DjangoMarkHeader, not DjangoMarkOK) says the middleware refused the
// gateway's session headers: every page then runs with an empty anonymous
// session. Counted each time, logged once a minute with the likely cause.
// waited is how long ago the gateway signed the request that got this
// answer.
func (m *Manager) DjangoSessionRefused(mark, path string, status int, backend string, waited time.Duration) {
	m.event("django_signature_rejected")
	if !m.dueAgain(&m.djangoRefusedWarned) {
		return
	}
	var cause string
	switch mark {
	case "refused-signature":
		cause = "No key of its SESSIONGATE_SESSION_KEYS verifies the gateway's signature: Django's keys differ from the gateway's. " +
			"Give Django (gunicorn's environment, or the Django setting of that name) the gateway's SESSIONGATE_SESSION_KEYS; " +
			"in a key rotation, Django must have the new key before the gateway signs with it (the gateway signs with its first key)."
	case "refused-clock":
		if waited >= queuedWait {
			cause = fmt.Sprintf("The request waited %ds in the backend before Django took it (all of gunicorn's workers busy, its queue), "+
				"longer than the 60 s sessiongate_django accepts the gateway's signature for. "+
				"A sessiongate_django as new as this gateway accepts as long as SESSIONGATE_DJANGO_TIMEOUT: upgrade it, "+
				"or give the backend more workers (gunicorn --workers, --threads) so requests do not queue that long.", int(waited/time.Second))
			break
		}
		cause = "The gateway's signature is more than 60 s from Django's clock: synchronize the clocks of the gateway's and Django's hosts (NTP)."
	case "refused-missing":
		cause = "The gateway's X-Sessiongate-* request headers did not reach Django: something between the gateway and gunicorn drops them."
	default:
		cause = "The gateway's session headers reached Django changed (something between the gateway and gunicorn alters request headers), " +
			"or sessiongate_django and the gateway are of versions that disagree; Django's log (logger sessiongate_django) names the reason."
	}
	m.log.Warn("Django refused the gateway's session, so its pages run with an empty anonymous session (users look logged out there). "+
		cause+" Logged once a minute.", "path", server.LogValue(path), "status", status, "backend", backend, "mark", server.LogValue(mark))
}

// DjangoRawIDCookie logs, once a minute, that Django sent cookies (named
// in dropped) holding the raw session ID, which the proxy dropped: unlike
// PHP, Django sends such a cookie only when an app is set up wrong.
func (m *Manager) DjangoRawIDCookie(path string, dropped []string) {
	if m.dueAgain(&m.djangoRawCookieWarned) {
		m.log.Warn("Django sent a cookie holding the raw session ID; dropped, the gateway's signed cookie carries the session. Logged once a minute.",
			"path", server.LogValue(path), "cookies", dropped)
	}
}

// DjangoMiddlewareExpected reports whether a Django response without
// DjangoMarkHeader is a sign that the middleware is missing, from what
// can answer before it runs: a redirect, 304 or 400 (SecurityMiddleware's
// SECURE_SSL_REDIRECT and ALLOWED_HOSTS checks, whitenoise's revalidated
// files, gunicorn's refusal of a malformed or oversized request), a 431
// (gunicorn 22 and later refuse oversized header fields with it), a 5xx
// (an exception in a middleware listed before it, gunicorn's own 500), a
// 1xx, and a CORS preflight (OPTIONS, which django-cors-headers answers
// from the top of MIDDLEWARE).
func DjangoMiddlewareExpected(method string, status int) bool {
	switch {
	case status < 200 || status >= 300 && status < 400:
		return false
	case status == http.StatusBadRequest || status == http.StatusRequestHeaderFieldsTooLarge || status >= 500:
		return false
	}
	return method != http.MethodOptions
}
