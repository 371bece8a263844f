package config

import (
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
	"golang.org/x/net/publicsuffix"
)

// SessionConfig is the shared session: cookie, keys, expiry, locking and the
// store. Its variables are documented in README "Sessions".
type SessionConfig struct {
	Enabled           bool          `env:"SESSIONGATE_SESSIONS" envDefault:"on" help:"on: the gateway owns the session (cookie, store, PHP and Django bridges); off: a plain front server, for PHP and for Django under SESSIONGATE_DJANGO_PATHS, sharing no session: PHP keeps its own sessions (remove the prepend from the pool if it loads it: there it stores no session, and logs why)"`
	Cookie            string        `env:"SESSIONGATE_SESSION_COOKIE" envDefault:"sessionid" help:"name of the session cookie the gateway signs (the PHP and Django apps share it); a __Secure- or __Host- name needs SESSIONGATE_SESSION_COOKIE_SECURE=on, and __Host- no SESSIONGATE_SESSION_COOKIE_DOMAIN"`
	Keys              []string      `env:"SESSIONGATE_SESSION_KEYS" secret:"true" help:"comma-separated secrets of at least 32 bytes; the first signs cookies, all verify (rotation); required unless SESSIONGATE_SESSION_DEV=on"`
	Dev               bool          `env:"SESSIONGATE_SESSION_DEV" envDefault:"off" help:"development mode: without SESSIONGATE_SESSION_KEYS a throwaway key is generated at start (sessions die with the process)"`
	Domain            string        `env:"SESSIONGATE_SESSION_COOKIE_DOMAIN" help:"cookie Domain attribute, e.g. example.com to share the session with www. and other subdomains; not a public suffix (com, co.uk, herokuapp.com), whose cookies browsers refuse; empty = host only. Set on a live site, where browsers keep their host-only cookie beside the new one and send it first, each response that gives a session a new ID (a login) expires the host-only one too"`
	Secure            bool          `env:"SESSIONGATE_SESSION_COOKIE_SECURE" envDefault:"off" help:"always mark the cookie Secure (it is always Secure on HTTPS requests)"`
	SameSite          string        `env:"SESSIONGATE_SESSION_COOKIE_SAMESITE" envDefault:"lax" help:"cookie SameSite attribute: lax, strict (a visitor arriving by a link from another site is anonymous on that first page; breaks single sign-on and payment returns) or none (needed when a payment or identity provider posts back from another site; requires SESSIONGATE_SESSION_COOKIE_SECURE=on)"`
	BrowserClose      bool          `env:"SESSIONGATE_SESSION_EXPIRE_AT_BROWSER_CLOSE" envDefault:"off" help:"on: the cookie has no Max-Age and ends when the browser closes, like PHP's default session.cookie_lifetime=0 (the session still expires in the store as usual; an app's set_expiry(n) still gives that session a cookie of n seconds)"`
	Encrypt           bool          `env:"SESSIONGATE_SESSION_ENCRYPT" envDefault:"off" help:"encrypt the cookie value (AES) on top of the HMAC signature"`
	IdleTimeout       time.Duration `env:"SESSIONGATE_SESSION_IDLE_TIMEOUT" envDefault:"2h" help:"a session unused this long expires (sliding; the Redis TTL)"`
	MaxAge            time.Duration `env:"SESSIONGATE_SESSION_MAX_AGE" envDefault:"336h" help:"absolute lifetime of a session and its cookie, however active (default 14 days, like Django)"`
	Lock              string        `env:"SESSIONGATE_SESSION_LOCK" envDefault:"strict" help:"strict: requests of one session run one at a time across gateways (PHP files semantics, no lost update); merge: no waiting, per-key three-way merge, same-key conflicts last-writer-wins"`
	LockTimeout       time.Duration `env:"SESSIONGATE_SESSION_LOCK_TIMEOUT" envDefault:"10s" help:"longest wait for a busy session in strict mode (in merge mode: how long a write retries against concurrent writes), then 503 with Retry-After; the lock's Redis calls get SESSIONGATE_REDIS_TIMEOUT on top of it, so a value below Redis's round trip still takes a session nobody else holds"`
	LockLease         time.Duration `env:"SESSIONGATE_SESSION_LOCK_LEASE" envDefault:"60s" help:"how long the session lock of a crashed gateway (or one cut off from Redis) blocks its session before another request may take it; a running request renews its lock every third of this, so requests may run longer (they are bounded by SESSIONGATE_PHP_TIMEOUT and SESSIONGATE_DJANGO_TIMEOUT)"`
	RedisURL          string        `env:"SESSIONGATE_REDIS_URL" secret:"true" help:"session store; empty = in-process memory (one instance only). redis://[:pass@]host:port/db, rediss://, unix:///path.sock, redis-sentinel://, redis-cluster:// (README: Sessions)"`
	RedisPrefix       string        `env:"SESSIONGATE_REDIS_PREFIX" envDefault:"sessiongate:" help:"prefix of every Redis key and channel the gateway uses"`
	RedisTimeout      time.Duration `env:"SESSIONGATE_REDIS_TIMEOUT" envDefault:"500ms" help:"dial, read and write timeout of each Redis operation, at most 1m; and the wait for a free Redis connection; a request that needs the session gets 503 within twice it when Redis stalls"`
	RedisWaitReplicas int           `env:"SESSIONGATE_REDIS_WAIT_REPLICAS" envDefault:"0" help:"replicas that must have each session write (Redis WAIT, for at most half of SESSIONGATE_REDIS_TIMEOUT) before the request is answered; when fewer confirm it the request gets 503 with Retry-After, though the master may keep the write. Set to the number of replicas, a Sentinel failover loses no write the gateway acknowledged (with fewer, a replica not promoted may confirm a write it then drops); each write costs the replica's round trip. 0 = off: replication is asynchronous and a failover loses the writes of up to a second. Standalone and Sentinel URLs only, not Cluster"`
	RedisCoalesce     string        `env:"SESSIONGATE_REDIS_COALESCE" envDefault:"auto" help:"on: the session scripts of concurrent requests go to Redis together, one pipeline per batch (on a loopback Redis, about 15% less CPU per session request in the gateway and Redis together); a request that arrives while a batch is in flight waits for it, which costs throughput when Redis is across a network (on the same bench with Redis 0.5 ms away, 15-20% fewer requests/s); off: each goes alone; auto: on when every host of SESSIONGATE_REDIS_URL is a unix socket, localhost or a loopback address"`
	PHPPrepend        string        `env:"SESSIONGATE_PHP_PREPEND" help:"path of the prepend file (gateway php-prepend) on the php-fpm host; the gateway then sends auto_prepend_file and the session settings in PHP_VALUE on every request. Empty = install it in the pool config"`
}

// validate checks the session variables when sessions are on, or when
// SESSIONGATE_SESSIONS could not be read (unknown).
func (s *SessionConfig) validate(check func(name string, ok bool, format string, args ...any), unknown bool) {
	if !s.Enabled && !unknown {
		return
	}
	check("SESSIONGATE_SESSION_COOKIE", validCookieName(s.Cookie), "must be a non-empty cookie name (letters, digits, !#$%%&'*+-.^_`|~)")
	// Browsers refuse a cookie named __Secure-... without Secure, and
	// __Host-... without Secure or with a Domain (RFC 6265bis 4.1.3): every
	// login would vanish without a word.
	if lower := strings.ToLower(s.Cookie); strings.HasPrefix(lower, "__secure-") || strings.HasPrefix(lower, "__host-") {
		prefix := s.Cookie[:strings.IndexByte(s.Cookie, '-')+1]
		check("SESSIONGATE_SESSION_COOKIE", s.Secure, "a %s name requires SESSIONGATE_SESSION_COOKIE_SECURE=on (browsers refuse such a cookie without Secure, which plain-HTTP requests would get)", prefix)
		check("SESSIONGATE_SESSION_COOKIE", s.Domain == "" || !strings.HasPrefix(lower, "__host-"), "a %s name requires an empty SESSIONGATE_SESSION_COOKIE_DOMAIN (browsers refuse such a cookie with a Domain; __Secure- allows one)", prefix)
	}
	check("SESSIONGATE_SESSION_KEYS", len(s.Keys) > 0 || s.Dev, "is required (comma-separated secrets of at least 32 bytes each; make one with: %s); set SESSIONGATE_SESSION_DEV=on for a throwaway development key", makeKey)
	for _, k := range s.Keys {
		check("SESSIONGATE_SESSION_KEYS", len(k) >= 32, "every key must be at least 32 bytes long (make one with: %s)", makeKey)
	}
	// net/http drops an invalid Domain from Set-Cookie (logging each time),
	// which would silently make the cookie host-only.
	check("SESSIONGATE_SESSION_COOKIE_DOMAIN", s.Domain == "" || (&http.Cookie{Name: "x", Domain: s.Domain}).Valid() == nil,
		"must be a domain such as example.com or .example.com (no scheme, port, path or spaces)")
	// A fully qualified name as DNS writes it passes the check above and
	// goes out as Domain=example.com.: Chromium drops such a cookie, and
	// RFC 6265 (4.1.2.3) has other browsers ignore the attribute.
	check("SESSIONGATE_SESSION_COOKIE_DOMAIN", !strings.HasSuffix(s.Domain, "."),
		"has a trailing dot: browsers drop the cookie (Chromium) or ignore its Domain, so no session would stick; write example.com")
	check("SESSIONGATE_SESSION_COOKIE_DOMAIN", s.Domain == "" || !publicSuffix(s.Domain),
		"is a public suffix (as com, co.uk, or a hosting domain such as herokuapp.com or github.io): browsers refuse a cookie for it, so no session would stick; write the site's own domain under it, e.g. example.co.uk")
	switch strings.ToLower(s.SameSite) {
	case "lax", "strict":
	case "none":
		// Browsers drop a SameSite=None cookie that is not Secure: every
		// login would silently fail on plain HTTP.
		check("SESSIONGATE_SESSION_COOKIE_SAMESITE", s.Secure, "none requires SESSIONGATE_SESSION_COOKIE_SECURE=on (browsers refuse SameSite=None cookies without Secure)")
	default:
		check("SESSIONGATE_SESSION_COOKIE_SAMESITE", false, "must be lax, strict or none")
	}
	checkDuration(check, "SESSIONGATE_SESSION_IDLE_TIMEOUT", s.IdleTimeout)
	checkDuration(check, "SESSIONGATE_SESSION_MAX_AGE", s.MaxAge)
	check("SESSIONGATE_SESSION_LOCK", s.Lock == "strict" || s.Lock == "merge", "must be strict or merge")
	checkDuration(check, "SESSIONGATE_SESSION_LOCK_TIMEOUT", s.LockTimeout)
	checkDuration(check, "SESSIONGATE_SESSION_LOCK_LEASE", s.LockLease)
	if s.RedisURL != "" {
		msg := checkRedisURL(s.RedisURL)
		check("SESSIONGATE_REDIS_URL", msg == "", "%s", msg)
	}
	// A \r from an env file saved with CRLF line ends would silently make
	// keys that no other gateway, nor an operator's redis-cli, looks for.
	check("SESSIONGATE_REDIS_PREFIX", !strings.ContainsFunc(s.RedisPrefix, unicode.IsControl), "must not contain a control character (a \\r from an env file with CRLF line ends?)")
	check("SESSIONGATE_REDIS_PREFIX", !strings.ContainsAny(s.RedisPrefix, "{}"), "must not contain '{' or '}' (in a Redis Cluster it would become a hash tag shared by every session)")
	checkDuration(check, "SESSIONGATE_REDIS_TIMEOUT", s.RedisTimeout)
	check("SESSIONGATE_REDIS_WAIT_REPLICAS", s.RedisWaitReplicas >= 0, "must be 0 (off) or a number of replicas")
	check("SESSIONGATE_REDIS_COALESCE", s.RedisCoalesce == "auto" || s.RedisCoalesce == "on" || s.RedisCoalesce == "off", "must be auto, on or off")
	if s.RedisWaitReplicas > 0 {
		check("SESSIONGATE_REDIS_WAIT_REPLICAS", s.RedisURL != "", "needs a Redis store with replicas (SESSIONGATE_REDIS_URL); the in-process store has none")
		// go-redis sends WAIT, which has no key, to a node of its own
		// choosing in a Cluster, not to the master that took the write.
		check("SESSIONGATE_REDIS_WAIT_REPLICAS", !isClusterURL(s.RedisURL), "is not supported with a redis-cluster:// URL (WAIT would reach another node than the one that took the write); set it to 0")
	}
	check("SESSIONGATE_PHP_PREPEND", s.PHPPrepend == "" || strings.HasPrefix(s.PHPPrepend, "/"), "must be an absolute path on the php-fpm host")
	// It goes out in PHP_VALUE as auto_prepend_file=PATH, which php-fpm
	// reads with PHP's ini parser: there ';' starts a comment, these are
	// operators or quotes that make the whole PHP_VALUE unreadable (no
	// prepend, none of the session settings), "${" names an environment
	// variable and a control character ends the line.
	check("SESSIONGATE_PHP_PREPEND", !strings.ContainsAny(s.PHPPrepend, "!\"&'();=^|~") && !strings.Contains(s.PHPPrepend, "${") &&
		!strings.ContainsFunc(s.PHPPrepend, func(r rune) bool { return r < ' ' || r == 0x7f }),
		"PHP reads the path in PHP_VALUE as an ini value, which cannot hold ! \" & ' ( ) ; = ^ | ~, ${ or control characters: move the prepend file to a plainer path")
}

// Coalesce is SESSIONGATE_REDIS_COALESCE resolved for SESSIONGATE_REDIS_URL:
// auto turns it on for a Redis on this host only, where a round trip costs
// about what the CPU it saves does; across a network a request would wait
// for the batch in flight.
func (s *SessionConfig) Coalesce() bool {
	switch s.RedisCoalesce {
	case "on":
		return true
	case "off":
		return false
	}
	return redisstore.OnLoopback(s.RedisURL)
}

// CookieSameSite is SESSIONGATE_SESSION_COOKIE_SAMESITE as net/http spells it.
func (s *SessionConfig) CookieSameSite() http.SameSite {
	switch strings.ToLower(s.SameSite) {
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

func isClusterURL(raw string) bool {
	scheme, _, _ := strings.Cut(strings.ToLower(raw), "://")
	return scheme == "redis-cluster" || scheme == "rediss-cluster"
}

// checkRedisURL explains what is wrong with a SESSIONGATE_REDIS_URL, or
// returns "". It runs the store's own parser (which does not connect and
// never quotes the URL's credentials), so what passes here is what the
// gateway opens at start.
func checkRedisURL(raw string) string {
	c, err := redisstore.OpenClient(raw)
	if err != nil {
		return err.Error()
	}
	c.Close()
	return ""
}

// makeKey is the command the messages about SESSIONGATE_SESSION_KEYS give
// for a good key: 48 random bytes, 64 characters of base64, as the README
// and the example environment file make it.
const makeKey = "head -c 48 /dev/urandom | base64 -w0"

// publicSuffix reports whether domain is itself a public suffix, one under
// which every name belongs to someone else (com, co.uk, herokuapp.com):
// browsers refuse a cookie whose Domain is one, as a site could otherwise
// set cookies for all the others. A single label the list does not know
// (localhost, an intranet name) is not taken for one, nor is an IP
// address.
func publicSuffix(domain string) bool {
	d := strings.ToLower(strings.TrimPrefix(domain, "."))
	if _, err := netip.ParseAddr(d); err == nil {
		return false
	}
	suffix, icann := publicsuffix.PublicSuffix(d)
	return suffix == d && (icann || strings.Contains(d, "."))
}
