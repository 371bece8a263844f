// Package config reads sessiongate's configuration from SESSIONGATE_*
// environment variables.
//
// The variable names are the public interface of the binary: they appear in
// the README, in `gateway -h` and in deployments, so they are never renamed.
// Everything about a variable (name, default, whether it is required or
// secret, its one-line meaning) lives in the struct tags of Config, and the
// help text, the start-up summary and the error messages are all generated
// from those tags, so documentation cannot drift from behaviour.
//
// Tags understood here, on top of caarlos0/env's `env` and `envDefault`:
//
//	help:"..."    the meaning shown by `gateway -h` (required on every variable)
//	secret:"true" the value may hold a password or key: it is never echoed in
//	              an error message nor in the start-up log line
//
// Later features add their variables as a tagged sub-struct field of Config
// (e.g. `Session SessionConfig`), validated by a method called from
// (*Config).validate; nothing else changes.
package config

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/internal/httpfield"
	"github.com/sessiongate/sessiongate/internal/sockpath"
)

// Prefix starts the name of every variable sessiongate reads.
const Prefix = "SESSIONGATE_"

// IndexOff is the SESSIONGATE_INDEX value that disables the front controller.
const IndexOff = "off"

// Config is the whole configuration of one gateway process.
type Config struct {
	Listen string `env:"SESSIONGATE_LISTEN" envDefault:":8080" help:"address of the public HTTP(S) listener, host:port"`

	// ServerNames is empty by default, like a lone nginx server block that
	// answers every Host; listing the names is how nginx sites keep forged
	// Host headers out of PHP (password-reset links built from them).
	ServerNames []string `env:"SESSIONGATE_SERVER_NAMES" help:"comma-separated host names the site answers to, like nginx's server_name with a default_server that refuses the rest: example.com, *.example.com (any subdomain), or an IP address; a request for another Host gets 421 and reaches neither PHP nor Django, and PHP's SERVER_NAME is the request's host as listed (the first exact name, or SESSIONGATE_CANONICAL_NAME, for a request without Host, which Django then gets as its Host too); through SESSIONGATE_TRUSTED_PROXIES, X-Forwarded-Host and Forwarded: host= must be listed names as well; health checks by IP on this listener need the IP listed (or use the admin listener's /healthz); empty = every Host is served and SERVER_NAME is what the client sent"`
	// CanonicalName is empty by default: every listed name is served as
	// itself, as when each has its own nginx server block.
	CanonicalName string `env:"SESSIONGATE_CANONICAL_NAME" help:"the one of SESSIONGATE_SERVER_NAMES the site lives on, e.g. example.com with www.example.com listed too: a request for any other listed host name gets 301 (308 for methods other than GET and HEAD) to the same URL on this one, scheme and port kept, before PHP or Django runs, like nginx's server { server_name www.example.com; return 301 $scheme://example.com$request_uri; }; the port-80 redirect listener goes to it in one hop; a request without Host is served under it; listed IP addresses and names without a dot (container names, localhost) are served as they are (health checks, services); through SESSIONGATE_TRUSTED_PROXIES the host asked for is X-Forwarded-Host when the proxy sends one; empty = no redirect"`

	PHPFPM []string `env:"SESSIONGATE_PHP_FPM,notEmpty" help:"php-fpm addresses, comma-separated: host:port or unix:/path/to/socket; several are balanced"`

	DocumentRoot   string   `env:"SESSIONGATE_DOCUMENT_ROOT,notEmpty" help:"absolute site root as php-fpm sees it: SCRIPT_FILENAME = DOCUMENT_ROOT + script path"`
	StaticRoot     string   `env:"SESSIONGATE_STATIC_ROOT" help:"the same tree as the gateway sees it (routing and static files); must be an existing directory (default: SESSIONGATE_DOCUMENT_ROOT)"`
	Index          string   `env:"SESSIONGATE_INDEX" envDefault:"index.php" help:"front controller that receives every request no file matches, relative to the root; 'off' answers 404 instead"`
	FollowSymlinks []string `env:"SESSIONGATE_FOLLOW_SYMLINKS" envDefault:"root" help:"where symlinks inside the static root may lead: root (only inside it), any (anywhere, nginx's default), or comma-separated absolute directories besides the root, e.g. /usr/share/javascript for Debian's packaged phpMyAdmin and Roundcube, and /etc/horde as well for Horde, whose static files link out of their root"`
	NoPHPPaths     []string `env:"SESSIONGATE_NO_PHP_PATHS" help:"comma-separated URL directories where PHP never runs, e.g. /wp-content/uploads/,/uploads/: a .php file under them gets 403 and is not served either, like nginx's location ~ /uploads/.*\\.php$ { deny all; }, so a script uploaded there cannot run"`
	// InternalPaths is empty by default: an X-Accel-Redirect then sends
	// files clients may fetch anyway, and nothing is hidden from them.
	InternalPaths []string `env:"SESSIONGATE_INTERNAL_PATHS" help:"comma-separated URL directories that clients cannot request (404) and that PHP and Django send files from with an X-Accel-Redirect response header, like nginx's internal locations: /dir/ holds files under SESSIONGATE_STATIC_ROOT (e.g. /wp-content/uploads/woocommerce_uploads/), /dir/=/abs/path files of another directory (an alias, e.g. /protected/=/srv/private for django-sendfile2); an X-Accel-Redirect to any other URL sends the static file at that URL; .php files and dotfiles are never sent"`
	MaxBody       ByteSize `env:"SESSIONGATE_MAX_BODY" envDefault:"1m" help:"largest request body, units k/m/g like nginx's client_max_body_size; larger bodies get 413; 0 = unlimited"`
	// RequestBuffering is on by default, like nginx's
	// fastcgi_request_buffering: a slow upload must not hold a php-fpm
	// worker, a gunicorn thread or the session lock while it trickles in.
	RequestBuffering bool `env:"SESSIONGATE_REQUEST_BUFFERING" envDefault:"on" help:"on: read every request body whole (memory, then a temp file) before PHP or Django gets it, like nginx's fastcgi_request_buffering and proxy_request_buffering on: a slow upload holds no php-fpm worker, gunicorn thread or session lock, and an upload the client abandons never reaches the app; off: a body of known length over 64 KiB streams to the app as it arrives (bodies up to 64 KiB and chunked ones are always read whole first), and a client that goes away mid-body leaves the app a body cut short, which php-fpm cannot tell from a whole one (PHP runs the script on it); Django behind http:// gets the connection reset and raises UnreadablePostError, behind a unix: socket it gets the part"`
	// ResponseBuffering is on by default, like nginx's fastcgi_buffering:
	// slow clients must not be able to pin every php-fpm worker.
	ResponseBuffering bool `env:"SESSIONGATE_RESPONSE_BUFFERING" envDefault:"on" help:"on: a PHP response still coming when its headers arrive, or a Django one over 64 KiB or streamed, is read ahead of the client into memory (64 KiB), then a temp file (up to 1 GiB per response), so a slow client holds no php-fpm worker, gunicorn thread or session lock, like nginx's fastcgi_buffering and proxy_buffering on; a client that keeps up still gets the output as the app flushes it; off: the app waits for the client"`

	// ResponseBufferingLimit bounds all read-aheads together: the per-
	// response 1 GiB alone lets a few clients that open many large
	// downloads and read none fill the temp directory.
	ResponseBufferingLimit ByteSize `env:"SESSIONGATE_RESPONSE_BUFFERING_LIMIT" envDefault:"1g" help:"most bytes all responses read ahead of their clients hold together (memory and temp files, units k/m/g; at least 64k); once reached, a response the app is still sending goes at its client's pace (the php-fpm worker or gunicorn thread waits, as behind nginx past fastcgi_max_temp_file_size) and a warning is logged at most once a minute; keep it well under the temp directory's free space"`

	// Compress is on by default: a PHP shop moving from nginx had gzip on
	// for its text types, and pages would otherwise go out several times
	// larger.
	Compress bool `env:"SESSIONGATE_COMPRESS" envDefault:"on" help:"on: gzip text responses (HTML, CSS, JavaScript, JSON, XML, SVG, ...) of 256 bytes or more, from PHP, Django and static files, for clients that accept it, like nginx's gzip on with gzip_types (level 1, a random-length gzip header against BREACH); static files are compressed once and kept (SESSIONGATE_COMPRESS_CACHE), or sent as a build step's name.br/name.gz under SESSIONGATE_PRECOMPRESSED; a response that has a Content-Encoding or Cache-Control: no-transform is left alone; off: never"`

	// Precompressed is empty by default: a name.gz next to a file could
	// also be an upload, sent in place of the file the app checked.
	Precompressed []string `env:"SESSIONGATE_PRECOMPRESSED" help:"comma-separated URL directories whose static files of the types SESSIONGATE_COMPRESS compresses may be sent as the name.br or name.gz a build step left next to them (when not older than the file, whatever its size), like nginx's gzip_static and brotli_static in those locations, e.g. /static/,/build/; / for the whole site; never under SESSIONGATE_NO_PHP_PATHS; list no directory users upload to: an uploaded x.svg.gz would be sent as x.svg"`
	CompressCache ByteSize `env:"SESSIONGATE_COMPRESS_CACHE" envDefault:"32m" help:"memory for gzipped copies of static files, units k/m/g: a file is compressed once (level 6) and then sent from memory until it changes or is least recently used; files over an eighth of it, and every static file when 0, go out uncompressed (with sendfile, ranges and their length) unless SESSIONGATE_PRECOMPRESSED has a copy"`

	StaticMaxAge time.Duration `env:"SESSIONGATE_STATIC_MAX_AGE" envDefault:"0" help:"Cache-Control: public, max-age for static files other than HTML pages (which get no-cache), like nginx's expires, in whole seconds, e.g. 720h for 30 days (Go durations: no d unit): browsers reuse them that long without asking, so give assets versioned names (app.3f2a9c.js) or a new release reaches visitors only after it; 0 = no Cache-Control: browsers revalidate with ETag and Last-Modified as they see fit"`

	PHPMaxConns     int           `env:"SESSIONGATE_PHP_MAX_CONNS" envDefault:"8" help:"most connections kept open to each php-fpm backend; keep it <= pm.max_children; a request finding them all busy waits for one, and that wait counts against its SESSIONGATE_PHP_TIMEOUT (504 once that is used up), as the wait in php-fpm's listen queue counts against nginx's fastcgi_read_timeout"`
	PHPDialTimeout  time.Duration `env:"SESSIONGATE_PHP_DIAL_TIMEOUT" envDefault:"3s" help:"time to connect to php-fpm before 504, like fastcgi_connect_timeout (a refused connection is 502 at once)"`
	PHPTimeout      time.Duration `env:"SESSIONGATE_PHP_TIMEOUT" envDefault:"60s" help:"longest wait for the next bytes from php-fpm once the request is sent (for the first ones, less the wait for a free connection under SESSIONGATE_PHP_MAX_CONNS; a body still being sent is bounded by SESSIONGATE_PHP_WRITE_TIMEOUT instead) before 504, like fastcgi_read_timeout; 0 = none"`
	PHPWriteTimeout time.Duration `env:"SESSIONGATE_PHP_WRITE_TIMEOUT" envDefault:"60s" help:"longest wait while sending a request to php-fpm, like fastcgi_send_timeout; 0 = none"`
	// On by default: a php-fpm can hang for good while the site is quiet
	// (a worker killed inside its scoreboard lock, docs/design.md), and
	// without a check the next request finds out by waiting out
	// SESSIONGATE_PHP_TIMEOUT, with only /readyz pollers to find it first.
	PHPCheckInterval time.Duration `env:"SESSIONGATE_PHP_CHECK_INTERVAL" envDefault:"10s" help:"how often each php-fpm backend in rotation that answered nothing for that long is asked to answer a FastCGI management record (FCGI_GET_VALUES: no script runs, nothing in php-fpm's access log), as /readyz asks; one whose connection is accepted and whose workers answer nothing within 2 s, while it begins no answer to a request either (a stopped or hung php-fpm), leaves rotation until it answers again, before a request waits SESSIONGATE_PHP_TIMEOUT on it; the check takes one of SESSIONGATE_PHP_MAX_CONNS, closing an idle connection first; a backend that answers requests is not checked; 0 = off (then only /readyz checks)"`

	ReadHeaderTimeout time.Duration `env:"SESSIONGATE_READ_HEADER_TIMEOUT" envDefault:"10s" help:"time a client has to send its request headers (slowloris defence); must be > 0"`
	ReadTimeout       time.Duration `env:"SESSIONGATE_READ_TIMEOUT" envDefault:"60s" help:"longest wait for the next bytes of a request body before 408, like client_body_timeout (a slow upload that keeps coming is read whole; headers are bounded by SESSIONGATE_READ_HEADER_TIMEOUT); 0 = none"`
	// WriteTimeout defaults to none because it bounds the whole response:
	// a long download, a streamed PHP response or a slow-but-live client
	// would be cut in the middle. Upstream silence is bounded by
	// SESSIONGATE_PHP_TIMEOUT instead.
	WriteTimeout time.Duration `env:"SESSIONGATE_WRITE_TIMEOUT" envDefault:"0" help:"longest time to write a whole response, from its first byte (the time PHP or Django takes to start it is SESSIONGATE_PHP_TIMEOUT's and SESSIONGATE_DJANGO_TIMEOUT's); 0 = none, because responses stream (downloads, flushed PHP output) and PHP silence is bounded by SESSIONGATE_PHP_TIMEOUT"`
	// SendTimeout is on by default: without it a client that stays
	// connected but stops reading holds its php-fpm connection (a worker)
	// or gunicorn connection for ever, and a few such clients starve the
	// pool; stalled downloads hold a connection, a goroutine and an open
	// file each, enough of them run the gateway out of file descriptors.
	SendTimeout     time.Duration `env:"SESSIONGATE_SEND_TIMEOUT" envDefault:"60s" help:"longest a write to a client may make no progress before the response is cut (logged with the status it had), like nginx's send_timeout, so a client that stops reading frees its php-fpm or gunicorn connection; applies while SESSIONGATE_WRITE_TIMEOUT is 0 (when set, that bounds the whole response instead); 0 = none"`
	IdleTimeout     time.Duration `env:"SESSIONGATE_IDLE_TIMEOUT" envDefault:"75s" help:"how long an idle keep-alive client connection stays open, like keepalive_timeout; 0 = keep-alive off, as keepalive_timeout 0: each response says Connection: close and its connection closes (HTTP/2: after its last open stream)"`
	ShutdownTimeout time.Duration `env:"SESSIONGATE_SHUTDOWN_TIMEOUT" envDefault:"30s" help:"on SIGTERM, SIGINT or SIGQUIT, how long in-flight requests may run; then their connections are closed (logged as 503, cut at shutdown) and their handlers get up to 5s more (3 times SESSIONGATE_REDIS_TIMEOUT when that is longer) to release session locks before the process exits; 0 cuts them at once"`
	MaxHeaderBytes  ByteSize      `env:"SESSIONGATE_MAX_HEADER_BYTES" envDefault:"64k" help:"largest request line plus headers, units k/m/g (twice what nginx's default large_client_header_buffers holds; each client still sending its headers may hold a few times this much memory); an HTTP/2 request is measured as HTTP/1.1 would carry it"`

	// RateLimitSpecs is empty by default: nginx limits nothing unless told.
	RateLimitSpecs []string `env:"SESSIONGATE_RATE_LIMITS" help:"comma-separated limits of requests per client address (its /64 for IPv6, the IPv4 host for a NAT64, 6to4 or Teredo address; after SESSIONGATE_TRUSTED_PROXIES), like nginx's limit_req with nodelay: PATH RATE [burst=N], e.g. /wp-login.php 10r/m burst=5,/xmlrpc.php 1r/s; a path ending in / covers everything under it; a client may send burst+1 requests at once, then one per 1/RATE, and what comes faster gets 429 with Retry-After before PHP or Django runs; each gateway counts on its own"`
	// ErrorPageSpecs is empty by default: errors are nginx-like one-line
	// plain-text pages.
	ErrorPageSpecs []string `env:"SESSIONGATE_ERROR_PAGES" help:"comma-separated CODES=URL entries, like nginx's error_page: the site's own page for the errors the gateway answers itself (php-fpm or Django down 502, timeouts 504, a busy session or an unavailable Redis 503, and 400 401 403 404 405 408 413 414 421 429 431 500), e.g. 502 503 504=/50x.html,404=/404.html; URL names a static file under SESSIONGATE_STATIC_ROOT, or in a SESSIONGATE_INTERNAL_PATHS directory to keep it from direct requests; the status code stays; the error responses PHP and Django make themselves pass unchanged"`
	// RestrictedPathSpecs is empty by default: nginx lets every address in
	// unless told.
	RestrictedPathSpecs []string `env:"SESSIONGATE_RESTRICTED_PATHS" help:"comma-separated URL paths only some client addresses may request, like nginx's allow lines followed by deny all: PATH ADDRESS..., with IPs or CIDRs after SESSIONGATE_TRUSTED_PROXIES, or PATH none for nobody (deny all), e.g. /phpmyadmin/ 10.0.0.0/8 192.168.1.7,/xmlrpc.php none; a path ending in / covers everything under it, static files included, and one without covers that exact URL only (no patterns); an exact path wins over a directory, a longer directory over a shorter; an entry on a script also covers the URLs that run it, and the path after a script (/index.php/admin/), or a query that starts with / after it (CodeIgniter's /?/admin/), counts like the URL, and so does WordPress's rest_route=R (in the query or a POST form body, for any PHP script), read as /wp-json/R; other clients get 403 before PHP or Django runs"`
	// BasicAuthSpecs is empty by default: nginx asks for no password unless
	// told.
	BasicAuthSpecs []string `env:"SESSIONGATE_BASIC_AUTH" help:"comma-separated URL paths that ask for a user name and password, like nginx's auth_basic with auth_basic_user_file: PATH FILE, e.g. / /etc/sessiongate/staging.htpasswd for a staging site, /wp-admin/ /etc/sessiongate/admins.htpasswd; FILE is what htpasswd writes (bcrypt from htpasswd -B, htpasswd's default $apr1$, or {SHA}), read again when it changes; paths match as in SESSIONGATE_RESTRICTED_PATHS, and an entry there for the same path must be satisfied too; a more specific entry of either list without a password (e.g. /webhooks/ 0.0.0.0/0 ::/0) opens its part; PHP gets the user as REMOTE_USER"`
	TrustedProxies Prefixes `env:"SESSIONGATE_TRUSTED_PROXIES" help:"comma-separated CIDRs or IPs of proxies in front of the gateway (default: none); only theirs are believed: X-Forwarded-For (the client address), X-Forwarded-Proto (HTTPS), and X-Forwarded-Host or Forwarded: host= (the host asked for, see SESSIONGATE_SERVER_NAMES: of a list, the entry the outermost trusted proxy wrote, one per trusted proxy from the right as X-Forwarded-For counts them, never a client's in front of it); only their Forwarded, X-Forwarded-* and X-Real-IP headers reach PHP and Django (Django's X-Forwarded-For, -Proto and -Host are the gateway's own: the client address, its scheme and the host it asked for, a trusted proxy's X-Forwarded-Host or Forwarded: host= when it sends one)"`

	AdminListen string `env:"SESSIONGATE_ADMIN_LISTEN" help:"address of the admin listener serving /healthz, /readyz and /metrics (Prometheus), host:port; empty = no admin listener"`
	// AdminPprof is off by default: a profile exposes code paths and costs
	// CPU while it runs, so it is something an operator turns on to look at
	// a problem (or bench/run.sh with BENCH_PROFILE=1), on a listener that
	// only operators reach.
	AdminPprof bool `env:"SESSIONGATE_ADMIN_PPROF" envDefault:"off" help:"serve Go's profiler (/debug/pprof/) on the admin listener: on or off"`

	LogLevel  string `env:"SESSIONGATE_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat string `env:"SESSIONGATE_LOG_FORMAT" envDefault:"json" help:"json (one object per line) or text"`
	AccessLog bool   `env:"SESSIONGATE_ACCESS_LOG" envDefault:"on" help:"on: one log line per request, at info level, a failed one (a client gone, a write timeout, an error, a refusal: 400 for a malformed request, 401 for a wrong password, 403, 413, 414, 421, 429, 431) at warn, and one php-fpm or Django could not be reached for or did not answer in time (502, 504) at error, as nginx's error_log has them, so SESSIONGATE_LOG_LEVEL=warn keeps only the failed ones and error those of the backends; off: only the failed ones. A 404, a 405, a 401 asking for a password and what net/http refuses before the gateway reads the request are answers, not failures (README: access_log)"`

	TLSCert string `env:"SESSIONGATE_TLS_CERT" help:"PEM certificate (chain) file; with SESSIONGATE_TLS_KEY the public listener speaks HTTPS; set both or neither"`
	TLSKey  string `env:"SESSIONGATE_TLS_KEY" help:"PEM private key file for SESSIONGATE_TLS_CERT, not encrypted (there is no passphrase setting)"`
	// HSTS is off by default: browsers hold on to it for max-age, so
	// turning it on is the operator's call, once every host it covers
	// speaks HTTPS.
	HSTS string `env:"SESSIONGATE_HSTS" help:"Strict-Transport-Security value sent on every HTTPS response (TLS here, or X-Forwarded-Proto: https from SESSIONGATE_TRUSTED_PROXIES), replacing any the app sends, like nginx's add_header Strict-Transport-Security \"...\" always; e.g. max-age=63072000; includeSubDomains; empty = none (an app's own header goes out as it is)"`
	// RedirectSpecs is empty by default: nginx moves no URL unless told.
	RedirectSpecs []string `env:"SESSIONGATE_REDIRECTS" help:"comma-separated URLs that moved, like nginx's return 301 in a location or rewrite ... permanent: FROM TO [CODE], e.g. /old-page /new-page,/blog/ https://blog.example.com/,/promo /sale 302; FROM ending in / covers everything under it and the directory without its slash, and when TO ends in / too, the rest of the path follows (/blog/2024/x to https://blog.example.com/2024/x), else every URL under it goes to TO; the query string follows, after TO's own, unless TO ends in ? (/promo /sale? drops it); a comma in TO is written %2C; CODE is 301 (the default; 308 for methods other than GET and HEAD), 302, 303, 307 or 308; answered before PHP or Django runs, and before SESSIONGATE_RESTRICTED_PATHS and SESSIONGATE_RATE_LIMITS apply, as nginx's rewrite phase comes first; loops, and chains longer than browsers follow, are refused at start"`
	// ResponseHeaderSpecs are lines, not comma-separated entries: header
	// values hold commas (Permissions-Policy, Link, CSP lists).
	ResponseHeaderSpecs Lines `env:"SESSIONGATE_RESPONSE_HEADERS" help:"headers added to the site's responses, one per line (a YAML block, $'...' in a shell, a single-quoted value over several lines in a systemd EnvironmentFile), like nginx's add_header ... always: [PATH ]Name: value, e.g. the two lines X-Frame-Options: SAMEORIGIN and X-Content-Type-Options: nosniff, or /fonts/ Access-Control-Allow-Origin: *; every response of SESSIONGATE_LISTEN gets them (not the port-80 redirect listener's), static files, PHP, Django, redirects and the gateway's error pages alike, unless it already has that header (the app's own value is kept, never doubled); a path ending in / covers everything under it, one without covers that exact URL, and a line also covers the script that runs for a URL, the route after the front controller (/index.php/admin/ is /admin/) and the file an X-Accel-Redirect sends; for each header the most specific path decides, and an empty value (/embed/ X-Frame-Options:) sends none there; headers the gateway or the app must set (caching, cookies, Content-Length and the other message framing, Content-Type, Content-Disposition, Strict-Transport-Security: see SESSIONGATE_HSTS) are refused"`
	// HideHeaders is empty by default, as nginx passes X-Powered-By on.
	HideHeaders []string `env:"SESSIONGATE_HIDE_HEADERS" help:"comma-separated response headers removed from every response of the site, PHP's, Django's (their 103 and 101 included) and the gateway's own, like nginx's fastcgi_hide_header and proxy_hide_header, e.g. X-Powered-By; with SESSIONGATE_RESPONSE_HEADERS, hiding a header replaces the app's value with the gateway's; headers the gateway relies on (caching, cookies, Content-Length and the other message framing, Vary, Allow) are refused"`
	// HTTPRedirectListen replaces nginx's port-80 server block: without a
	// listener there, a visitor typing the bare domain is refused and
	// certbot's --webroot renewal (ACME HTTP-01, always on port 80) fails.
	HTTPRedirectListen string `env:"SESSIONGATE_HTTP_REDIRECT_LISTEN" help:"address of a plain-HTTP listener, host:port, e.g. :80, that redirects every request to https:// on the same host (301 for GET and HEAD, 308 for other methods), except ACME HTTP-01 challenges, which it serves from SESSIONGATE_STATIC_ROOT/.well-known/acme-challenge/ for certbot --webroot; needs SESSIONGATE_TLS_CERT; empty = none"`

	Session SessionConfig

	Django DjangoConfig

	// Warnings lists non-fatal findings of Load (an unknown SESSIONGATE_
	// variable, most likely a typo; an internal directory that is public
	// too), to be logged at start.
	Warnings []string `env:"-"`
}

// SymlinkTargets is SESSIONGATE_FOLLOW_SYMLINKS for the router: anywhere,
// or the directories besides the root that symlinks may lead into.
func (c *Config) SymlinkTargets() (anywhere bool, dirs []string) {
	if len(c.FollowSymlinks) == 1 {
		switch c.FollowSymlinks[0] {
		case "root":
			return false, nil
		case "any":
			return true, nil
		}
	}
	return false, c.FollowSymlinks
}

// IndexScript returns the front controller as a URL path ("/index.php"), or
// "" when the front controller is off.
func (c *Config) IndexScript() string {
	if c.Index == IndexOff || c.Index == "" {
		return ""
	}
	return "/" + strings.TrimPrefix(c.Index, "/")
}

// TLS reports whether the public listener serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCert != "" }

// Load reads the configuration from environ (os.Environ() format,
// "NAME=value"). It returns one *Error naming every bad variable, both values
// that do not parse and values that parse but cannot work together.
func Load(environ []string) (*Config, error) {
	var c Config
	env := EnvironMap(environ)
	errs := parse(&c, env)
	if len(errs) == 0 || !errs.has("SESSIONGATE_DOCUMENT_ROOT") {
		// Only a sound DOCUMENT_ROOT can serve as STATIC_ROOT's default.
		if c.StaticRoot == "" {
			c.StaticRoot = c.DocumentRoot
		}
	}
	c.foldKeywords()
	errs = append(errs, c.validate(errs, env)...)
	if len(errs) > 0 {
		return nil, &Error{Problems: finish(&c, errs, env), Unknown: append(unknownVariables(&c, env), quotedValues(&c, env)...)}
	}
	c.Warnings = append(unknownVariables(&c, env), quotedValues(&c, env)...)
	c.Warnings = append(c.Warnings, c.internalPathWarnings()...)
	c.Warnings = append(c.Warnings, c.hostBitsWarnings(env)...)
	if c.Session.Enabled {
		if _, outside := c.cookieDomainHosts(); len(outside) > 0 {
			c.Warnings = append(c.Warnings, fmt.Sprintf("SESSIONGATE_SESSION_COOKIE_DOMAIN=%s does not cover %s of SESSIONGATE_SERVER_NAMES: browsers ignore the session cookie there, so visitors never keep a session on it (SESSIONGATE_CANONICAL_NAME would redirect them to the site's name)",
				c.Session.Domain, strings.Join(outside, ", ")))
		}
	}
	return &c, nil
}

// foldKeywords reads keyword values in any case and without surrounding
// spaces, as booleans are read, so that everything after Load compares
// them as written in the help. SESSIONGATE_INDEX is otherwise a file name,
// which keeps its case; folding its "off" is safe because a front
// controller must end in .php, so no file can be named OFF there. The
// directories of SESSIONGATE_FOLLOW_SYMLINKS keep theirs too: they are
// absolute, and never the keyword.
func (c *Config) foldKeywords() {
	fold := func(v *string, keywords ...string) {
		for _, k := range keywords {
			if strings.EqualFold(strings.TrimSpace(*v), k) {
				*v = k
				return
			}
		}
	}
	fold(&c.LogLevel, "debug", "info", "warn", "error")
	fold(&c.LogFormat, "json", "text")
	fold(&c.Index, IndexOff)
	for i := range c.FollowSymlinks {
		fold(&c.FollowSymlinks[i], "root", "any")
	}
	fold(&c.Session.SameSite, "lax", "strict", "none")
	fold(&c.Session.Lock, "strict", "merge")
	fold(&c.Session.RedisCoalesce, "auto", "on", "off")
}

// validate checks what parsing cannot: values that must exist on disk, agree
// with each other or belong to a set. Variables that already failed to parse
// (in bad) are not checked again, so each appears once in the error.
func (c *Config) validate(bad Problems, env map[string]string) Problems {
	var p Problems
	check := func(name string, ok bool, format string, args ...any) {
		if !ok && !bad.has(name) && !p.has(name) {
			p = append(p, Problem{Var: name, Msg: fmt.Sprintf(format, args...)})
		}
	}

	checkListen := func(name, addr string) {
		if addr == "" {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		check(name, err == nil && (host == "" || addressHost(host)) && validPort(port, true), "must be host:port or :port, e.g. :8080 or 127.0.0.1:8080")
	}
	checkListen("SESSIONGATE_LISTEN", c.Listen)
	check("SESSIONGATE_LISTEN", c.Listen != "", "must not be empty")
	checkListen("SESSIONGATE_ADMIN_LISTEN", c.AdminListen)
	check("SESSIONGATE_ADMIN_LISTEN", c.AdminListen == "" || !sameListener(c.Listen, c.AdminListen), "must differ from SESSIONGATE_LISTEN: same port on the same address (a host name counts as the address it resolves to) or a wildcard host")
	check("SESSIONGATE_ADMIN_PPROF", !c.AdminPprof || c.AdminListen != "", "needs SESSIONGATE_ADMIN_LISTEN")
	if c.HTTPRedirectListen != "" {
		const name = "SESSIONGATE_HTTP_REDIRECT_LISTEN"
		checkListen(name, c.HTTPRedirectListen)
		// Only TLS gives it somewhere to redirect to; without it the
		// redirect would send visitors to a port that speaks plain HTTP.
		check(name, c.TLSCert != "", "needs SESSIONGATE_TLS_CERT: it redirects to HTTPS")
		check(name, !sameListener(c.Listen, c.HTTPRedirectListen), "must differ from SESSIONGATE_LISTEN: same port on the same address (a host name counts as the address it resolves to) or a wildcard host")
		check(name, c.AdminListen == "" || !sameListener(c.AdminListen, c.HTTPRedirectListen), "must differ from SESSIONGATE_ADMIN_LISTEN: same port on the same address (a host name counts as the address it resolves to) or a wildcard host")
	}

	if c.HSTS != "" {
		check("SESSIONGATE_HSTS", c.TLSCert != "" || len(c.TrustedProxies) > 0,
			"needs SESSIONGATE_TLS_CERT, or SESSIONGATE_TRUSTED_PROXIES for a TLS proxy in front: it is only sent on HTTPS responses")
		if msg := checkHSTS(c.HSTS); msg != "" {
			check("SESSIONGATE_HSTS", false, "%s", msg)
		}
	}

	seen := map[string]bool{}
	for _, a := range c.PHPFPM {
		if msg := checkBackend(a); msg != "" {
			check("SESSIONGATE_PHP_FPM", false, "%s", msg)
		} else if own := c.ownListener(a, bad); own != "" && !strings.HasPrefix(a, "unix:") {
			check("SESSIONGATE_PHP_FPM", false, "%q is %s, the gateway itself: give the address php-fpm's pool listens on (its listen = line)", a, own)
		}
		key := backendKey(a)
		check("SESSIONGATE_PHP_FPM", !seen[key], "%q is listed twice", a)
		seen[key] = true
	}
	check("SESSIONGATE_PHP_FPM", len(c.PHPFPM) <= 64, "at most 64 backends")

	if !bad.has("SESSIONGATE_DOCUMENT_ROOT") {
		check("SESSIONGATE_DOCUMENT_ROOT", filepath.IsAbs(c.DocumentRoot), "must be an absolute path")
		// php-fpm gets it as it is (SCRIPT_FILENAME = it + the script),
		// unchecked when SESSIONGATE_STATIC_ROOT names the gateway's tree.
		check("SESSIONGATE_DOCUMENT_ROOT", strings.TrimSpace(c.DocumentRoot) == c.DocumentRoot, "has spaces or control characters around it, which php-fpm would take as part of the path")
	}
	if c.StaticRoot != "" && !bad.has("SESSIONGATE_STATIC_ROOT") {
		name := "SESSIONGATE_STATIC_ROOT"
		if env[name] == "" {
			// The default came from DOCUMENT_ROOT: report it under that name,
			// the variable the operator actually wrote.
			name = "SESSIONGATE_DOCUMENT_ROOT"
		}
		if !filepath.IsAbs(c.StaticRoot) {
			check(name, false, "must be an absolute path")
		} else if fi, err := os.Stat(c.StaticRoot); err != nil {
			check(name, false, "%s", describeFSError(err))
		} else {
			check(name, fi.IsDir(), "is not a directory")
			// Every file of the host the gateway may read would be
			// served: a variable that expanded to nothing ($SITE/)?
			check(name, resolved(c.StaticRoot) != "/", "is the filesystem root: every file the gateway can read (/etc/passwd...) would be served")
			if fi.IsDir() {
				if why := openableDir(c.StaticRoot); why != "" {
					check(name, false, "%s", why)
				}
			}
		}
	}

	if c.Index != IndexOff {
		idx := strings.TrimPrefix(c.Index, "/")
		clean := path.Clean(idx)
		check("SESSIONGATE_INDEX", idx != "" && clean == idx && !path.IsAbs(idx) && !strings.HasPrefix(clean, "../") && clean != ".." && !hasDotSegment(clean) && strings.HasSuffix(clean, ".php"),
			"must be 'off' or a clean relative path to a .php file without dot segments, e.g. index.php or public/app.php")
		// The router would look for the file with them, find none, and
		// answer 404 to every URL the front controller should serve.
		check("SESSIONGATE_INDEX", strings.TrimSpace(c.Index) == c.Index, "has spaces or control characters around it")
	}

	if oneWord := len(c.FollowSymlinks) == 1 && (c.FollowSymlinks[0] == "root" || c.FollowSymlinks[0] == "any"); !oneWord {
		for _, d := range c.FollowSymlinks {
			if d == "root" || d == "any" {
				check("SESSIONGATE_FOLLOW_SYMLINKS", false, "%q cannot be combined with directories: use root, any, or a list of directories", d)
			} else if !filepath.IsAbs(d) {
				check("SESSIONGATE_FOLLOW_SYMLINKS", false, "%q: must be root, any or absolute directories", d)
			} else if fi, err := os.Stat(d); err != nil {
				check("SESSIONGATE_FOLLOW_SYMLINKS", false, "%q: %s", d, describeFSError(err))
			} else {
				check("SESSIONGATE_FOLLOW_SYMLINKS", fi.IsDir(), "%q is not a directory", d)
			}
		}
	}

	for _, p := range c.Precompressed {
		check("SESSIONGATE_PRECOMPRESSED", urlPrefixOK(p),
			urlPrefixRule("directory", "/static/"), p)
	}
	// Off, nothing goes out compressed, the build step's copies included.
	check("SESSIONGATE_PRECOMPRESSED", len(c.Precompressed) == 0 || c.Compress || bad.has("SESSIONGATE_COMPRESS"),
		"needs SESSIONGATE_COMPRESS=on: with it off no response goes out compressed, the copies included (SESSIONGATE_COMPRESS_CACHE=0 keeps the gateway from compressing static files itself)")

	seenNoPHP := map[string]bool{}
	for _, p := range c.NoPHPPaths {
		dir := dirPrefix(p)
		check("SESSIONGATE_NO_PHP_PATHS", urlPrefixOK(p),
			urlPrefixRule("directory", "/wp-content/uploads/"), p)
		check("SESSIONGATE_NO_PHP_PATHS", dir != "/", "\"/\" would keep every script from running")
		check("SESSIONGATE_NO_PHP_PATHS", !seenNoPHP[dir], "%q is listed twice", p)
		seenNoPHP[dir] = true
		if idx := c.IndexScript(); idx != "" && urlPrefixOK(p) && dir != "/" {
			check("SESSIONGATE_NO_PHP_PATHS", !strings.HasPrefix(idx, dir), "%q holds the front controller %s (SESSIONGATE_INDEX), which would then never run", p, idx)
		}
	}

	c.checkInternalPaths(check)
	c.checkServerNames(check)
	c.checkCanonicalName(check)
	c.checkRateLimits(check)
	c.checkErrorPages(check)
	c.checkRestrictedPaths(check)
	c.checkBasicAuth(check)
	c.checkResponseHeaders(check)
	c.checkRedirects(check)

	// max-age counts whole seconds: 500ms would go out as max-age=0,
	// revalidation on every use, the opposite of what was asked.
	check("SESSIONGATE_STATIC_MAX_AGE", c.StaticMaxAge%time.Second == 0, "must be 0 or a whole number of seconds (Cache-Control's max-age counts seconds), e.g. 3600s or 720h")
	check("SESSIONGATE_RESPONSE_BUFFERING_LIMIT", c.ResponseBufferingLimit >= 64<<10, "must be at least 64k (SESSIONGATE_RESPONSE_BUFFERING=off turns read-ahead off)")
	check("SESSIONGATE_PHP_MAX_CONNS", c.PHPMaxConns >= 1, "must be at least 1")
	checkDuration(check, "SESSIONGATE_PHP_DIAL_TIMEOUT", c.PHPDialTimeout)
	checkDuration(check, "SESSIONGATE_PHP_CHECK_INTERVAL", c.PHPCheckInterval)
	checkDuration(check, "SESSIONGATE_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout)
	check("SESSIONGATE_IDLE_TIMEOUT", c.IdleTimeout >= 0, "must be >= 0 (0 turns keep-alive off)")
	check("SESSIONGATE_SEND_TIMEOUT", c.SendTimeout >= 0, "must be >= 0 (0 = none)")
	check("SESSIONGATE_MAX_HEADER_BYTES", c.MaxHeaderBytes >= 4096 && c.MaxHeaderBytes <= 64<<20, "must be between 4k and 64m")

	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		check("SESSIONGATE_LOG_LEVEL", false, "must be debug, info, warn or error")
	}
	switch strings.ToLower(c.LogFormat) {
	case "json", "text":
	default:
		check("SESSIONGATE_LOG_FORMAT", false, "must be json or text")
	}

	// An unreadable SESSIONGATE_SESSIONS must not hide the session
	// variables' own problems: check them as if sessions were on.
	c.Session.validate(check, bad.has("SESSIONGATE_SESSIONS"))
	if c.Session.Enabled && !bad.has("SESSIONGATE_SERVER_NAMES") && !p.has("SESSIONGATE_SERVER_NAMES") && !p.has("SESSIONGATE_CANONICAL_NAME") {
		if hosts, outside := c.cookieDomainHosts(); len(hosts) > 0 && len(outside) == len(hosts) {
			check("SESSIONGATE_SESSION_COOKIE_DOMAIN", false, "no name of SESSIONGATE_SERVER_NAMES (or SESSIONGATE_CANONICAL_NAME) is under it, and browsers ignore a cookie whose Domain the site's host is not under: no session would ever stick")
		}
	}
	c.Django.validate(check)
	for _, u := range c.Django.URL {
		if CheckDjangoURL(u) != "" || strings.HasPrefix(u, "unix:") {
			continue
		}
		if pu, err := url.Parse(u); err == nil {
			if own := c.ownListener(pu.Host, bad); own != "" {
				check("SESSIONGATE_DJANGO_URL", false, "%q is %s, the gateway itself: Django requests would be sent back to the gateway (on SESSIONGATE_LISTEN again and again until it runs out of connections); give gunicorn's --bind address", u, own)
			}
		}
	}

	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		check("SESSIONGATE_TLS_KEY", false, "must be set when SESSIONGATE_TLS_CERT is (set both or neither)")
	case c.TLSCert == "" && c.TLSKey != "":
		check("SESSIONGATE_TLS_CERT", false, "must be set when SESSIONGATE_TLS_KEY is (set both or neither)")
	case c.TLSCert != "":
		// Each file is read on its own first, so that a missing or
		// unreadable key is reported under SESSIONGATE_TLS_KEY, and both
		// variables when both paths are wrong, not just the certificate.
		certPEM, certErr := os.ReadFile(c.TLSCert)
		check("SESSIONGATE_TLS_CERT", certErr == nil, "cannot read the certificate: %s", describeFSErrorOrNil(certErr))
		keyPEM, keyErr := os.ReadFile(c.TLSKey)
		check("SESSIONGATE_TLS_KEY", keyErr == nil, "cannot read the key: %s", describeFSErrorOrNil(keyErr))
		switch {
		case keyErr == nil && hasPEMBlock(keyPEM, encryptedKeyBlock):
			// crypto/tls says "failed to parse private key", which
			// the check below pinned on both files.
			check("SESSIONGATE_TLS_KEY", false, "the private key is encrypted (it needs a passphrase, which the gateway takes none of): name a decrypted copy, readable by the gateway's user only (openssl pkey -in %s -out key.pem)", c.TLSKey)
		case certErr == nil && keyErr == nil:
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				// crypto/tls errors name PEM block types, never key bytes,
				// but not the file at fault: name the variable whose file
				// lacks its part (a key path pointing at the certificate
				// is the key's mistake), or both when each file has its
				// part and they do not belong together.
				certOK := hasPEMBlock(certPEM, func(b *pem.Block) bool { return b.Type == "CERTIFICATE" })
				keyOK := hasPEMBlock(keyPEM, func(b *pem.Block) bool {
					return b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY")
				})
				switch n := keyCertPosition(certPEM, keyPEM); {
				case certOK && keyOK && n > 1:
					// The chain first (cat chain.pem cert.pem): "private
					// key does not match" would send the operator to a
					// key that is right.
					check("SESSIONGATE_TLS_CERT", false, "the certificate for SESSIONGATE_TLS_KEY is number %d in the file: the site's certificate must come first, then the chain (certbot's fullchain.pem, or cat cert.pem chain.pem)", n)
				case certOK && keyOK:
					certOK, keyOK = false, false
				}
				check("SESSIONGATE_TLS_CERT", certOK, "cannot load the certificate and key: %v", err)
				check("SESSIONGATE_TLS_KEY", keyOK, "cannot load the certificate and key: %v", err)
			}
		}
	}
	return p
}

// hostBitsWarnings warns of the CIDRs with host bits in the address
// lists, which Load takes as their whole network.
func (c *Config) hostBitsWarnings(env map[string]string) []string {
	var out []string
	if raw := env["SESSIONGATE_TRUSTED_PROXIES"]; raw != "" {
		if entries, err := splitList(raw); err == nil {
			out = append(out, hostBitsWarnings("SESSIONGATE_TRUSTED_PROXIES", entries)...)
		}
	}
	// Not refused: on a platform whose proxies' addresses are not
	// published it is the only way to see clients at all.
	for _, p := range c.TrustedProxies {
		if p.Bits() == 0 {
			out = append(out, fmt.Sprintf("SESSIONGATE_TRUSTED_PROXIES: %s trusts every address: with every hop trusted, a client's address is the leftmost X-Forwarded-For entry, which the client writes itself (a load balancer appends the real one after it), so any client picks PHP's REMOTE_ADDR and the address SESSIONGATE_RESTRICTED_PATHS and SESSIONGATE_RATE_LIMITS go by; list the proxies' networks instead (nginx's set_real_ip_from 0.0.0.0/0 took the rightmost entry, with real_ip_recursive off)", p))
		}
	}
	for _, e := range c.RestrictedPathSpecs {
		if f := strings.Fields(e); len(f) > 1 {
			out = append(out, hostBitsWarnings("SESSIONGATE_RESTRICTED_PATHS", f[1:])...)
		}
	}
	return out
}

// keyCertPosition is the position (from 1) of the certificate in certPEM
// that keyPEM's key belongs to, or 0 when none does.
func keyCertPosition(certPEM, keyPEM []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, certPEM = pem.Decode(certPEM)
		if b == nil {
			return 0
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := tls.X509KeyPair(pem.EncodeToMemory(b), keyPEM); err == nil {
			return n
		}
	}
}

// hasPEMBlock reports whether data holds a PEM block wanted, as
// crypto/tls looks for certificates and private keys.
func hasPEMBlock(data []byte, wanted func(b *pem.Block) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if wanted(b) {
			return true
		}
	}
}

// encryptedKeyBlock reports a private key encrypted with a passphrase:
// PKCS#8's ENCRYPTED PRIVATE KEY (openssl pkey -aes256), or OpenSSL's
// traditional format with a Proc-Type header (openssl rsa -aes256
// -traditional, as older guides make keys).
func encryptedKeyBlock(b *pem.Block) bool {
	return b.Type == "ENCRYPTED PRIVATE KEY" ||
		strings.HasSuffix(b.Type, " PRIVATE KEY") && strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED")
}

// checkBackend explains what is wrong with one php-fpm address, or returns "".
func checkBackend(a string) string {
	if rest, ok := strings.CutPrefix(a, "unix:"); ok {
		if !filepath.IsAbs(rest) {
			return fmt.Sprintf("%q: a unix socket needs an absolute path, unix:/path/to/php-fpm.sock", a)
		}
		if err := sockpath.Check(rest); err != nil {
			return fmt.Sprintf("%q: %v", a, err)
		}
		return ""
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || !addressHost(host) || !validPort(port, false) {
		return fmt.Sprintf("%q is not host:port or unix:/path", a)
	}
	return ""
}

// backendKey is the backend a valid php-fpm address (host:port or
// unix:/path) or Django URL (http://host:port) names, however it is
// written: a host name in any case, an address in any spelling (::ffff:
// a.b.c.d as a.b.c.d), a port with leading zeros, a socket path with
// // or /./ in it, and a URL with or without its trailing /. A backend
// listed twice would be balanced as two, with twice the connections
// (SESSIONGATE_PHP_MAX_CONNS, more than pm.max_children) and share of the
// load. Names are not resolved: two names may be one host now and two
// after a DNS change.
func backendKey(a string) string {
	if rest, ok := strings.CutPrefix(a, "unix:"); ok {
		return "unix:" + filepath.Clean(rest)
	}
	hostPort := a
	if rest, ok := strings.CutPrefix(strings.ToLower(a), "http://"); ok {
		hostPort, _, _ = strings.Cut(rest, "/")
	}
	host, port, err := net.SplitHostPort(hostPort)
	n, errPort := strconv.Atoi(port)
	if err != nil || errPort != nil {
		return a
	}
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(n))
}

// sameListener reports whether listening on a and then on b would clash:
// the same port (not 0, which picks a free one each time) on the same
// address or with either host a wildcard. Hosts are compared as the
// kernel sees them, not as written (localhost and 127.0.0.1, ::ffff:a.b.c.d
// and a.b.c.d): the clash would otherwise surface only at the second
// listen, as "address already in use", which reads like another process
// holding the port, and with an exit status that makes a supervisor retry.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	na, errA := strconv.Atoi(pa)
	nb, errB := strconv.Atoi(pb)
	if errA != nil || errB != nil {
		return a == b
	}
	if na != nb || na == 0 {
		return false
	}
	if wildcardHost(ha) || wildcardHost(hb) || strings.EqualFold(ha, hb) {
		return true
	}
	ia, okA := listenAddr(ha)
	ib, okB := listenAddr(hb)
	return okA && okB && ia == ib
}

// wildcardHost reports whether a listener's host h listens on every
// address: none, 0.0.0.0 or ::.
func wildcardHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || ip != nil && ip.IsUnspecified()
}

// ownListener returns the variable of the gateway's listener that a
// backend at target (host:port) would reach, or "".
func (c *Config) ownListener(target string, bad Problems) string {
	for _, l := range []struct{ name, addr string }{
		{"SESSIONGATE_LISTEN", c.Listen},
		{"SESSIONGATE_ADMIN_LISTEN", c.AdminListen},
		{"SESSIONGATE_HTTP_REDIRECT_LISTEN", c.HTTPRedirectListen},
	} {
		if l.addr != "" && !bad.has(l.name) && ownListener(l.addr, target) {
			return l.name
		}
	}
	return ""
}

// ownListener reports whether connecting to target (a backend's host:port)
// would reach the gateway's own listener on listen: the same port, and the
// listener's address, or for a listener on every address (no host, or a
// wildcard) any address of this machine. A Django backend there sends each
// request back to the gateway, which sends it on again, until connections
// run out (one request became thousands); php-fpm's there gets HTTP
// answers to FastCGI.
func ownListener(listen, target string) bool {
	lh, lp, errL := net.SplitHostPort(listen)
	th, tp, errT := net.SplitHostPort(target)
	if errL != nil || errT != nil {
		return false
	}
	ln, errL := strconv.Atoi(lp)
	tn, errT := strconv.Atoi(tp)
	if errL != nil || errT != nil || ln != tn || ln == 0 {
		return false
	}
	targets := dialAddrs(th)
	if wildcardHost(lh) {
		for _, a := range targets {
			if a.IsLoopback() || a.IsUnspecified() || localAddr(a) {
				return true
			}
		}
		return false
	}
	own, ok := listenAddr(lh)
	return ok && slices.Contains(targets, own)
}

// dialAddrs are the addresses a connection to host may go to: host itself
// (IPv4-mapped as IPv4), or every address the name resolves to.
func dialAddrs(host string) []netip.Addr {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), listenResolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs
}

// interfaceAddrs lists this machine's addresses; a variable so a test can
// take netlink away, as the systemd unit's RestrictAddressFamilies does.
var interfaceAddrs = net.InterfaceAddrs

// localAddr reports whether a is an address of one of this machine's
// interfaces.
func localAddr(a netip.Addr) bool {
	ifAddrs, err := interfaceAddrs()
	if err != nil {
		// No netlink (a sandbox that allows only AF_UNIX and AF_INET*):
		// only an address of this machine can be bound.
		c, err := net.ListenPacket("udp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	for _, ia := range ifAddrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a.WithZone("") {
				return true
			}
		}
	}
	return false
}

// listenResolveTimeout bounds the look-up of a listener's host name at
// start.
const listenResolveTimeout = 2 * time.Second

// listenAddr is the address net.Listen binds for host: the address itself
// (an IPv4-mapped one as IPv4, as Go binds it), or for a name its first
// IPv4 address, else its first. ok is false when a name does not resolve:
// listening on it fails on its own, naming the variable.
func listenAddr(host string) (addr netip.Addr, ok bool) {
	addrs := dialAddrs(host)
	if len(addrs) == 0 {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if a.Is4() {
			return a, true
		}
	}
	return addrs[0], true
}

// addressHost reports whether h, the host of a host:port, can name an
// address: an IP address (an IPv6 one with its zone), or a host name of
// letters, digits, dots, hyphens and underscores (container names have
// them). A space or a control character (a stray space in an env file, a
// space-separated list) would pass net.SplitHostPort and fail only when
// the gateway listens or dials.
func addressHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validPort(p string, allowZero bool) bool {
	n, err := strconv.Atoi(p)
	if err != nil {
		return false
	}
	return n <= 65535 && (n > 0 || allowZero && n == 0)
}

func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

// describeFSErrorOrNil is describeFSError for a check's message, which is
// formatted whether or not the check fails.
func describeFSErrorOrNil(err error) string {
	if err == nil {
		return ""
	}
	return describeFSError(err)
}

// openableDir says why the gateway's user cannot open directory d as the
// router does (os.OpenRoot), or "": os.Stat needs only its parents
// searchable, so a root of another user's with mode 0750 passed, and the
// start failed later with exit status 1, which a service manager restarts
// for ever.
func openableDir(d string) string {
	r, err := os.OpenRoot(d)
	if err != nil {
		return "cannot be opened by the gateway's user (" + describeFSError(err) + "): give that user read and search permission on it"
	}
	r.Close()
	return ""
}

func describeFSError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Prefixes is a list of networks, e.g. trusted proxies. Single addresses are
// stored as full-length prefixes (/32, /128).
type Prefixes []netip.Prefix

// Contains reports whether addr belongs to one of the networks. IPv4 addresses
// seen as IPv4-mapped IPv6 (::ffff:a.b.c.d) match IPv4 prefixes.
func (ps Prefixes) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// checkHSTS returns what is wrong with a Strict-Transport-Security value
// (RFC 6797 section 6.1), or "": a max-age in seconds, once, and at most
// includeSubDomains and preload besides; empty directives (";;", a
// trailing ";") are allowed, as browsers skip them. A typo would otherwise
// reach every browser, which drops a header it cannot parse and ignores a
// directive it does not know (a misspelt includeSubDomains), without a
// word; so an unknown directive is refused here, though the RFC lets
// browsers ignore it.
func checkHSTS(v string) string {
	if !httpfield.ValidValue(v) {
		// TrimSpace below would take a \r (an env file with CRLF line
		// ends) as space, and HTTP/2 drops a field whose value holds one:
		// HTTPS answers would go out without the header.
		return "must not contain a control character (a \\r from an env file with CRLF line ends?)"
	}
	maxAge := false
	seen := map[string]bool{}
	for _, d := range strings.Split(v, ";") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		name, value, hasValue := strings.Cut(d, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if seen[name] {
			return fmt.Sprintf("%q is given twice", name)
		}
		seen[name] = true
		switch name {
		case "max-age":
			value = strings.TrimSpace(value)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1] // a quoted-string, quotes balanced
			}
			if _, err := strconv.ParseUint(value, 10, 64); err != nil || !hasValue {
				return "max-age must be a number of seconds, e.g. max-age=63072000"
			}
			maxAge = true
		case "includesubdomains", "preload":
			if hasValue {
				return fmt.Sprintf("%s takes no value", name)
			}
		default:
			return fmt.Sprintf("unknown directive %q: use max-age=SECONDS, includeSubDomains and preload", name)
		}
	}
	if !maxAge {
		return "needs max-age=SECONDS, e.g. max-age=63072000; includeSubDomains"
	}
	return ""
}
