package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessiongate/sessiongate/internal/sockpath"
)

// DefaultTimeout is the dial, read and write timeout OpenClient uses unless
// the URL or an option says otherwise. A session store on a LAN answers in
// well under a millisecond: half a second means "Redis is gone", and the
// request gets its 503 quickly instead of hanging.
const DefaultTimeout = 500 * time.Millisecond

// ClientOption adjusts the client OpenClient builds.
type ClientOption func(*clientConfig)

type clientConfig struct {
	dial, read, write time.Duration
	tls               *tls.Config
	poolSize          int
}

// WithTimeouts sets the dial, read and write timeouts (each <= 0 keeps the
// default). Timeouts given in the URL query win.
func WithTimeouts(dial, read, write time.Duration) ClientOption {
	return func(c *clientConfig) {
		if dial > 0 {
			c.dial = dial
		}
		if read > 0 {
			c.read = read
		}
		if write > 0 {
			c.write = write
		}
	}
}

// WithTLSConfig sets the TLS configuration of rediss:// URLs (a private CA,
// client certificates). It is cloned; an empty ServerName is filled in from
// the URL's first host. Ignored for plain-text URLs.
func WithTLSConfig(cfg *tls.Config) ClientOption {
	return func(c *clientConfig) { c.tls = cfg }
}

// WithPoolSize sets the connection pool size per node (URL pool_size wins).
func WithPoolSize(n int) ClientOption {
	return func(c *clientConfig) { c.poolSize = n }
}

// OpenClient parses rawURL (forms in the package documentation) and returns
// a client for it. It does not connect: call Store.Ping for the fail-fast
// probe. The caller owns the client and closes it after the Store.
//
// Errors never contain the password: go-redis and net/url echo parts of the
// URL in their messages, so every message is scrubbed before it is
// returned.
func OpenClient(rawURL string, opts ...ClientOption) (c redis.UniversalClient, err error) {
	defer func() {
		// go-redis panics on some option values (a negative pool_size).
		if recover() != nil {
			c, err = nil, errors.New("redisstore: the Redis client refuses its options (e.g. a negative pool_size)")
		}
	}()
	c, err = openClient(rawURL, opts...)
	if err != nil {
		return nil, withholdCredentials(rawURL, err)
	}
	return c, nil
}

// quotedText is s as quote writes it, without the quotes around it.
func quotedText(s string, quote func(string) string) string {
	q := quote(s)
	return q[1 : len(q)-1]
}

// withholdCredentials returns err unless its text holds a word of what may
// be the URL's credentials. scrub masks the secrets as they were parsed,
// but a password with an unencoded '/', '?', '#' or '&' is cut in two by
// the parser, and its tail then shows up quoted as a path, host or option
// name.
func withholdCredentials(raw string, err error) error {
	msg := err.Error()
	var parts []string
	if i := strings.Index(raw, "://"); i >= 0 {
		if at := strings.LastIndexByte(raw, '@'); at > i+3 {
			parts = append(parts, raw[i+3:at])
		}
	}
	if _, after, ok := strings.Cut(raw, "password="); ok { // also sentinel_password=
		parts = append(parts, after)
	}
	for _, p := range parts {
		for _, w := range strings.FieldsFunc(p, func(r rune) bool { return strings.ContainsRune(":/?#&=@", r) }) {
			forms := []string{w}
			if u, err := url.PathUnescape(w); err == nil {
				forms = append(forms, u)
			}
			if u, err := url.QueryUnescape(w); err == nil {
				forms = append(forms, u)
			}
			// Quoted too: the parsers' messages quote what they refuse
			// (%q), which escapes a double quote or a control character
			// in a password.
			for _, f := range slices.Clone(forms) {
				forms = append(forms, quotedText(f, strconv.Quote), quotedText(f, strconv.QuoteToASCII))
			}
			for _, f := range forms {
				if f != "" && strings.Contains(msg, f) {
					return errors.New("redisstore: not a valid Redis URL (its explanation is withheld: it would show part of the credentials); " +
						"percent-encode : / ? # @ & in a user name or password, e.g. redis://:p%2Fss@host:6379/0")
				}
			}
		}
	}
	return err
}

func openClient(rawURL string, opts ...ClientOption) (redis.UniversalClient, error) {
	cfg := clientConfig{dial: DefaultTimeout, read: DefaultTimeout, write: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := splitURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch p.kind {
	case kindSingle:
		o, err := redis.ParseURL(p.goRedisURL)
		if err != nil {
			return nil, p.scrub(err)
		}
		cfg.apply(p, &common{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialerRetries, &o.PoolSize, &o.Protocol, &o.TLSConfig, &o.Dialer})
		return redis.NewClient(o), nil
	case kindCluster:
		o, err := redis.ParseClusterURL(p.goRedisURL)
		if err != nil {
			return nil, p.scrub(err)
		}
		if o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			// go-redis then sends the reads Redis flags read-only (HMGET,
			// GET) to a slot's replica: a session's stale version, a
			// login record from before a password change.
			return nil, errors.New("redisstore: cluster URL: read_only, route_by_latency and route_randomly are not supported (sessions need the masters)")
		}
		cfg.apply(p, &common{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialerRetries, &o.PoolSize, &o.Protocol, &o.TLSConfig, &o.Dialer})
		return redis.NewClusterClient(o), nil
	default: // kindSentinel
		o, err := redis.ParseFailoverURL(p.goRedisURL)
		if err != nil {
			return nil, p.scrub(err)
		}
		if o.MasterName == "" {
			return nil, errors.New("redisstore: sentinel URL needs ?master=<name>")
		}
		if o.RouteByLatency || o.RouteRandomly || o.ReplicaOnly {
			// NewFailoverClient panics on the first two; reading from
			// replicas would break the lock's read-your-writes.
			return nil, errors.New("redisstore: sentinel URL: route_by_latency, route_randomly and replica_only are not supported (sessions need the master)")
		}
		cfg.apply(p, &common{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialerRetries, &o.PoolSize, &o.Protocol, &o.TLSConfig, &o.Dialer})
		return redis.NewFailoverClient(o), nil
	}
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// noRetriesUnlessAsked turns go-redis's default of 3 retries off: a script
// whose reply was lost may have run, and running Save or Unlock twice
// reports a false conflict or a false lost lease. An explicit max_retries
// in the URL still applies.
func noRetriesUnlessAsked(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

type urlKind int

const (
	kindSingle urlKind = iota
	kindCluster
	kindSentinel
)

// OnLoopback reports whether every server rawURL names is on this host: a
// unix socket, localhost or a loopback address. (For a Sentinel URL that
// is the Sentinels; for a Cluster, the nodes listed.) It is false for a URL
// that does not parse.
func OnLoopback(rawURL string) bool {
	p, err := splitURL(rawURL)
	if err != nil {
		return false
	}
	if p.scheme == "unix" {
		return true
	}
	for _, hp := range p.hosts {
		h, _, err := net.SplitHostPort(hp)
		if err != nil {
			return false
		}
		if strings.EqualFold(h, "localhost") {
			continue
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return len(p.hosts) > 0
}

// parsedURL is our URL translated into the form the matching go-redis
// parser takes, plus what is needed to scrub secrets from its errors.
type parsedURL struct {
	kind       urlKind
	scheme     string // as written by the user
	goRedisURL string
	secrets    []string
	firstHost  string
	hosts      []string // host:port of each server named (none for unix://)
	tls        bool
}

var schemes = map[string]struct {
	kind urlKind
	tls  bool
}{
	"redis":           {kindSingle, false},
	"rediss":          {kindSingle, true},
	"unix":            {kindSingle, false},
	"redis-cluster":   {kindCluster, false},
	"rediss-cluster":  {kindCluster, true},
	"redis-sentinel":  {kindSentinel, false},
	"rediss-sentinel": {kindSentinel, true},
}

// splitURL parses the authority (a comma-separated host list, which net/url
// does not accept) by hand and builds the go-redis URL.
func splitURL(raw string) (*parsedURL, error) {
	raw = strings.TrimSpace(raw)
	if len(raw) > len("unix:/") && strings.EqualFold(raw[:len("unix:/")], "unix:/") && raw[len("unix:/")] != '/' {
		// unix:/path.sock, as SESSIONGATE_PHP_FPM and SESSIONGATE_DJANGO_URL
		// name their sockets (and redis-py takes it): the path is all
		// there is after the scheme.
		raw = "unix://" + raw[len("unix:"):]
	}
	if len(raw) > len("unix:") && strings.EqualFold(raw[:len("unix:")], "unix:") && raw[len("unix:")] != '/' {
		// unix:redis.sock has a scheme: its path is what is wrong.
		return nil, errors.New("redisstore: unix URL: the socket needs an absolute path, unix:/path/to/redis.sock or unix:///path/to/redis.sock")
	}
	schemeEnd := strings.Index(raw, "://")
	if schemeEnd <= 0 {
		return nil, errors.New("redisstore: Redis URL needs a scheme (redis://, rediss://, unix://, redis-sentinel://, redis-cluster://)")
	}
	scheme := strings.ToLower(raw[:schemeEnd])
	sc, ok := schemes[scheme]
	if !ok {
		return nil, fmt.Errorf("redisstore: unknown Redis URL scheme %q (want redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster)", truncate(scheme, 32))
	}
	p := &parsedURL{kind: sc.kind, scheme: scheme, tls: sc.tls}
	rest := raw[schemeEnd+3:]

	// Split off the query, then the path, then the user info. The user info
	// ends at the LAST '@' of the authority, so a password may contain '@'
	// only percent-encoded, as in any URL, but a stray one still does not
	// leak into the host list.
	var query string
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i+1:]
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	authority, path := rest, ""
	if scheme != "unix" {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			authority, path = rest[:i], rest[i:]
		}
	} else {
		// unix://[user:pass@]/path/to.sock
		authority, path = "", rest
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			authority, path = rest[:at+1], rest[at+1:]
		}
		// go-redis would take a relative path's first segment as a host
		// (unix://tmp/redis.sock dials /redis.sock) and the start-up check
		// fail, which a supervisor retries for ever.
		if path != "" && !strings.HasPrefix(path, "/") {
			return nil, errors.New("redisstore: unix URL: the socket needs an absolute path, unix:///path/to/redis.sock")
		}
		// A URL's path is percent-encoded (%20 a space); put in url.URL
		// as written, its escapes were escaped again and the gateway
		// dialed ".../my%20redis.sock".
		dec, err := url.PathUnescape(path)
		if err != nil {
			return nil, errors.New("redisstore: unix URL: bad percent-encoding in the socket path (a '%' is written %25)")
		}
		path = dec
		// The start-up check would only say "invalid argument".
		if err := sockpath.Check(path); err != nil {
			return nil, fmt.Errorf("redisstore: unix URL: %w", err)
		}
	}
	var user *url.Userinfo
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		ui := authority[:at]
		authority = authority[at+1:]
		name, pass, hasPass := strings.Cut(ui, ":")
		uname, err1 := url.PathUnescape(name)
		upass, err2 := url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("redisstore: %s URL: bad percent-encoding in the user info", scheme)
		}
		if hasPass {
			user = url.UserPassword(uname, upass)
			p.addSecret(pass)
			p.addSecret(upass)
		} else {
			// redis://password@host is a common mistake. go-redis sends no
			// AUTH without a password, so a lone user-info part is never
			// used: the gateway would log in as nobody and the start-up
			// check say only "NOAUTH Authentication required". Refuse it,
			// without echoing it.
			return nil, fmt.Errorf("redisstore: %s URL: the user info has no ':' and would be ignored; "+
				"write redis://:PASSWORD@host, or redis://USER:PASSWORD@host for an ACL user", scheme)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s URL: malformed query string", scheme)
	}
	for _, k := range []string{"password", "sentinel_password"} {
		for _, v := range q[k] {
			p.addSecret(v)
			p.addSecret(url.QueryEscape(v))
		}
	}
	// go-redis takes db= over the path's number without a word: the
	// sessions would go to another database than the one the URL seems to
	// name.
	if scheme != "unix" && strings.Trim(path, "/") != "" && q.Has("db") {
		return nil, fmt.Errorf("redisstore: %s URL: the database is named twice, in the path and as db=; keep one", scheme)
	}

	var hosts []string
	if scheme != "unix" {
		for h := range strings.SplitSeq(authority, ",") {
			h = strings.TrimSpace(h)
			if h == "" {
				continue
			}
			hp, err := normalizeHost(h)
			if err != nil {
				return nil, fmt.Errorf("redisstore: %s URL: %w", scheme, err)
			}
			hosts = append(hosts, hp)
		}
		if len(hosts) == 0 {
			return nil, fmt.Errorf("redisstore: %s URL names no host", scheme)
		}
		p.firstHost, _, _ = net.SplitHostPort(hosts[0])
		p.hosts = hosts
	}

	u := &url.URL{Scheme: "redis", User: user, Path: path}
	if sc.tls {
		u.Scheme = "rediss"
	}
	switch sc.kind {
	case kindSingle:
		if scheme == "unix" {
			u.Scheme = "unix"
		} else {
			if len(hosts) > 1 {
				return nil, fmt.Errorf("redisstore: %s:// names one server; for several use redis-cluster:// or redis-sentinel://", scheme)
			}
			u.Host = hosts[0]
		}
		if q.Has("addr") {
			return nil, fmt.Errorf("redisstore: %s:// takes no addr= parameter; a cluster is redis-cluster://h1:p1,h2:p2", scheme)
		}
	case kindCluster:
		if path != "" && path != "/" {
			return nil, fmt.Errorf("redisstore: %s URL: a cluster has no database number (path must be empty)", scheme)
		}
		u.Path = ""
		u.Host = hosts[0]
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
	case kindSentinel:
		u.Host = hosts[0]
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		// Ours: user info = the data nodes' credentials, as in every other
		// form; sentinel_username/sentinel_password = the sentinels'.
		// go-redis: user info = sentinels', username/password params =
		// data nodes'. Translate.
		if q.Has("username") || q.Has("password") {
			return nil, fmt.Errorf("redisstore: %s URL: give the Redis credentials as user info (redis-sentinel://user:pass@...), not as parameters", scheme)
		}
		if user != nil {
			q.Set("username", user.Username())
			if pw, ok := user.Password(); ok {
				q.Set("password", pw)
			} else {
				q.Set("password", "")
			}
		}
		su, sp := q.Get("sentinel_username"), q.Get("sentinel_password")
		q.Del("sentinel_username")
		q.Del("sentinel_password")
		u.User = nil
		if su != "" || sp != "" {
			u.User = url.UserPassword(su, sp)
		}
		if m := q.Get("master"); m != "" {
			if mn := q.Get("master_name"); mn != "" && mn != m {
				return nil, fmt.Errorf("redisstore: %s URL: master and master_name disagree", scheme)
			}
			q.Set("master_name", m)
		}
		q.Del("master")
	}
	u.RawQuery = q.Encode()
	p.goRedisURL = u.String()
	return p, nil
}

// normalizeHost accepts host, host:port, [v6] and [v6]:port and returns
// host:port with the default port 6379.
func normalizeHost(h string) (string, error) {
	if strings.ContainsAny(h, "/@?#") {
		return "", errors.New("malformed host list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bare IPv6 literal in brackets).
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "6379"
		if strings.Contains(host, "]") || strings.Contains(host, "[") {
			return "", errors.New("malformed host in host list")
		}
		if !strings.HasPrefix(h, "[") && strings.Contains(host, ":") {
			// ::1:6379 is itself an IPv6 address: without brackets
			// nothing says where the port starts.
			return "", errors.New("an IPv6 address needs brackets, as in any URL: [::1]:6379")
		}
	}
	if host == "" {
		return "", errors.New("empty host in host list")
	}
	if i := strings.Index(host, "%25"); i >= 0 && strings.Contains(host, ":") {
		// A link-local address's zone, written %25 in a URL (RFC 6874,
		// as net/url and SESSIONGATE_DJANGO_URL read it): kept escaped,
		// the URL handed to go-redis escaped it again, and it dialed
		// zone "25eth0", an interface that does not exist.
		host = host[:i] + "%" + host[i+3:]
	}
	if port == "" {
		port = "6379"
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", errors.New("non-numeric port in host list")
		}
	}
	// Refused here, with the URL's other mistakes, rather than by the
	// dial at start, which reads as Redis being down for now.
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("port out of range in host list (1-65535)")
	}
	return net.JoinHostPort(host, port), nil
}

func (p *parsedURL) addSecret(s string) {
	if s != "" {
		p.secrets = append(p.secrets, s)
	}
}

// scrub turns a parser error into one that cannot reveal a secret: every
// occurrence of a password (raw or encoded) is masked, and the original
// error is not kept in the chain (errors.Unwrap would hand it out again).
func (p *parsedURL) scrub(err error) error {
	// net/url quotes pieces of the URL, such as what is left of a password
	// whose unencoded '#' or '?' ended the user info early; they are not
	// in p.secrets, so say nothing of the URL's text.
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("redisstore: %s URL is malformed (percent-encode '@', '#', '?', '/' and '%%' in the user info)", p.scheme)
	}
	// The translated URL never appears verbatim: go-redis's own messages
	// name options and numbers, but net/url's quote the whole URL.
	msg := strings.ReplaceAll(err.Error(), p.goRedisURL, "<url>")
	for _, s := range p.secrets {
		userinfo := strings.TrimPrefix(url.UserPassword("", s).String(), ":")
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), userinfo} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
			}
		}
	}
	return fmt.Errorf("redisstore: %s URL: %s", p.scheme, msg)
}

// tlsConfig merges the caller's TLS configuration into the one go-redis
// derived from a rediss scheme.
func (p *parsedURL) tlsConfig(parsed, given *tls.Config) *tls.Config {
	if !p.tls {
		return nil
	}
	if parsed == nil {
		parsed = &tls.Config{ServerName: p.firstHost}
	}
	if parsed.MinVersion < tls.VersionTLS12 {
		parsed.MinVersion = tls.VersionTLS12
	}
	if given == nil {
		return parsed
	}
	c := given.Clone()
	if c.ServerName == "" {
		c.ServerName = parsed.ServerName
	}
	if parsed.InsecureSkipVerify {
		c.InsecureSkipVerify = true
	}
	if c.MinVersion == 0 {
		c.MinVersion = parsed.MinVersion
	}
	return c
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// common points at the option fields the three go-redis option types share,
// so one function gives them the store's defaults.
type common struct {
	dial, read, write *time.Duration
	poolTimeout       *time.Duration
	ctxTimeout        *bool
	retries           *int
	dialerRetries     *int
	poolSize          *int
	protocol          *int
	tls               **tls.Config
	dialer            *func(context.Context, string, string) (net.Conn, error)
}

func (cfg *clientConfig) apply(p *parsedURL, c *common) {
	*c.dial, *c.read, *c.write = orDefault(*c.dial, cfg.dial), orDefault(*c.read, cfg.read), orDefault(*c.write, cfg.write)
	// go-redis waits read timeout + 1 s for a free pool connection. When
	// Redis stalls, every connection is busy until its read times out, and
	// a lock attempt (whose context is the lock wait, seconds) then got its
	// 503 after more than twice the Redis timeout: wait one timeout at most.
	// (A read timeout of -1 or -2, "none", keeps go-redis's default.)
	if *c.poolTimeout == 0 && *c.read > 0 {
		*c.poolTimeout = *c.read
	}
	*c.ctxTimeout = true
	*c.retries = noRetriesUnlessAsked(*c.retries)
	if *c.dialerRetries == 0 {
		*c.dialerRetries = 1 // one dial attempt: down means 503 now, not after 5 tries
	}
	if *c.poolSize == 0 {
		*c.poolSize = cfg.poolSize
	}
	if *c.poolSize == 0 {
		// go-redis's default, 10 per GOMAXPROCS, read when the client is
		// made: the gateway may be on one processor then (internal/procs)
		// and keep a 10-connection pool after it moves to every CPU. The
		// pool only dials on demand, so sizing it for the machine costs
		// nothing while the load is small.
		*c.poolSize = 10 * runtime.NumCPU()
	}
	if *c.protocol == 0 {
		// RESP2: the store uses no RESP3 feature, and go-redis then skips
		// its push-notification check on every reply.
		*c.protocol = 2
	}
	*c.tls = p.tlsConfig(*c.tls, cfg.tls)
	if *c.dialer == nil {
		if *c.tls != nil {
			*c.dialer = tlsDialer(*c.dial, *c.tls)
		} else {
			*c.dialer = plainDialer(*c.dial)
		}
		*c.dialer = noticeFull(*c.dialer)
	}
}
