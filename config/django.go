package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/internal/sockpath"
)

// DjangoConfig is the Django upstream: which paths go to gunicorn (or any
// WSGI server speaking HTTP) and where it listens. Empty URL and PATHS mean
// no Django: every request stays on the PHP site.
type DjangoConfig struct {
	URL           []string      `env:"SESSIONGATE_DJANGO_URL" help:"Django (gunicorn) addresses, comma-separated: http://host:port or unix:/path/to/gunicorn.sock; several are balanced, one that refuses connections, does not accept one within SESSIONGATE_DJANGO_DIAL_TIMEOUT, or sends no answer within SESSIONGATE_DJANGO_TIMEOUT (504) while it answers no other request (a slow view alone does not count) is skipped until it answers a check (SESSIONGATE_DJANGO_CHECK_INTERVAL; with the checks off, for 10s; when all are skipped, they are still tried), and a GET, HEAD, OPTIONS, PUT or DELETE one drops without an answer is tried on the next (like nginx's proxy_next_upstream error); a POST or PATCH goes again only when the backend provably never read it (an exiting gunicorn worker resets the connections it left unread), never twice; set together with SESSIONGATE_DJANGO_PATHS"`
	Paths         []string      `env:"SESSIONGATE_DJANGO_PATHS" help:"comma-separated path prefixes served by Django, e.g. /admin/,/accounts/ (gunicorn serves no static files: let collectstatic write under SESSIONGATE_STATIC_ROOT and the gateway serve them); the longest matching prefix wins, matched like nginx locations (// merged, . and .. resolved), everything else stays PHP"`
	Timeout       time.Duration `env:"SESSIONGATE_DJANGO_TIMEOUT" envDefault:"60s" help:"longest wait for Django's response headers, and then for each next part of the body, before 504, like proxy_read_timeout; also the longest wait for Django to take more of a request body it is sent, like proxy_send_timeout, after which only an answer Django sent already is read (so a stalled upload gets its 504 after one timeout, not two); each of those waits for a part of the body is cut after the timeout and at most a quarter more (the deadline is set that quarter ahead, so that it need not move on every read)"`
	DialTimeout   time.Duration `env:"SESSIONGATE_DJANGO_DIAL_TIMEOUT" envDefault:"3s" help:"time to connect to a Django backend before trying the next one (or 504)"`
	CheckInterval time.Duration `env:"SESSIONGATE_DJANGO_CHECK_INTERVAL" envDefault:"10s" help:"how often each Django backend in turn that began no answer for that long is sent OPTIONS * (sessiongate_django answers it before any view; any answer counts); one that answers nothing within 2 s, while it begins no answer to a request either (a stopped gunicorn, every worker stuck), is taken out of turn before a request waits SESSIONGATE_DJANGO_TIMEOUT on it; a backend out of turn, however it was found, is sent the same check every second and comes back when it answers; 0 = off (then a backend is skipped for 10s and requests try it again)"`
}

// Enabled reports whether a Django upstream is configured.
func (d *DjangoConfig) Enabled() bool { return len(d.URL) > 0 }

func (d *DjangoConfig) validate(check func(name string, ok bool, format string, args ...any)) {
	switch {
	case len(d.URL) > 0 && len(d.Paths) == 0:
		check("SESSIONGATE_DJANGO_PATHS", false, "must be set when SESSIONGATE_DJANGO_URL is (set both or neither)")
	case len(d.URL) == 0 && len(d.Paths) > 0:
		check("SESSIONGATE_DJANGO_URL", false, "must be set when SESSIONGATE_DJANGO_PATHS is (set both or neither)")
	}
	seen := map[string]bool{}
	for _, u := range d.URL {
		if msg := CheckDjangoURL(u); msg != "" {
			check("SESSIONGATE_DJANGO_URL", false, "%s", msg)
		}
		key := backendKey(u)
		check("SESSIONGATE_DJANGO_URL", !seen[key], "%q is listed twice", u)
		seen[key] = true
	}
	check("SESSIONGATE_DJANGO_URL", len(d.URL) <= 64, "at most 64 backends")
	seenPath := map[string]bool{}
	for _, p := range d.Paths {
		// Request paths have // merged before they are matched, so a prefix
		// holding // would never match.
		check("SESSIONGATE_DJANGO_PATHS", urlPrefixOK(p),
			urlPrefixRule("prefix", "/admin/"), p)
		check("SESSIONGATE_DJANGO_PATHS", p != "/", "\"/\" would send the whole site to Django; list the prefixes Django serves")
		check("SESSIONGATE_DJANGO_PATHS", !seenPath[p], "%q is listed twice", p)
		seenPath[p] = true
	}
	checkDuration(check, "SESSIONGATE_DJANGO_TIMEOUT", d.Timeout)
	checkDuration(check, "SESSIONGATE_DJANGO_DIAL_TIMEOUT", d.DialTimeout)
	checkDuration(check, "SESSIONGATE_DJANGO_CHECK_INTERVAL", d.CheckInterval)
}

// urlPrefixOK reports whether p can be matched against request paths,
// which have // merged and dot segments resolved before matching.
func urlPrefixOK(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "?#%\\ \t") && !strings.Contains(p, "//") && !HasRelativeSegment(p)
}

// urlPrefixRule is the message format (for one %q, the value) of an entry
// urlPrefixOK refuses, for lists of URL paths of the given kind, with an
// example.
func urlPrefixRule(kind, example string) string {
	return "%q: each " + kind + " must be a URL path starting with / (no query, %%-escapes, // or .. segments), e.g. " + example
}

// CheckDjangoURL explains what is wrong with one SESSIONGATE_DJANGO_URL
// entry, or returns "". Accepted: http://host:port (no path, query or
// credentials) and unix:/absolute/path.
func CheckDjangoURL(s string) string {
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(rest) {
			return fmt.Sprintf("%q: a unix socket needs an absolute path, unix:/path/to/gunicorn.sock", s)
		}
		if err := sockpath.Check(rest); err != nil {
			return fmt.Sprintf("%q: %v", s, err)
		}
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("%q is not http://host:port or unix:/path", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || !validPort(port, false) {
		return fmt.Sprintf("%q: needs a host and a port, http://127.0.0.1:8000", s)
	}
	return ""
}
