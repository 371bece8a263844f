package redisstore

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestOpenClientForms(t *testing.T) {
	type want struct {
		kind     string // single, cluster, sentinel
		addrs    []string
		network  string
		db       int
		user, pw string
		master   string
		sentUser string
		sentPw   string
		tls      bool
	}
	cases := []struct {
		url string
		w   want
	}{
		{"redis://127.0.0.1:6380/3", want{kind: "single", addrs: []string{"127.0.0.1:6380"}, network: "tcp", db: 3}},
		{"redis://localhost", want{kind: "single", addrs: []string{"localhost:6379"}, network: "tcp"}},
		{"redis://u:p%40ss@h:1/0", want{kind: "single", addrs: []string{"h:1"}, network: "tcp", user: "u", pw: "p@ss"}},
		{"redis://:only@h", want{kind: "single", addrs: []string{"h:6379"}, network: "tcp", pw: "only"}},
		{"rediss://h:6380/1?dial_timeout=2s", want{kind: "single", addrs: []string{"h:6380"}, network: "tcp", db: 1, tls: true}},
		{"redis://[::1]:7000/2", want{kind: "single", addrs: []string{"[::1]:7000"}, network: "tcp", db: 2}},
		// A link-local address's zone is %25 in a URL (RFC 6874), as in
		// SESSIONGATE_DJANGO_URL: it was escaped again, and go-redis
		// dialed zone "25eth0".
		{"redis://[fe80::1%25eth0]:6379/0", want{kind: "single", addrs: []string{"[fe80::1%eth0]:6379"}, network: "tcp"}},
		{"redis-cluster://[fe80::1%25eth0]:7000,[fe80::2%25eth0]", want{kind: "cluster", addrs: []string{"[fe80::1%eth0]:7000", "[fe80::2%eth0]:6379"}}},
		{"redis-sentinel://[fe80::1%25eth0]:26379?master=m", want{kind: "sentinel", addrs: []string{"[fe80::1%eth0]:26379"}, master: "m"}},
		{"unix:///run/redis.sock?db=4", want{kind: "single", addrs: []string{"/run/redis.sock"}, network: "unix", db: 4}},
		{"unix://:pw@/run/redis.sock", want{kind: "single", addrs: []string{"/run/redis.sock"}, network: "unix", pw: "pw"}},
		// The form SESSIONGATE_PHP_FPM and SESSIONGATE_DJANGO_URL take,
		// and redis-py's: "needs a scheme" sent the operator looking for
		// one it had.
		{"unix:/run/redis.sock?db=4", want{kind: "single", addrs: []string{"/run/redis.sock"}, network: "unix", db: 4}},
		{"unix:/run/redis.sock", want{kind: "single", addrs: []string{"/run/redis.sock"}, network: "unix"}},
		// A URL's path is percent-encoded: %20 is a space.
		{"unix:///run/my%20redis.sock?db=1", want{kind: "single", addrs: []string{"/run/my redis.sock"}, network: "unix", db: 1}},
		{"unix:///run/my redis.sock", want{kind: "single", addrs: []string{"/run/my redis.sock"}, network: "unix"}},
		{"redis-cluster://a:7000,b:7001,c", want{kind: "cluster", addrs: []string{"a:7000", "b:7001", "c:6379"}}},
		{"redis-cluster://:pw@a:7000?addr=b:7001", want{kind: "cluster", addrs: []string{"a:7000", "b:7001"}, pw: "pw"}},
		{"redis-cluster://single:7000", want{kind: "cluster", addrs: []string{"single:7000"}}},
		{"rediss-cluster://a:7000,b:7001/", want{kind: "cluster", addrs: []string{"a:7000", "b:7001"}, tls: true}},
		{"redis-sentinel://s1:26379,s2/2?master=mymaster", want{kind: "sentinel", addrs: []string{"s1:26379", "s2:6379"}, db: 2, master: "mymaster"}},
		{"redis-sentinel://u:p@s1?master_name=m&sentinel_username=su&sentinel_password=sp", want{kind: "sentinel", addrs: []string{"s1:6379"}, master: "m", user: "u", pw: "p", sentUser: "su", sentPw: "sp"}},
		{"rediss-sentinel://s1?master=m", want{kind: "sentinel", addrs: []string{"s1:6379"}, master: "m", tls: true}},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			c, err := OpenClient(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			w := tc.w
			switch cl := c.(type) {
			case *redis.ClusterClient:
				if w.kind != "cluster" {
					t.Fatalf("got a cluster client, want %s", w.kind)
				}
				o := cl.Options()
				check(t, o.Addrs, w.addrs, o.Username, o.Password, w.user, w.pw, o.TLSConfig, w.tls)
				checkTimeouts(t, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled, o.MaxRetries)
			case *redis.Client:
				o := cl.Options()
				switch w.kind {
				case "single":
					if o.Network != w.network || o.DB != w.db {
						t.Fatalf("network/db = %s/%d, want %s/%d", o.Network, o.DB, w.network, w.db)
					}
					check(t, []string{o.Addr}, w.addrs, o.Username, o.Password, w.user, w.pw, o.TLSConfig, w.tls)
				case "sentinel":
					// A failover client's Options do not list sentinels;
					// check the translated URL instead.
					p, err := splitURL(tc.url)
					if err != nil {
						t.Fatal(err)
					}
					fo, err := redis.ParseFailoverURL(p.goRedisURL)
					if err != nil {
						t.Fatal(err)
					}
					if fo.MasterName != w.master || fo.DB != w.db || fo.Username != w.user || fo.Password != w.pw ||
						fo.SentinelUsername != w.sentUser || fo.SentinelPassword != w.sentPw {
						t.Fatalf("failover options = %+v", fo)
					}
					check(t, fo.SentinelAddrs, w.addrs, "", "", "", "", fo.TLSConfig, w.tls)
				default:
					t.Fatalf("got a plain client, want %s", w.kind)
				}
				checkTimeouts(t, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled, o.MaxRetries)
			default:
				t.Fatalf("client type %T", c)
			}
		})
	}
}

func check(t *testing.T, addrs, wantAddrs []string, user, pw, wantUser, wantPw string, tc *tls.Config, wantTLS bool) {
	t.Helper()
	if strings.Join(addrs, ",") != strings.Join(wantAddrs, ",") {
		t.Fatalf("addrs = %v, want %v", addrs, wantAddrs)
	}
	if user != wantUser || pw != wantPw {
		t.Fatalf("credentials = %q/%q, want %q/%q", user, pw, wantUser, wantPw)
	}
	if (tc != nil) != wantTLS {
		t.Fatalf("TLS = %v, want %v", tc != nil, wantTLS)
	}
	if tc != nil && (tc.ServerName == "" || tc.MinVersion < tls.VersionTLS12) {
		t.Fatalf("TLS config %+v", tc)
	}
}

func checkTimeouts(t *testing.T, dial, read, write time.Duration, ctxTimeouts bool, retries int) {
	t.Helper()
	if !ctxTimeouts {
		t.Fatal("ContextTimeoutEnabled is off")
	}
	if dial <= 0 || dial > 2*time.Second || read != DefaultTimeout || write != DefaultTimeout {
		t.Fatalf("timeouts dial/read/write = %v/%v/%v", dial, read, write)
	}
	if retries > 0 { // -1 in the options is 0 once go-redis normalized them
		t.Fatalf("MaxRetries = %d, want retries off", retries)
	}
}

// TestOpenClientUnixPathMustBeAbsolute: after unix:// a relative path
// (unix://tmp/redis.sock, one slash short) was taken by go-redis as a host
// and a path: the gateway dialed /redis.sock... elsewhere, failed its
// start-up check with exit 1, and a supervisor restarted it for ever.
//
// The form SESSIONGATE_PHP_FPM writes, with a relative path (unix:redis.sock,
// unix:run/redis.sock), was refused as a URL that "needs a scheme", though
// it has one: the message must ask for the absolute path instead.
func TestOpenClientUnixPathMustBeAbsolute(t *testing.T) {
	for _, u := range []string{"unix://tmp/redis.sock", "unix://redis.sock", "unix://run/redis/redis.sock?db=1", "unix://:pw@run/redis.sock", "unix:redis.sock", "unix:run/redis/redis.sock?db=1", "UNIX:redis.sock"} {
		c, err := OpenClient(u)
		if err == nil {
			c.Close()
			t.Errorf("%s: accepted", u)
			continue
		}
		if !strings.Contains(err.Error(), "absolute") || strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: %v; want a message asking for an absolute path, without the password", u, err)
		}
	}
}

func TestOpenClientOptions(t *testing.T) {
	c, err := OpenClient("redis://h/0", WithTimeouts(time.Second, 2*time.Second, 3*time.Second), WithPoolSize(7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.(*redis.Client).Options()
	if o.DialTimeout != time.Second || o.ReadTimeout != 2*time.Second || o.WriteTimeout != 3*time.Second || o.PoolSize != 7 {
		t.Fatalf("options not applied: %v %v %v %d", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolSize)
	}
	// The URL wins over options.
	c2, err := OpenClient("redis://h/0?read_timeout=4s&max_retries=2", WithTimeouts(0, time.Second, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	o = c2.(*redis.Client).Options()
	if o.ReadTimeout != 4*time.Second || o.MaxRetries != 2 {
		t.Fatalf("URL options lost: read %v retries %d", o.ReadTimeout, o.MaxRetries)
	}
	ca := &tls.Config{MinVersion: tls.VersionTLS13}
	c3, err := OpenClient("rediss://tls.example:6380", WithTLSConfig(ca))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got := c3.(*redis.Client).Options().TLSConfig; got.ServerName != "tls.example" || got.MinVersion != tls.VersionTLS13 || got == ca {
		t.Fatalf("TLS config = %+v", got)
	}
	if ca.ServerName != "" {
		t.Fatal("caller's TLS config was modified")
	}
}

func TestOpenClientErrorsHidePassword(t *testing.T) {
	const secret = "Sup3r-S3cret"
	bad := []string{
		"",
		"localhost:6379",
		"http://h",
		"redis://:" + secret + "@h/notanumber",
		"redis://:" + secret + "@h/0?bogus_option=1",
		"redis://:" + secret + "@h/0?dial_timeout=xyz",
		"redis://:" + secret + "@h/0?addr=h2:1",
		"redis://:" + secret + "@h1,h2/0",
		"redis://:" + secret + "@h:port/0",
		"redis://" + secret + "@h/0/1",
		"redis-cluster://:" + secret + "@h1/3",
		"redis-cluster://:" + secret + "@",
		"redis-cluster://:" + secret + "@h?read_only=maybe",
		"redis-sentinel://:" + secret + "@s1",
		"redis-sentinel://:" + secret + "@s1?master=m&route_randomly=true",
		"redis-sentinel://:" + secret + "@s1?master=m&password=" + secret,
		"redis-sentinel://s1?master=m&sentinel_password=" + secret + "&db=x",
		"redis://:%zz" + secret + "@h",
		"unix://:" + secret + "@?db=1",
		"redis://:" + secret + "@h/0?db=%" + secret,
		// A '#' or '?' left unencoded in a password ends the user info
		// early; what comes before must not be echoed either.
		"unix://:" + secret + "#2@/run/redis.sock",
		"unix://u:" + secret + "?2@/run/redis.sock",
		// An unencoded '/' or '&' cuts a password in two: the parser
		// quotes the tail as a path or an option name.
		"redis://default:x/" + secret + "@127.0.0.1:6379/0",
		"redis-sentinel://s1:26379/0?master=m&sentinel_password=x&" + secret + "&a=1",
		// ... and quotes it with %q, which escapes a '"' or a control
		// character: the tail must not be echoed in its quoted form either
		// (found by FuzzOpenClientHidesPassword).
		"redis-sentinel://s1/:" + secret + `"@h?master=m`,
		"redis-sentinel://s1/:" + secret + "\x7f@h?master=m",
	}
	for _, u := range bad {
		c, err := OpenClient(u)
		if err == nil {
			c.Close()
			t.Errorf("%q accepted", u)
			continue
		}
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), secret) {
				t.Errorf("%q: error reveals the password: %v", u, e)
			}
		}
	}
}

// go-redis panics on a negative pool size; OpenClient refuses it instead.
func TestOpenClientRefusesWhatGoRedisPanicsOn(t *testing.T) {
	for _, u := range []string{"redis://h/0?pool_size=-1", "redis-sentinel://s1/0?master=m&pool_size=-3"} {
		if c, err := OpenClient(u); err == nil {
			c.Close()
			t.Errorf("%q accepted", u)
		} else if !strings.Contains(err.Error(), "refuses its options") {
			t.Errorf("%q: %v", u, err)
		}
	}
}

// Reads from replicas break the lock's read-your-writes: on a Cluster
// URL, read_only (and route_randomly and route_by_latency, which imply
// it) sent Load's HMGET and Logins' GET to a slot's replica, which gave a
// session's stale version and a login record from before a password
// change (seen against a real Cluster with replicas). Refused, as on a
// Sentinel URL.
func TestOpenClientRefusesReplicaReads(t *testing.T) {
	for _, u := range []string{
		"redis-cluster://127.0.0.1:7000?read_only=true",
		"redis-cluster://127.0.0.1:7000?route_randomly=true",
		"redis-cluster://127.0.0.1:7000?route_by_latency=true",
		"redis-sentinel://s1?master=m&replica_only=true",
	} {
		if c, err := OpenClient(u); err == nil {
			c.Close()
			t.Errorf("%q accepted", u)
		} else if !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%q: %v", u, err)
		}
	}
}

// FuzzOpenClientHidesPassword: whatever else the URL holds, an error never
// shows the password written in it, as user info or as a parameter.
func FuzzOpenClientHidesPassword(f *testing.F) {
	f.Add(uint8(0), "", "", "h/notanumber")
	f.Add(uint8(5), "", "", "s1?master=m&db=x")
	f.Add(uint8(2), "u", "?2", "/run/redis.sock")
	f.Add(uint8(0), "default", "x/", "127.0.0.1:6379/0")
	f.Add(uint8(0), "", "", "h/0?dial_timeout=xyz")
	f.Add(uint8(9), "", "&db=", "x")
	schemes := []string{"redis", "rediss", "unix", "redis-cluster", "rediss-cluster", "redis-sentinel", "rediss-sentinel"}
	f.Fuzz(func(t *testing.T, form uint8, user, more, rest string) {
		const secret = "Sup3r-S3cret"
		if strings.Contains(strings.ToLower(user+more+rest), "s3cret") {
			return // written elsewhere too, where it need not be a secret
		}
		scheme := schemes[int(form)%len(schemes)]
		u := scheme + "://" + user + ":" + secret + more + "@" + rest
		if form >= 128 {
			u = scheme + "://" + rest + "?master=m&" + user + "password=" + secret + more
		}
		c, err := OpenClient(u)
		if err == nil {
			c.Close()
			return
		}
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), secret) {
				t.Fatalf("%q: error reveals the password: %v", u, e)
			}
		}
	})
}

// TestOpenClientIPv6NeedsBrackets: redis://::1:6379/0 used to become the
// address [::1:6379]:6379 (every colon taken for the host), and start-up
// then failed on that invented address. An IPv6 address without brackets
// cannot say where its port starts, as in any URL; the message says how to
// write it.
func TestOpenClientIPv6NeedsBrackets(t *testing.T) {
	for _, u := range []string{"redis://::1:6379/0", "redis://::1/0", "redis-cluster://a:7000,fe80::1:7001", "redis-sentinel://::1?master=m"} {
		if c, err := OpenClient(u); err == nil {
			t.Errorf("%q accepted as %v", u, c)
			c.Close()
		} else if !strings.Contains(err.Error(), "[::1]:6379") {
			t.Errorf("%q: %v, want the bracketed form shown", u, err)
		}
	}
}

// TestOpenClientTLSNamesFirstHost: README "Store" says that with
// rediss-sentinel:// and rediss-cluster:// every node's certificate is
// checked against the first host of the URL (go-redis gives all its node
// connections one tls.Config). A deployment whose certificates name that
// host relies on it staying so, with or without a CA of its own.
func TestOpenClientTLSNamesFirstHost(t *testing.T) {
	for _, url := range []string{"rediss-sentinel://s1.example:26379,s2.example?master=m", "rediss-cluster://s1.example:7000,s2.example:7001"} {
		for _, given := range []*tls.Config{nil, {MinVersion: tls.VersionTLS13}} {
			c, err := OpenClient(url, WithTLSConfig(given))
			if err != nil {
				t.Fatal(err)
			}
			var tc *tls.Config
			switch cl := c.(type) {
			case *redis.ClusterClient:
				tc = cl.Options().TLSConfig
			case *redis.Client:
				tc = cl.Options().TLSConfig
			}
			c.Close()
			if tc == nil || tc.ServerName != "s1.example" || tc.InsecureSkipVerify {
				t.Errorf("%s (own config %v): TLS config %+v, want ServerName s1.example", url, given != nil, tc)
			}
		}
	}
}

// A URL that names its database in the path and again as db= was taken
// with the query's number silently (redis://h/1?db=2 used database 2): the
// sessions went to a database the operator did not read from the path.
func TestOpenClientDatabaseNamedOnce(t *testing.T) {
	for _, u := range []string{"redis://127.0.0.1:6379/1?db=2", "rediss://:pw@127.0.0.1:6379/3?db=3", "redis-sentinel://127.0.0.1:26379/1?master=m&db=2"} {
		c, err := OpenClient(u)
		if err == nil {
			c.Close()
			t.Errorf("%s: accepted", u)
			continue
		}
		if !strings.Contains(err.Error(), "database") || strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: %v; want a message about the database named twice, without the password", u, err)
		}
	}
	for _, u := range []string{"redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379?db=2", "unix:///run/redis.sock?db=2"} {
		c, err := OpenClient(u)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		c.Close()
	}
}
