package config

import (
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSessionBadValues: each value is refused at Load, in the one error,
// under its own name, and never echoes the password it carries.
func TestSessionBadValues(t *testing.T) {
	for _, c := range []struct {
		name, value, want string
	}{
		// A Redis URL is checked by the very parser the store uses, so a bad
		// one stops the start with the other bad variables (exit 78), not
		// later as a runtime failure.
		{"SESSIONGATE_REDIS_URL", "localhost:6379", "needs a scheme"},
		{"SESSIONGATE_REDIS_URL", "http://:hunter2@127.0.0.1:6379", "unknown Redis URL scheme"},
		{"SESSIONGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0?foo=1", "unexpected option: foo"},
		{"SESSIONGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/abc", "invalid database number"},
		{"SESSIONGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:6379,127.0.0.2:6379/0", "names one server"},
		{"SESSIONGATE_REDIS_URL", "redis-sentinel://:hunter2@s1:26379,s2:26379/0", "master"},
		{"SESSIONGATE_REDIS_URL", "redis-cluster://:hunter2@n1:6379,n2:6379/0", "no database number"},
		{"SESSIONGATE_REDIS_URL", "unix://:hunter2@", "empty unix socket path"},
		// go-redis panics on a negative pool size: a refusal, not a crash.
		{"SESSIONGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0?pool_size=-1", "SESSIONGATE_REDIS_URL: "},
		{"SESSIONGATE_REDIS_URL", "redis-sentinel://:hunter2@s1:26379/0?master=m&pool_size=-3", "SESSIONGATE_REDIS_URL: "},
		// An unencoded '/' in the password makes the rest of it the path,
		// which go-redis quotes: the detail must be withheld.
		{"SESSIONGATE_REDIS_URL", "redis://default:1234/wxyz@127.0.0.1:6379/0", "percent-encode"},
		{"SESSIONGATE_REDIS_URL", "redis://default:hunter2/wxyz@127.0.0.1:6379/0", "non-numeric port"},
		{"SESSIONGATE_REDIS_URL", "redis-sentinel://s1:26379/0?master=m&sentinel_password=hunter2&wxyz&x=1", "percent-encode"},
		// A port out of range is as wrong as one with letters: refused
		// here (exit 78, not restarted), not found by the start-up
		// check (exit 1, which a supervisor restarts for ever).
		{"SESSIONGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:99999/0", "port"},
		{"SESSIONGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:0/0", "port"},
		{"SESSIONGATE_REDIS_URL", "rediss://:hunter2@[::1]:65536/0", "port"},
		{"SESSIONGATE_REDIS_URL", "redis-cluster://:hunter2@n1:6379,n2:70000", "port"},
		{"SESSIONGATE_REDIS_URL", "redis-sentinel://:hunter2@s1:26379,s2:0/0?master=m", "port"},
		{"SESSIONGATE_REDIS_PREFIX", "sg{x}:", "'{'"},
		// The \r of an env file saved with CRLF line ends: kept, it
		// made keys no other gateway (or redis-cli user) would look for.
		{"SESSIONGATE_REDIS_PREFIX", "sessiongate:\r", "control character"},
		{"SESSIONGATE_REDIS_PREFIX", "sg\x00:", "control character"},
		{"SESSIONGATE_REDIS_PREFIX", "sg\x7f:", "control character"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "example.com:8443", "domain"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "https://example.com", "domain"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "exa mple.com", "domain"},
		// A fully qualified name as DNS writes it: net/http sends it as
		// it is, and Chromium drops the cookie (RFC 6265 has browsers
		// ignore the Domain), so no login would stick.
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "example.com.", "trailing dot"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", ".example.com.", "trailing dot"},
		// A public suffix: browsers refuse the cookie (a site could set
		// cookies for every other under it), so no login would stick.
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "com", "public suffix"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", ".co.uk", "public suffix"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "CO.UK", "public suffix"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "herokuapp.com", "public suffix"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN", "github.io", "public suffix"},
		{"SESSIONGATE_SESSION_COOKIE_SAMESITE", "lax;", "must be lax, strict or none"},
		{"SESSIONGATE_SESSION_COOKIE_SAMESITE", "off", "must be lax, strict or none"},
		{"SESSIONGATE_SESSION_COOKIE_SAMESITE", "none", "requires SESSIONGATE_SESSION_COOKIE_SECURE=on"},
		// The start-up probe waits 5x this: an absurd value overflowed it.
		{"SESSIONGATE_REDIS_TIMEOUT", "600000h", "at most 1m"},
		{"SESSIONGATE_REDIS_WAIT_REPLICAS", "-1", "must be 0 (off) or a number of replicas"},
		{"SESSIONGATE_REDIS_WAIT_REPLICAS", "one", "SESSIONGATE_REDIS_WAIT_REPLICAS"},
		{"SESSIONGATE_REDIS_WAIT_REPLICAS", "1", "needs a Redis store with replicas"},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Load panicked: %v", r)
					}
				}()
				_, err = Load(append(base(t), c.name+"="+c.value))
			}()
			var cerr *Error
			if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{c.name}) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want only %s with %q", err, c.name, c.want)
			}
			if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, "wxyz") {
				t.Errorf("password echoed:\n%s", msg)
			}
		})
	}
}

func TestSessionGoodValues(t *testing.T) {
	for _, env := range [][]string{
		{"SESSIONGATE_REDIS_URL=redis://:pw@10.0.0.5:6379/0"},
		{"SESSIONGATE_REDIS_URL=rediss://user:p%2Fw@[::1]:6380/1?dial_timeout=1s"},
		{"SESSIONGATE_REDIS_URL=unix:///run/redis/redis.sock?db=0"},
		{"SESSIONGATE_REDIS_URL=redis-sentinel://:pw@s1:26379,s2:26379/0?master=mymaster"},
		{"SESSIONGATE_REDIS_URL=redis-cluster://:pw@n1:6379,n2:6379,n3:6379"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN=example.com"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN=.example.co.uk"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN=localhost"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN=myshop.herokuapp.com"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN=intranet"},
		{"SESSIONGATE_SESSION_COOKIE_DOMAIN=10.0.0.5"},
		{"SESSIONGATE_REDIS_PREFIX=app1:sessions:"},
		{"SESSIONGATE_SESSION_COOKIE_SAMESITE=Strict"},
		{"SESSIONGATE_SESSION_COOKIE_SAMESITE=none", "SESSIONGATE_SESSION_COOKIE_SECURE=on"},
		{"SESSIONGATE_SESSION_EXPIRE_AT_BROWSER_CLOSE=on"},
		{"SESSIONGATE_REDIS_URL=redis-sentinel://:pw@s1:26379/0?master=mymaster", "SESSIONGATE_REDIS_WAIT_REPLICAS=1"},
		{"SESSIONGATE_REDIS_URL=redis://:pw@10.0.0.5:6379/0", "SESSIONGATE_REDIS_WAIT_REPLICAS=2"},
		{"SESSIONGATE_REDIS_WAIT_REPLICAS=0"},
		// Session variables are not used, so not checked, with sessions off.
		{"SESSIONGATE_SESSIONS=off", "SESSIONGATE_REDIS_URL=nonsense", "SESSIONGATE_REDIS_PREFIX={x}"},
	} {
		before := runtime.NumGoroutine()
		if _, err := Load(append(base(t), env...)); err != nil {
			t.Errorf("%v: %v", env, err)
		}
		// A goroutine the Redis client ends on Close may take a moment
		// to exit (seen once in CI under load); a leak stays.
		for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if after := runtime.NumGoroutine(); after > before {
			t.Errorf("%v: Load left %d goroutines running", env, after-before)
		}
	}
}

// WAIT has no key, so go-redis sends it to a Cluster node of its own
// choosing, not the master that took the write: the combination is refused
// at start, naming the variable, rather than counting the wrong replicas.
func TestWaitReplicasRefusedWithCluster(t *testing.T) {
	for _, url := range []string{"redis-cluster://n1:6379,n2:6379", "REDISS-CLUSTER://n1:6379"} {
		_, err := Load(append(base(t), "SESSIONGATE_REDIS_URL="+url, "SESSIONGATE_REDIS_WAIT_REPLICAS=1"))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_REDIS_WAIT_REPLICAS"}) || !strings.Contains(err.Error(), "redis-cluster://") {
			t.Errorf("%s: got %v, want SESSIONGATE_REDIS_WAIT_REPLICAS refused for a Cluster", url, err)
		}
	}
}

// An unreadable SESSIONGATE_SESSIONS must not hide the session variables'
// own problems: they are checked as if sessions were on.
func TestBadSessionsSwitchHidesNothing(t *testing.T) {
	_, err := Load(append(base(t), "SESSIONGATE_SESSIONS=maybe", "SESSIONGATE_SESSION_LOCK=bogus", "SESSIONGATE_REDIS_URL=localhost:6379"))
	var cerr *Error
	want := []string{"SESSIONGATE_SESSIONS", "SESSIONGATE_SESSION_LOCK", "SESSIONGATE_REDIS_URL"}
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

// The message's own example and the store's hints keep their user info.
func TestRedisURLHintsIntact(t *testing.T) {
	for v, want := range map[string]string{
		"redis://default:1234/wxyz@127.0.0.1:6379/0":           "redis://:p%2Fss@host:6379/0",
		"redis-sentinel://:pw@s1:26379/0?master=m&password=pw": "redis-sentinel://user:pass@...",
	} {
		_, err := Load(append(base(t), "SESSIONGATE_REDIS_URL="+v))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", v, err, want)
		}
	}
}

// Browsers refuse a Set-Cookie whose name starts with __Secure- without
// Secure, and one starting with __Host- without Secure or with a Domain
// (RFC 6265bis 4.1.3; the prefixes match case-insensitively in current
// browsers). Such a cookie name loaded, and every login then vanished:
// for good with a cookie domain, on every plain-HTTP request without
// SESSIONGATE_SESSION_COOKIE_SECURE=on. They are refused like
// SameSite=None without Secure.
func TestSessionCookiePrefixes(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string // "" when valid
	}{
		{[]string{"SESSIONGATE_SESSION_COOKIE=__Host-sid"}, "SESSIONGATE_SESSION_COOKIE_SECURE=on"},
		{[]string{"SESSIONGATE_SESSION_COOKIE=__host-sid"}, "SESSIONGATE_SESSION_COOKIE_SECURE=on"},
		{[]string{"SESSIONGATE_SESSION_COOKIE=__Secure-sid"}, "SESSIONGATE_SESSION_COOKIE_SECURE=on"},
		{[]string{"SESSIONGATE_SESSION_COOKIE=__Host-sid", "SESSIONGATE_SESSION_COOKIE_SECURE=on", "SESSIONGATE_SESSION_COOKIE_DOMAIN=example.com"}, "SESSIONGATE_SESSION_COOKIE_DOMAIN"},
		{[]string{"SESSIONGATE_SESSION_COOKIE=__Host-sid", "SESSIONGATE_SESSION_COOKIE_SECURE=on"}, ""},
		{[]string{"SESSIONGATE_SESSION_COOKIE=__Secure-sid", "SESSIONGATE_SESSION_COOKIE_SECURE=on", "SESSIONGATE_SESSION_COOKIE_DOMAIN=example.com"}, ""},
		{[]string{"SESSIONGATE_SESSION_COOKIE=_Host-sid"}, ""},
		// Sessions off: the cookie is never set.
		{[]string{"SESSIONGATE_SESSION_COOKIE=__Host-sid", "SESSIONGATE_SESSIONS=off"}, ""},
	} {
		_, err := Load(append(base(t), c.env...))
		var cerr *Error
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case c.want != "" && (!errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_SESSION_COOKIE"}) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: got %v, want SESSIONGATE_SESSION_COOKIE refused with %q", c.env, err, c.want)
		}
	}
}

// A browser ignores a Set-Cookie whose Domain the request's host does not
// domain-match (RFC 6265 5.3 step 6). SESSIONGATE_SESSION_COOKIE_DOMAIN
// that none of SESSIONGATE_SERVER_NAMES falls under (a typo, the staging
// domain left in) loaded, and then no session ever stuck on the site. It is
// refused; a listed name outside it (which would never keep a session)
// gets a warning, unless SESSIONGATE_CANONICAL_NAME sends it elsewhere.
func TestSessionCookieDomainAgainstServerNames(t *testing.T) {
	for _, c := range []struct {
		names, canonical, domain string
		refused                  bool
		warn                     string
	}{
		{"example.com", "", "example.org", true, ""},
		{"www.example.com,example.com", "", "ample.com", true, ""},
		{"*.example.com", "", "other.example", true, ""},
		{"example.com,www.example.com", "example.com", "www.example.com", true, ""},
		{"www.example.com,example.com", "", ".Example.COM", false, ""},
		{"*.example.com", "", "example.com", false, ""},
		{"shop.example.com", "", "shop.example.com", false, ""},
		{"example.com,example.net,127.0.0.1,app", "", "example.com", false, "example.net"},
		{"example.com,example.net", "example.com", "example.com", false, ""},
		{"127.0.0.1,app", "", "example.com", false, ""},
	} {
		env := append(base(t), "SESSIONGATE_SERVER_NAMES="+c.names, "SESSIONGATE_SESSION_COOKIE_DOMAIN="+c.domain)
		if c.canonical != "" {
			env = append(env, "SESSIONGATE_CANONICAL_NAME="+c.canonical)
		}
		cfg, err := Load(env)
		var cerr *Error
		switch {
		case c.refused:
			if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_SESSION_COOKIE_DOMAIN"}) || !strings.Contains(err.Error(), "SESSIONGATE_SERVER_NAMES") {
				t.Errorf("names %q domain %q: got %v, want SESSIONGATE_SESSION_COOKIE_DOMAIN refused", c.names, c.domain, err)
			}
		case err != nil:
			t.Errorf("names %q domain %q: %v", c.names, c.domain, err)
		default:
			got := strings.Join(cfg.Warnings, "\n")
			if c.warn == "" && got != "" || c.warn != "" && (len(cfg.Warnings) != 1 || !strings.Contains(got, c.warn)) {
				t.Errorf("names %q domain %q: warnings %q, want one about %q", c.names, c.domain, cfg.Warnings, c.warn)
			}
		}
	}
	// Sessions off: no cookie to refuse.
	if _, err := Load(append(base(t), "SESSIONGATE_SESSIONS=off", "SESSIONGATE_SERVER_NAMES=example.com", "SESSIONGATE_SESSION_COOKIE_DOMAIN=example.org")); err != nil {
		t.Errorf("sessions off: %v", err)
	}
}

// The gateway sends SESSIONGATE_PHP_PREPEND in PHP_VALUE as
// auto_prepend_file=PATH, which php-fpm reads with PHP's ini parser: in a
// path, ';' starts a comment (the prepend path is cut short and every
// page fails to open it), '&' '|' '~' '^' '!' are operators, '(' ')' '='
// both quotes and "${" make the whole PHP_VALUE unreadable (no prepend and
// none of the session settings: sessions silently unshared), "${VAR}" is
// replaced by an environment variable, and a newline starts another
// setting (measured with parse_ini_string, INI_SCANNER_NORMAL, PHP 8.2).
// Such a path loaded; it is refused.
func TestPHPPrependPathPHPCanRead(t *testing.T) {
	for _, p := range []string{"/srv/a;b/prepend.php", "/srv/site (old)/prepend.php", "/srv/a&b/prepend.php", "/srv/a=b/prepend.php",
		"/srv/a\"b/prepend.php", "/srv/a'b/prepend.php", "/srv/a!b/prepend.php", "/srv/a^b/prepend.php", "/srv/a|b/prepend.php", "/srv/a~b/prepend.php",
		"/srv/${HOME}/prepend.php", "/srv/prepend.php\nauto_append_file=/x.php"} {
		_, err := Load(append(base(t), "SESSIONGATE_PHP_PREPEND="+p))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_PHP_PREPEND"}) {
			t.Errorf("SESSIONGATE_PHP_PREPEND=%q: got %v, want it refused", p, err)
		}
	}
	for _, p := range []string{"/etc/php/8.2/sessiongate-prepend.php", "/srv/my site/prepend.php", "/srv/a$b/x.php", "/srv/a[1]/{x}/#/ü.php"} {
		if _, err := Load(append(base(t), "SESSIONGATE_PHP_PREPEND="+p)); err != nil {
			t.Errorf("SESSIONGATE_PHP_PREPEND=%q: %v", p, err)
		}
	}
}

// SESSIONGATE_REDIS_COALESCE: auto is on for a Redis on this host only; a
// value that is none of auto, on, off is refused by name.
func TestRedisCoalesce(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{[]string{"SESSIONGATE_REDIS_URL=redis://127.0.0.1:6379/0"}, true},
		{[]string{"SESSIONGATE_REDIS_URL=unix:///run/redis.sock"}, true},
		{[]string{"SESSIONGATE_REDIS_URL=redis://10.0.0.5:6379/0"}, false},
		{[]string{"SESSIONGATE_REDIS_URL=redis://10.0.0.5:6379/0", "SESSIONGATE_REDIS_COALESCE=on"}, true},
		{[]string{"SESSIONGATE_REDIS_URL=redis://127.0.0.1:6379/0", "SESSIONGATE_REDIS_COALESCE=off"}, false},
	} {
		c, err := Load(append(base(t), tc.env...))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if got := c.Session.Coalesce(); got != tc.want {
			t.Errorf("%v: Coalesce() = %v, want %v", tc.env, got, tc.want)
		}
	}
	_, err := Load(append(base(t), "SESSIONGATE_REDIS_URL=redis://127.0.0.1:6379/0", "SESSIONGATE_REDIS_COALESCE=yes"))
	var cerr *Error
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_REDIS_COALESCE"}) || !strings.Contains(err.Error(), "auto, on or off") {
		t.Fatalf("SESSIONGATE_REDIS_COALESCE=yes: %v", err)
	}
}

// A Cluster URL that would read sessions from replicas (read_only,
// route_randomly, route_by_latency) stops the start naming the variable,
// as a Sentinel URL with such options always did.
func TestRedisURLWithReplicaReadsRefused(t *testing.T) {
	_, err := Load(append(base(t), "SESSIONGATE_REDIS_URL=redis-cluster://n1:6379,n2:6379?read_only=true"))
	var e *Error
	if !errors.As(err, &e) || !slices.Equal(e.Vars(), []string{"SESSIONGATE_REDIS_URL"}) || !strings.Contains(err.Error(), "read_only") {
		t.Errorf("got %v, want SESSIONGATE_REDIS_URL refused for read_only", err)
	}
}
