package config

import (
	"bytes"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testtls"
)

// base is the smallest valid environment.
func base(t *testing.T) []string {
	return []string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:9000",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=" + testKey,
	}
}

const testKey = "config-test-key-0123456789abcdef0123456789"

func TestDefaults(t *testing.T) {
	env := base(t)
	c, err := Load(env)
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimPrefix(env[1], "SESSIONGATE_DOCUMENT_ROOT=")
	want := Config{
		Listen:                 ":8080",
		PHPFPM:                 []string{"127.0.0.1:9000"},
		DocumentRoot:           root,
		StaticRoot:             root,
		Index:                  "index.php",
		FollowSymlinks:         []string{"root"},
		MaxBody:                1 << 20,
		RequestBuffering:       true,
		ResponseBuffering:      true,
		ResponseBufferingLimit: 1 << 30,
		Compress:               true,
		CompressCache:          32 << 20,
		PHPMaxConns:            8,
		PHPDialTimeout:         3 * time.Second,
		PHPTimeout:             60 * time.Second,
		PHPWriteTimeout:        60 * time.Second,
		PHPCheckInterval:       10 * time.Second,
		ReadHeaderTimeout:      10 * time.Second,
		ReadTimeout:            60 * time.Second,
		WriteTimeout:           0,
		SendTimeout:            60 * time.Second,
		IdleTimeout:            75 * time.Second,
		ShutdownTimeout:        30 * time.Second,
		MaxHeaderBytes:         64 << 10,
		LogLevel:               "info",
		LogFormat:              "json",
		AccessLog:              true,
		Session: SessionConfig{
			Enabled: true, Cookie: "sessionid", Keys: []string{testKey}, SameSite: "lax",
			IdleTimeout: 2 * time.Hour, MaxAge: 336 * time.Hour,
			Lock: "strict", LockTimeout: 10 * time.Second, LockLease: time.Minute,
			RedisPrefix: "sessiongate:", RedisTimeout: 500 * time.Millisecond, RedisCoalesce: "auto",
		},
		Django: DjangoConfig{Timeout: 60 * time.Second, DialTimeout: 3 * time.Second, CheckInterval: 10 * time.Second},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
	if c.IndexScript() != "/index.php" || c.TLS() {
		t.Errorf("IndexScript %q TLS %v", c.IndexScript(), c.TLS())
	}
}

func TestEveryVariable(t *testing.T) {
	static := t.TempDir()
	private := t.TempDir()
	cert, key := testtls.Pair(t)
	users := writeHtpasswd(t, "bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n")
	env := []string{
		"SESSIONGATE_LISTEN=127.0.0.1:8443",
		"SESSIONGATE_PHP_FPM=127.0.0.1:9000, unix:/run/php/fpm.sock ,[::1]:9001",
		"SESSIONGATE_DOCUMENT_ROOT=/srv/site",
		"SESSIONGATE_STATIC_ROOT=" + static,
		"SESSIONGATE_INDEX=public/app.php",
		"SESSIONGATE_FOLLOW_SYMLINKS=" + static + ", /usr",
		"SESSIONGATE_MAX_BODY=512K",
		"SESSIONGATE_REQUEST_BUFFERING=off",
		"SESSIONGATE_RESPONSE_BUFFERING=off",
		"SESSIONGATE_RESPONSE_BUFFERING_LIMIT=200m",
		"SESSIONGATE_COMPRESS=yes", // off would refuse SESSIONGATE_PRECOMPRESSED
		"SESSIONGATE_COMPRESS_CACHE=1m",
		"SESSIONGATE_PRECOMPRESSED=/static/,/build/",
		"SESSIONGATE_PHP_MAX_CONNS=3",
		"SESSIONGATE_PHP_DIAL_TIMEOUT=250ms",
		"SESSIONGATE_PHP_TIMEOUT=2m",
		"SESSIONGATE_PHP_WRITE_TIMEOUT=5s",
		"SESSIONGATE_PHP_CHECK_INTERVAL=0",
		"SESSIONGATE_READ_HEADER_TIMEOUT=4s",
		"SESSIONGATE_READ_TIMEOUT=0",
		"SESSIONGATE_WRITE_TIMEOUT=1h",
		"SESSIONGATE_SEND_TIMEOUT=90s",
		"SESSIONGATE_IDLE_TIMEOUT=1s",
		"SESSIONGATE_SHUTDOWN_TIMEOUT=7s",
		"SESSIONGATE_MAX_HEADER_BYTES=64k",
		"SESSIONGATE_TRUSTED_PROXIES=10.0.0.0/8, 192.168.1.7,fd00::/8,::ffff:172.16.0.0/108",
		"SESSIONGATE_ADMIN_LISTEN=127.0.0.1:9090",
		"SESSIONGATE_ADMIN_PPROF=on",
		"SESSIONGATE_LOG_LEVEL=debug",
		"SESSIONGATE_LOG_FORMAT=text",
		"SESSIONGATE_ACCESS_LOG=off",
		"SESSIONGATE_TLS_CERT=" + cert,
		"SESSIONGATE_TLS_KEY=" + key,
		"SESSIONGATE_HTTP_REDIRECT_LISTEN=127.0.0.1:8080",
		"SESSIONGATE_HSTS=max-age=63072000; includeSubDomains",
		"SESSIONGATE_STATIC_MAX_AGE=720h",
		"SESSIONGATE_INTERNAL_PATHS=/files/, /protected/=" + private,
		"SESSIONGATE_SERVER_NAMES=Example.com.,*.example.com,2001:db8::1",
		"SESSIONGATE_CANONICAL_NAME=example.com",
		"SESSIONGATE_RATE_LIMITS=/wp-login.php 10r/m burst=5, /api/  20r/s",
		"SESSIONGATE_ERROR_PAGES=502 503 504=/50x.html, 404 =/errors/404.html",
		"SESSIONGATE_RESTRICTED_PATHS=/phpmyadmin/ 10.0.0.0/8 192.168.1.7,/xmlrpc.php none",
		"SESSIONGATE_BASIC_AUTH=/staging/ " + users,
		"SESSIONGATE_RESPONSE_HEADERS=X-Frame-Options: SAMEORIGIN\n /fonts/ Access-Control-Allow-Origin: *\n",
		"SESSIONGATE_HIDE_HEADERS=X-Powered-By, x-generator",
		"SESSIONGATE_REDIRECTS=/old-page /new-page,/blog/ https://blog.example.com/ 302",
		"SESSIONGATE_SESSIONS=on",
		"SESSIONGATE_SESSION_COOKIE=sid",
		"SESSIONGATE_SESSION_KEYS=" + testKey + ",old-key-0123456789abcdef0123456789ab",
		"SESSIONGATE_SESSION_DEV=off",
		"SESSIONGATE_SESSION_COOKIE_DOMAIN=example.com",
		"SESSIONGATE_SESSION_COOKIE_SECURE=on",
		"SESSIONGATE_SESSION_ENCRYPT=on",
		"SESSIONGATE_SESSION_COOKIE_SAMESITE=none",
		"SESSIONGATE_SESSION_EXPIRE_AT_BROWSER_CLOSE=on",
		"SESSIONGATE_SESSION_IDLE_TIMEOUT=30m",
		"SESSIONGATE_SESSION_MAX_AGE=24h",
		"SESSIONGATE_SESSION_LOCK=merge",
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=3s",
		"SESSIONGATE_SESSION_LOCK_LEASE=20s",
		"SESSIONGATE_REDIS_URL=redis://:pw@127.0.0.1:6379/0",
		"SESSIONGATE_REDIS_PREFIX=sg:",
		"SESSIONGATE_REDIS_TIMEOUT=250ms",
		"SESSIONGATE_REDIS_WAIT_REPLICAS=1",
		"SESSIONGATE_REDIS_COALESCE=off",
		"SESSIONGATE_PHP_PREPEND=/srv/sessiongate/prepend.php",
		"SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000, unix:/run/gunicorn.sock",
		"SESSIONGATE_DJANGO_PATHS=/admin/,/accounts/ ,/static/admin/",
		"SESSIONGATE_NO_PHP_PATHS=/public/uploads/, /media",
		"SESSIONGATE_DJANGO_TIMEOUT=90s",
		"SESSIONGATE_DJANGO_DIAL_TIMEOUT=500ms",
		"SESSIONGATE_DJANGO_CHECK_INTERVAL=30s",
	}
	c, err := Load(env)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen:                 "127.0.0.1:8443",
		PHPFPM:                 []string{"127.0.0.1:9000", "unix:/run/php/fpm.sock", "[::1]:9001"},
		DocumentRoot:           "/srv/site",
		StaticRoot:             static,
		Index:                  "public/app.php",
		FollowSymlinks:         []string{static, "/usr"},
		NoPHPPaths:             []string{"/public/uploads/", "/media"},
		InternalPaths:          []string{"/files/", "/protected/=" + private},
		ServerNames:            []string{"Example.com.", "*.example.com", "2001:db8::1"},
		CanonicalName:          "example.com",
		RateLimitSpecs:         []string{"/wp-login.php 10r/m burst=5", "/api/  20r/s"},
		ErrorPageSpecs:         []string{"502 503 504=/50x.html", "404 =/errors/404.html"},
		RestrictedPathSpecs:    []string{"/phpmyadmin/ 10.0.0.0/8 192.168.1.7", "/xmlrpc.php none"},
		BasicAuthSpecs:         []string{"/staging/ " + users},
		ResponseHeaderSpecs:    Lines{"X-Frame-Options: SAMEORIGIN", "/fonts/ Access-Control-Allow-Origin: *"},
		HideHeaders:            []string{"X-Powered-By", "x-generator"},
		RedirectSpecs:          []string{"/old-page /new-page", "/blog/ https://blog.example.com/ 302"},
		MaxBody:                512 << 10,
		RequestBuffering:       false,
		ResponseBufferingLimit: 200 << 20,
		Compress:               true,
		CompressCache:          1 << 20,
		Precompressed:          []string{"/static/", "/build/"},
		StaticMaxAge:           720 * time.Hour,
		PHPMaxConns:            3,
		PHPDialTimeout:         250 * time.Millisecond,
		PHPTimeout:             2 * time.Minute,
		PHPWriteTimeout:        5 * time.Second,
		ReadHeaderTimeout:      4 * time.Second,
		ReadTimeout:            0,
		WriteTimeout:           time.Hour,
		SendTimeout:            90 * time.Second,
		IdleTimeout:            time.Second,
		ShutdownTimeout:        7 * time.Second,
		MaxHeaderBytes:         64 << 10,
		TrustedProxies: Prefixes{
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("192.168.1.7/32"),
			netip.MustParsePrefix("fd00::/8"),
			netip.MustParsePrefix("172.16.0.0/12"),
		},
		AdminListen: "127.0.0.1:9090",
		AdminPprof:  true,
		LogLevel:    "debug",
		LogFormat:   "text",
		AccessLog:   false,
		TLSCert:     cert,
		TLSKey:      key,
		HSTS:        "max-age=63072000; includeSubDomains",

		HTTPRedirectListen: "127.0.0.1:8080",
		Session: SessionConfig{
			Enabled: true, Cookie: "sid", Keys: []string{testKey, "old-key-0123456789abcdef0123456789ab"},
			Domain: "example.com", Secure: true, Encrypt: true, SameSite: "none", BrowserClose: true,
			IdleTimeout: 30 * time.Minute, MaxAge: 24 * time.Hour,
			Lock: "merge", LockTimeout: 3 * time.Second, LockLease: 20 * time.Second,
			RedisURL: "redis://:pw@127.0.0.1:6379/0", RedisPrefix: "sg:", RedisTimeout: 250 * time.Millisecond, RedisWaitReplicas: 1, RedisCoalesce: "off",
			PHPPrepend: "/srv/sessiongate/prepend.php",
		},
		Django: DjangoConfig{
			URL:     []string{"http://127.0.0.1:8000", "unix:/run/gunicorn.sock"},
			Paths:   []string{"/admin/", "/accounts/", "/static/admin/"},
			Timeout: 90 * time.Second, DialTimeout: 500 * time.Millisecond, CheckInterval: 30 * time.Second,
		},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("\n got %+v\nwant %+v", *c, want)
	}
	if c.IndexScript() != "/public/app.php" || !c.TLS() {
		t.Errorf("IndexScript %q TLS %v", c.IndexScript(), c.TLS())
	}
	// Every variable of Config is exercised here.
	set := map[string]bool{}
	for _, kv := range env {
		set[strings.SplitN(kv, "=", 2)[0]] = true
	}
	for _, v := range Variables() {
		if !set[v.Name] {
			t.Errorf("variable %s not covered by this test", v.Name)
		}
	}
}

func TestFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for value, want := range map[string]string{
		"any,/usr":    "cannot be combined",
		"usr/share":   "must be root, any or absolute directories",
		dir + "/nope": "does not exist",
		file:          "is not a directory",
		"Root,/usr":   "cannot be combined",
	} {
		_, err := Load(append(base(t), "SESSIONGATE_FOLLOW_SYMLINKS="+value))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_FOLLOW_SYMLINKS"}) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want SESSIONGATE_FOLLOW_SYMLINKS with %q", value, err, want)
		}
	}
	for value, want := range map[string]struct {
		anywhere bool
		dirs     []string
	}{
		"root":         {false, nil},
		"any":          {true, nil},
		dir + ", /usr": {false, []string{dir, "/usr"}},
	} {
		c, err := Load(append(base(t), "SESSIONGATE_FOLLOW_SYMLINKS="+value))
		if err != nil {
			t.Fatalf("%q: %v", value, err)
		}
		if a, d := c.SymlinkTargets(); a != want.anywhere || !reflect.DeepEqual(d, want.dirs) {
			t.Errorf("%q: SymlinkTargets() = %v %v", value, a, d)
		}
	}
}

func TestNoPHPPathsBadValues(t *testing.T) {
	for _, c := range []struct {
		value, index, want string
	}{
		{"uploads/", "", "starting with /"},
		{"/a/../uploads/", "", "no query"},
		{"/up%2floads/", "", "no query"},
		{"/uploads//", "", "no query"},
		{"/", "", "every script"},
		{"/uploads,/uploads/", "", "listed twice"},
		{"/uploads/,,/media/", "", "empty"},
		// The front controller cannot live in such a directory.
		{"/public", "public/index.php", "front controller /public/index.php"},
	} {
		env := base(t)
		if c.index != "" {
			env = append(env, "SESSIONGATE_INDEX="+c.index)
		}
		_, err := Load(append(env, "SESSIONGATE_NO_PHP_PATHS="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_NO_PHP_PATHS"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SESSIONGATE_NO_PHP_PATHS=%s: got %v, want an error naming only it, saying %q", c.value, err, c.want)
		}
	}
}

// Keyword values are read in any case, as booleans, SAMESITE and LOG_*
// always were: ON, STRICT, ANY and OFF (typed in capitals, or from a
// configuration tool that writes them so) were refused. Leading and
// trailing spaces go too (a `\r` of an env file written on Windows).
func TestKeywordsInAnyCase(t *testing.T) {
	c, err := Load(append(base(t),
		"SESSIONGATE_REDIS_COALESCE=ON",
		"SESSIONGATE_SESSION_LOCK=Merge",
		"SESSIONGATE_FOLLOW_SYMLINKS=ANY",
		"SESSIONGATE_INDEX=OFF",
		"SESSIONGATE_LOG_LEVEL=DEBUG\r",
		"SESSIONGATE_LOG_FORMAT= Text",
		"SESSIONGATE_SESSION_COOKIE_SAMESITE=STRICT",
	))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Session.Coalesce() {
		t.Error("SESSIONGATE_REDIS_COALESCE=ON: Coalesce() is false")
	}
	if c.Session.Lock != "merge" {
		t.Errorf("SESSIONGATE_SESSION_LOCK=Merge: Lock = %q, want merge (the session manager knows only the lower-case mode)", c.Session.Lock)
	}
	if anywhere, _ := c.SymlinkTargets(); !anywhere {
		t.Error("SESSIONGATE_FOLLOW_SYMLINKS=ANY: not anywhere")
	}
	if c.IndexScript() != "" {
		t.Errorf("SESSIONGATE_INDEX=OFF: IndexScript = %q, want none", c.IndexScript())
	}
	if c.LogLevel != "debug" || c.LogFormat != "text" || c.Session.SameSite != "strict" {
		t.Errorf("LOG_LEVEL %q, LOG_FORMAT %q, SAMESITE %q: want them as the keywords", c.LogLevel, c.LogFormat, c.Session.SameSite)
	}
	// A directory list keeps its case: paths are case-sensitive.
	dir := filepath.Join(t.TempDir(), "Shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err = Load(append(base(t), "SESSIONGATE_FOLLOW_SYMLINKS="+dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, dirs := c.SymlinkTargets(); !slices.Equal(dirs, []string{dir}) {
		t.Errorf("SymlinkTargets dirs = %q, want %q", dirs, dir)
	}
}

func TestIndexOff(t *testing.T) {
	c, err := Load(append(base(t), "SESSIONGATE_INDEX=off"))
	if err != nil {
		t.Fatal(err)
	}
	if c.IndexScript() != "" {
		t.Errorf("IndexScript = %q", c.IndexScript())
	}
}

// TestAllProblemsInOneError sets many bad variables at once: one error must
// name each, in `gateway -h` order, with the offending value.
func TestAllProblemsInOneError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	env := []string{
		"SESSIONGATE_LISTEN=nope",
		"SESSIONGATE_PHP_FPM=127.0.0.1:9000,localhost,unix:relative.sock",
		"SESSIONGATE_DOCUMENT_ROOT=relative/path",
		"SESSIONGATE_STATIC_ROOT=" + file,
		"SESSIONGATE_INDEX=../index.php",
		"SESSIONGATE_MAX_BODY=12x",
		"SESSIONGATE_PHP_MAX_CONNS=0",
		"SESSIONGATE_PHP_DIAL_TIMEOUT=3",
		"SESSIONGATE_PHP_TIMEOUT=-1s",
		"SESSIONGATE_READ_HEADER_TIMEOUT=0",
		"SESSIONGATE_MAX_HEADER_BYTES=1",
		"SESSIONGATE_TRUSTED_PROXIES=10.0.0.0/8,example.com",
		"SESSIONGATE_ADMIN_LISTEN=nope",
		"SESSIONGATE_LOG_LEVEL=loud",
		"SESSIONGATE_LOG_FORMAT=xml",
		"SESSIONGATE_ACCESS_LOG=maybe",
		"SESSIONGATE_TLS_CERT=/nonexistent.pem",
		"SESSIONGATE_IDLE_TIMEOUT=forever",
		"SESSIONGATE_SESSION_KEYS=tooshort-secret-value",
		"SESSIONGATE_SESSION_LOCK=maybe",
	}
	_, err := Load(env)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load = %v, want *Error", err)
	}
	want := []string{
		"SESSIONGATE_LISTEN", "SESSIONGATE_PHP_FPM", "SESSIONGATE_DOCUMENT_ROOT",
		"SESSIONGATE_STATIC_ROOT", "SESSIONGATE_INDEX", "SESSIONGATE_MAX_BODY",
		"SESSIONGATE_PHP_MAX_CONNS", "SESSIONGATE_PHP_DIAL_TIMEOUT", "SESSIONGATE_PHP_TIMEOUT",
		"SESSIONGATE_READ_HEADER_TIMEOUT", "SESSIONGATE_IDLE_TIMEOUT", "SESSIONGATE_MAX_HEADER_BYTES",
		"SESSIONGATE_TRUSTED_PROXIES", "SESSIONGATE_ADMIN_LISTEN", "SESSIONGATE_LOG_LEVEL",
		"SESSIONGATE_LOG_FORMAT", "SESSIONGATE_ACCESS_LOG", "SESSIONGATE_TLS_KEY",
		"SESSIONGATE_SESSION_KEYS", "SESSIONGATE_SESSION_LOCK",
	}
	if got := cerr.Vars(); !reflect.DeepEqual(got, want) {
		t.Errorf("bad vars:\n got %v\nwant %v\nmessage:\n%v", got, want, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "tooshort-secret-value") {
		t.Errorf("secret echoed:\n%s", msg)
	}
	for _, frag := range []string{`SESSIONGATE_MAX_BODY="12x"`, `"localhost" is not host:port`, "is not a directory", "must be an absolute path", `SESSIONGATE_LOG_LEVEL="loud"`,
		// Every spelling taken is named, not only the two the help uses.
		`SESSIONGATE_ACCESS_LOG="maybe": must be on or off (or true/false, yes/no, 1/0)`} {
		if !strings.Contains(msg, frag) {
			t.Errorf("message lacks %q:\n%s", frag, msg)
		}
	}
}

func TestRequired(t *testing.T) {
	_, err := Load([]string{"SESSIONGATE_DOCUMENT_ROOT="})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load = %v", err)
	}
	if got := cerr.Vars(); !reflect.DeepEqual(got, []string{"SESSIONGATE_PHP_FPM", "SESSIONGATE_DOCUMENT_ROOT", "SESSIONGATE_SESSION_KEYS"}) {
		t.Errorf("vars = %v\n%v", got, err)
	}
	if !strings.Contains(err.Error(), "SESSIONGATE_PHP_FPM: required, not set") ||
		!strings.Contains(err.Error(), "SESSIONGATE_DOCUMENT_ROOT: required, but set to the empty string") {
		t.Errorf("message:\n%v", err)
	}
}

func TestStaticRootDefaultMustExist(t *testing.T) {
	_, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=/nonexistent/site"})
	if err == nil || !strings.Contains(err.Error(), "SESSIONGATE_DOCUMENT_ROOT=\"/nonexistent/site\": does not exist") {
		t.Errorf("err = %v", err)
	}
	// php-fpm may see another tree than the gateway: a missing DOCUMENT_ROOT
	// is fine when STATIC_ROOT exists.
	if _, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=/nonexistent/site", "SESSIONGATE_STATIC_ROOT=" + t.TempDir(), "SESSIONGATE_SESSIONS=off"}); err != nil {
		t.Error(err)
	}
}

func TestTLSBothOrNeither(t *testing.T) {
	cert, key := testtls.Pair(t)
	for _, tc := range []struct {
		env []string
		bad string
	}{
		{[]string{"SESSIONGATE_TLS_CERT=" + cert}, "SESSIONGATE_TLS_KEY"},
		{[]string{"SESSIONGATE_TLS_KEY=" + key}, "SESSIONGATE_TLS_CERT"},
	} {
		_, err := Load(append(base(t), tc.env...))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{tc.bad}) {
			t.Errorf("%v: err = %v, want only %s", tc.env, err, tc.bad)
		}
	}
}

// A file that is read but holds the wrong thing is reported under the
// variable that names it: a key path pointing at the certificate must not
// send the operator to fix SESSIONGATE_TLS_CERT. A certificate and key that
// are each fine but do not belong together name both, since either file may
// be the wrong one.
func TestTLSWrongContentNamesItsVariable(t *testing.T) {
	cert, key := testtls.Pair(t)
	_, otherKey := testtls.Pair(t)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	both := []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_TLS_KEY"}
	for _, tc := range []struct {
		cert, key string
		want      []string
	}{
		{cert, cert, []string{"SESSIONGATE_TLS_KEY"}},
		{cert, empty, []string{"SESSIONGATE_TLS_KEY"}},
		{key, key, []string{"SESSIONGATE_TLS_CERT"}},
		{empty, key, []string{"SESSIONGATE_TLS_CERT"}},
		{key, cert, both},
		{cert, otherKey, both},
	} {
		_, err := Load(append(base(t), "SESSIONGATE_TLS_CERT="+tc.cert, "SESSIONGATE_TLS_KEY="+tc.key))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), tc.want) {
			t.Errorf("cert %s key %s: err = %v, want exactly %v", filepath.Base(tc.cert), filepath.Base(tc.key), err, tc.want)
		}
	}
}

// encryptedKeys are passphrase-protected keys (passphrase "x") as openssl
// writes them: PKCS#8 (openssl pkey -aes256) and the traditional format
// (openssl ec -aes256).
var encryptedKeys = map[string]string{
	"pkcs8": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAh/GUmG//xwNgICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEJILNu7pZW5VgyTGAmk6JFkEgZDn
eG0Y2Yje/VB+STgLwn1pxn9PpTGRH2GycHgoGETnEb8EzElP7h2mbovdAgp8+v84
189nQN7COy2ul9kaOr2SAakaheAFgrm8JRs8QVwkbKsMVrv28b5iRCfAP9PtIq9o
Hx5/1fRMyKY0By8ks3LZRzkxHo9IJSTs6A2MJA5yEXgrjDGtVaOkhgK3f02Y1ag=
-----END ENCRYPTED PRIVATE KEY-----
`,
	"traditional": `-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,A8B10F9919AB905552074B95A25F095F

W/vf0SLNc6Ym+jyEV7GHSN31Y8D8Va4GFB4hD8Cand6tfSZ2UhmfWT22gYeak7tX
5piNU54LtUeLpeJ4MMuMM8dx5SbN6AznGYoCu3tYJrLZHhXO0wIpAFr5jQepXz+u
YIs5OwoZD6/myTZXI8Hoz+jvGkV7btSfHfzkCEQrxLc=
-----END EC PRIVATE KEY-----
`,
}

// An encrypted key was reported as "failed to parse private key" under
// both variables, sending the operator to the certificate as well and
// never saying why; nginx at least says it could not get a password. It
// is reported under SESSIONGATE_TLS_KEY alone, as encrypted.
func TestTLSEncryptedKeyNamesTheKey(t *testing.T) {
	cert, _ := testtls.Pair(t)
	for name, pemText := range encryptedKeys {
		key := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(key, []byte(pemText), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(append(base(t), "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_TLS_KEY"}) || !strings.Contains(err.Error(), "encrypted") {
			t.Errorf("%s: err = %v, want SESSIONGATE_TLS_KEY alone, saying the key is encrypted", name, err)
		}
	}
}

// TestTLSChainInTheWrongOrder: a certificate file with its chain first
// and the site's certificate after it (cat chain.pem cert.pem) was
// refused as "private key does not match public key" under both
// variables, which sent the operator to a key that was right. It names
// the certificate file and says the site's certificate must come first.
func TestTLSChainInTheWrongOrder(t *testing.T) {
	cert, _, key := testtls.Chain(t)
	b, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	leaf, rest := pem.Decode(b)
	reversed := filepath.Join(t.TempDir(), "reversed.pem")
	if err := os.WriteFile(reversed, append(rest, pem.EncodeToMemory(leaf)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(append(base(t), "SESSIONGATE_TLS_CERT="+reversed, "SESSIONGATE_TLS_KEY="+key))
	var cerr *Error
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_TLS_CERT"}) || !strings.Contains(err.Error(), "first") {
		t.Errorf("chain before the site's certificate: err = %v, want SESSIONGATE_TLS_CERT alone, saying the site's certificate comes first", err)
	}
}

// A certificate or key file that cannot be read is reported under its own
// variable, and both when both are missing, so one start-up attempt shows
// every path to fix.
func TestTLSUnreadableFileNamesItsVariable(t *testing.T) {
	cert, key := testtls.Pair(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + missing}, []string{"SESSIONGATE_TLS_KEY"}},
		{[]string{"SESSIONGATE_TLS_CERT=" + missing, "SESSIONGATE_TLS_KEY=" + key}, []string{"SESSIONGATE_TLS_CERT"}},
		{[]string{"SESSIONGATE_TLS_CERT=" + missing, "SESSIONGATE_TLS_KEY=" + missing + "2"}, []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_TLS_KEY"}},
	} {
		_, err := Load(append(base(t), tc.env...))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), tc.want) {
			t.Errorf("%v: err = %v, want exactly %v", tc.env, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%v: message does not say the file is missing:\n%v", tc.env, err)
		}
	}
}

func TestUnknownVariableWarns(t *testing.T) {
	c, err := Load(append(base(t), "SESSIONGATE_LISTN=:9", "OTHER=1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "SESSIONGATE_LISTN") {
		t.Errorf("warnings = %v", c.Warnings)
	}
}

// TestUnknownVariableNamedWithTheErrors: the typo warning matters most when
// the misspelt variable is a required one, and then the start stops with
// "required, not set" and no warning was ever given: the message must
// name the unknown variable too.
func TestUnknownVariableNamedWithTheErrors(t *testing.T) {
	env := []string{"SESSIONGATE_PHP_FMP=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_SESSION_KEYS=" + testKey}
	_, err := Load(env)
	var e *Error
	if !errors.As(err, &e) || !slices.Equal(e.Vars(), []string{"SESSIONGATE_PHP_FPM"}) {
		t.Fatalf("got %v, want SESSIONGATE_PHP_FPM refused", err)
	}
	if !strings.Contains(err.Error(), "SESSIONGATE_PHP_FMP") {
		t.Errorf("the message does not name the unknown SESSIONGATE_PHP_FMP:\n%v", err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1, "1k": 1024, "1K": 1024, "2m": 2 << 20, "3G": 3 << 30, "007": 7} {
		got, err := parseByteSize(in)
		if err != nil || int64(got.(ByteSize)) != want {
			t.Errorf("parseByteSize(%q) = %v, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "+1", "1.5m", "1 m", "1t", "0x10"} {
		if got, err := parseByteSize(in); err != errByteSize {
			t.Errorf("parseByteSize(%q) = %v, %v; want %v", in, got, err, errByteSize)
		}
	}
	// Well-formed but too big for a byte count: the message says so.
	for _, in := range []string{"99999999999999999999", "9000000000g", "8589934592g"} {
		if got, err := parseByteSize(in); err != errByteSizeTooLarge {
			t.Errorf("parseByteSize(%q) = %v, %v; want %v", in, got, err, errByteSizeTooLarge)
		}
	}
	if got, err := parseByteSize("8589934591g"); err != nil || int64(got.(ByteSize)) != 8589934591<<30 {
		t.Errorf("parseByteSize(8589934591g) = %v, %v", got, err)
	}
	for n, want := range map[ByteSize]string{0: "0", 1 << 20: "1m", 512 << 10: "512k", 3 << 30: "3g", 1000: "1000"} {
		if n.String() != want {
			t.Errorf("%d.String() = %q, want %q", int64(n), n.String(), want)
		}
	}
}

func TestPrefixesContains(t *testing.T) {
	ps, err := parsePrefixes("10.0.0.0/8,192.168.1.7,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	p := ps.(Prefixes)
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "192.168.1.7": true, "192.168.1.8": false,
		"::ffff:10.0.0.1": true, "2001:db8::1": true, "2001:db9::1": false,
	} {
		if got := p.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v", addr, got)
		}
	}
	// ::ffff:10.0.0.0/8 was read as 0.0.0.0/0: every IPv4 client trusted.
	for _, bad := range []string{"10.0.0.0/33", "fe80::1%eth0", "host", "", "::ffff:10.0.0.0/8", "::ffff:0:0/95"} {
		if _, err := parsePrefixes(bad); err == nil {
			t.Errorf("parsePrefixes(%q) accepted", bad)
		}
	}
}

// secretConfig is a stand-in for the secret variables later issues add
// (session keys, a Redis URL with a password): the machinery must never put
// their values in a message or in the start-up log.
type secretConfig struct {
	Keys  []string `env:"SESSIONGATE_TEST_KEYS,notEmpty" secret:"true" help:"k"`
	Limit int      `env:"SESSIONGATE_TEST_LIMIT" secret:"true" help:"l"`
	Plain int      `env:"SESSIONGATE_TEST_PLAIN" help:"p"`
}

func TestSecretNeverEchoed(t *testing.T) {
	const pw = "hunter2-Pa55word"
	env := EnvironMap([]string{"SESSIONGATE_TEST_LIMIT=" + pw, "SESSIONGATE_TEST_PLAIN=notanumber"})
	var c secretConfig
	ps := finish(&c, parse(&c, env), env)
	msg := (&Error{Problems: ps}).Error()
	if strings.Contains(msg, pw) || strings.Contains(msg, "hunter") {
		t.Errorf("secret value in message:\n%s", msg)
	}
	for _, frag := range []string{"SESSIONGATE_TEST_KEYS: required", "SESSIONGATE_TEST_LIMIT: not an integer", `SESSIONGATE_TEST_PLAIN="notanumber": not an integer`} {
		if !strings.Contains(msg, frag) {
			t.Errorf("message lacks %q:\n%s", frag, msg)
		}
	}

	// Start-up log: redacted.
	c2 := secretConfig{Keys: []string{pw}}
	var buf bytes.Buffer
	vars := describe(&c2)
	if !vars[0].Secret {
		t.Fatal("secret tag not read")
	}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", logValue(&c2))
	if strings.Contains(buf.String(), pw) || !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("log: %s", buf.String())
	}
}

func TestLogValue(t *testing.T) {
	c, err := Load(append(base(t), "SESSIONGATE_TRUSTED_PROXIES=10.0.0.0/8"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
	for _, frag := range []string{`"SESSIONGATE_MAX_BODY":"1m"`, `"SESSIONGATE_PHP_FPM":"127.0.0.1:9000"`, `"SESSIONGATE_ACCESS_LOG":"on"`, `"SESSIONGATE_TRUSTED_PROXIES":"10.0.0.0/8"`} {
		if !strings.Contains(buf.String(), frag) {
			t.Errorf("log lacks %s: %s", frag, buf.String())
		}
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHelp(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, v := range Variables() {
		if v.Help == "" {
			t.Errorf("%s has no help tag", v.Name)
		}
		if !strings.HasPrefix(v.Name, Prefix) {
			t.Errorf("%s lacks the %s prefix", v.Name, Prefix)
		}
		if !strings.Contains(out, "  "+v.Name+"  ") || !strings.Contains(out, v.Help) {
			t.Errorf("help lacks %s", v.Name)
		}
		if v.HasDefault && !strings.Contains(out, v.Name+`  (default "`+v.Default+`")`) {
			t.Errorf("help lacks the default of %s", v.Name)
		}
	}
	if len(Variables()) < 23 {
		t.Errorf("only %d variables", len(Variables()))
	}
	// A variable without a default is not optional when its help says when
	// it is required (SESSIONGATE_SESSION_KEYS): the label must not say so.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "SESSIONGATE_SESSION_KEYS  ") && strings.Contains(line, "optional") {
			t.Errorf("help calls a required-unless variable optional: %q", line)
		}
	}
}

// TestEveryFieldTypeHasParser keeps caarlos0/env's own parsers (whose errors
// echo values) out of reach.
func TestEveryFieldTypeHasParser(t *testing.T) {
	for _, v := range Variables() {
		typ := v.value.Type()
		if _, ok := parsers[typ]; !ok && typ.Kind() != reflect.String {
			t.Errorf("%s: type %s has no parser in config.parsers", v.Name, typ)
		}
	}
	// Defaults must parse.
	for _, v := range Variables() {
		if f, ok := parsers[v.value.Type()]; ok && v.HasDefault {
			if _, err := f(v.Default); err != nil {
				t.Errorf("%s: default %q: %v", v.Name, v.Default, err)
			}
		}
	}
}

// A value that does not parse names its own variable, and only it. The
// fallback for a field without a parser of ours found the variable by Go
// field name, and Config.IdleTimeout and SessionConfig.IdleTimeout share
// one: SESSIONGATE_SESSION_IDLE_TIMEOUT=2hours also reported
// "SESSIONGATE_IDLE_TIMEOUT: cannot parse a value of type time.Duration",
// a variable the operator had not set, first in the message.
func TestUnparsableValueNamesOnlyItsVariable(t *testing.T) {
	for _, v := range Variables() {
		if _, ok := parsers[v.value.Type()]; !ok {
			continue
		}
		bad := "x!"
		if _, err := parsers[v.value.Type()](bad); err == nil {
			continue // a list of strings: any entry parses
		}
		_, err := Load(append(base(t), v.Name+"="+bad))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{v.Name}) {
			t.Errorf("%s=%s: %v, want an error naming %s alone", v.Name, bad, err, v.Name)
		}
	}
}

// The profiler lives on the admin listener only: asking for it without one
// is a mistake to report, not to ignore.
func TestAdminPprofNeedsAdminListener(t *testing.T) {
	_, err := Load(append(base(t), "SESSIONGATE_ADMIN_PPROF=on"))
	var cerr *Error
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_ADMIN_PPROF"}) ||
		!strings.Contains(err.Error(), "needs SESSIONGATE_ADMIN_LISTEN") {
		t.Fatalf("Load = %v", err)
	}
	cfg, err := Load(append(base(t), "SESSIONGATE_ADMIN_PPROF=on", "SESSIONGATE_ADMIN_LISTEN=127.0.0.1:9090"))
	if err != nil || !cfg.AdminPprof {
		t.Fatalf("Load = %+v, %v", cfg, err)
	}
}

// "//index.php" survived the clean-path check (path.Clean keeps a leading
// slash) and became the front controller "//index.php", which the router
// never finds: every unmatched URL answered 404. So did " index.php".
func TestIndexMustBeRelative(t *testing.T) {
	for _, v := range []string{"//index.php", "///index.php", "//public/app.php", " index.php", "index.php\r"} {
		_, err := Load(append(base(t), "SESSIONGATE_INDEX="+v))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_INDEX"}) {
			t.Errorf("SESSIONGATE_INDEX=%s: got %v", v, err)
		}
	}
	c, err := Load(append(base(t), "SESSIONGATE_INDEX=/index.php"))
	if err != nil || c.IndexScript() != "/index.php" {
		t.Fatalf("SESSIONGATE_INDEX=/index.php: %v", err)
	}
}

// The admin listener must not take the public listener's socket; port 0
// (a free port each) never clashes, and a wildcard host clashes with any
// host on the same port.
func TestAdminListenClash(t *testing.T) {
	for _, tc := range []struct {
		listen, admin string
		clash         bool
	}{
		{":8080", ":8080", true},
		{":8080", "0.0.0.0:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", ":8080", true},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{":8080", ":8081", false},
		{":0", ":0", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		// The same address spelt two ways, as the kernel sees it: Go
		// listens on a name's first IPv4 address (localhost is 127.0.0.1
		// in /etc/hosts), and on an IPv4-mapped address as IPv4.
		{"localhost:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "LOCALHOST:8080", true},
		{"[::ffff:127.0.0.1]:8080", "127.0.0.1:8080", true},
		{"[::1]:8080", "[0:0::1]:8080", true},
		{"127.0.0.1:8080", "127.0.0.1:08080", true},
		{"localhost:8080", "127.0.0.2:8080", false},
		{"localhost:8080", "localhost:8081", false},
	} {
		_, err := Load(append(base(t), "SESSIONGATE_LISTEN="+tc.listen, "SESSIONGATE_ADMIN_LISTEN="+tc.admin))
		var cerr *Error
		switch {
		case tc.clash && (!errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_ADMIN_LISTEN"})):
			t.Errorf("%s and %s: got %v, want a clash", tc.listen, tc.admin, err)
		case !tc.clash && err != nil:
			t.Errorf("%s and %s: %v", tc.listen, tc.admin, err)
		}
	}
}

// The redirect listener sends visitors to HTTPS: without TLS there is none
// to send them to. It must not take the public or admin listener's socket,
// and a bad address is named like the other listeners'. Each problem is
// reported under SESSIONGATE_HTTP_REDIRECT_LISTEN alone.
func TestHTTPRedirectListen(t *testing.T) {
	cert, key := testtls.Pair(t)
	tls := []string{"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key}
	for _, tc := range []struct {
		name string
		env  []string
		msg  string // "" when valid
	}{
		{"with TLS", append(slices.Clone(tls), "SESSIONGATE_LISTEN=:443", "SESSIONGATE_HTTP_REDIRECT_LISTEN=:80"), ""},
		{"other host, same port", append(slices.Clone(tls), "SESSIONGATE_LISTEN=127.0.0.1:443", "SESSIONGATE_HTTP_REDIRECT_LISTEN=127.0.0.2:443"), ""},
		{"port 0 twice", append(slices.Clone(tls), "SESSIONGATE_LISTEN=127.0.0.1:0", "SESSIONGATE_HTTP_REDIRECT_LISTEN=127.0.0.1:0"), ""},
		{"without TLS", []string{"SESSIONGATE_LISTEN=:443", "SESSIONGATE_HTTP_REDIRECT_LISTEN=:80"}, "needs SESSIONGATE_TLS_CERT"},
		{"without TLS, key only", []string{"SESSIONGATE_TLS_KEY=" + key, "SESSIONGATE_HTTP_REDIRECT_LISTEN=:80"}, "needs SESSIONGATE_TLS_CERT"},
		{"same as LISTEN", append(slices.Clone(tls), "SESSIONGATE_LISTEN=:443", "SESSIONGATE_HTTP_REDIRECT_LISTEN=:443"), "must differ from SESSIONGATE_LISTEN"},
		{"wildcard LISTEN", append(slices.Clone(tls), "SESSIONGATE_LISTEN=:8443", "SESSIONGATE_HTTP_REDIRECT_LISTEN=127.0.0.1:8443"), "must differ from SESSIONGATE_LISTEN"},
		{"LISTEN's address by name", append(slices.Clone(tls), "SESSIONGATE_LISTEN=127.0.0.1:8443", "SESSIONGATE_HTTP_REDIRECT_LISTEN=localhost:8443"), "must differ from SESSIONGATE_LISTEN"},
		{"ADMIN_LISTEN's address by name", append(slices.Clone(tls), "SESSIONGATE_ADMIN_LISTEN=localhost:8081", "SESSIONGATE_HTTP_REDIRECT_LISTEN=127.0.0.1:8081"), "must differ from SESSIONGATE_ADMIN_LISTEN"},
		{"same as ADMIN_LISTEN", append(slices.Clone(tls), "SESSIONGATE_ADMIN_LISTEN=127.0.0.1:8081", "SESSIONGATE_HTTP_REDIRECT_LISTEN=:8081"), "must differ from SESSIONGATE_ADMIN_LISTEN"},
		{"not host:port", append(slices.Clone(tls), "SESSIONGATE_HTTP_REDIRECT_LISTEN=80"), "must be host:port"},
		{"bad port", append(slices.Clone(tls), "SESSIONGATE_HTTP_REDIRECT_LISTEN=:http"), "must be host:port"},
		{"port out of range", append(slices.Clone(tls), "SESSIONGATE_HTTP_REDIRECT_LISTEN=:65536"), "must be host:port"},
	} {
		cfg, err := Load(append(base(t), tc.env...))
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if cfg.HTTPRedirectListen == "" {
				t.Errorf("%s: HTTPRedirectListen not set", tc.name)
			}
			continue
		}
		var cerr *Error
		wantVars := []string{"SESSIONGATE_HTTP_REDIRECT_LISTEN"}
		if strings.Contains(tc.name, "key only") {
			// The lone key is its own mistake too.
			wantVars = []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_HTTP_REDIRECT_LISTEN"}
		}
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), wantVars) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v with %q", tc.name, err, wantVars, tc.msg)
		}
	}
	// Off by default, and off needs nothing.
	cfg, err := Load(base(t))
	if err != nil || cfg.HTTPRedirectListen != "" {
		t.Fatalf("default: %+v, %v", cfg, err)
	}
}

func TestHSTS(t *testing.T) {
	cert, key := testtls.Pair(t)
	tls := []string{"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key}
	for _, tc := range []struct {
		value string
		env   []string
		msg   string // "" when valid
	}{
		{"max-age=63072000", tls, ""},
		{"max-age=31536000; includeSubDomains; preload", tls, ""},
		{` MAX-AGE="600" ;INCLUDESUBDOMAINS`, tls, ""},
		{"max-age=0", tls, ""},
		{"max-age=600", []string{"SESSIONGATE_TRUSTED_PROXIES=10.0.0.0/8"}, ""},
		{"max-age=600", nil, "needs SESSIONGATE_TLS_CERT"},
		{"includeSubDomains", tls, "needs max-age"},
		{"max-age=1y", tls, "max-age must be a number of seconds"},
		{"max-age", tls, "max-age must be a number of seconds"},
		{"max-age=-1", tls, "max-age must be a number of seconds"},
		{"max-age=600; max-age=700", tls, "given twice"},
		{"max-age=600;", tls, ""},
		{"max-age=31536000;; includeSubDomains;", tls, ""},
		{"max-age=99999999999", tls, ""},
		{`max-age="31536000`, tls, "max-age must be a number"},
		{`max-age=31536000"`, tls, "max-age must be a number"},
		{`max-age=""600""`, tls, "max-age must be a number"},
		{";", tls, "needs max-age"},
		{"max-age=600, includeSubDomains", tls, "max-age must be a number"},
		{"max-age=600; includeSubdomains=1", tls, "takes no value"},
		{"max-age=600; always", tls, "unknown directive"},
		// A CRLF env file: HTTP/2 drops a field with a \r in its value.
		{"max-age=63072000; includeSubDomains\r", tls, "control character"},
		{"max-age=600\x00", tls, "control character"},
	} {
		cfg, err := Load(append(append(base(t), tc.env...), "SESSIONGATE_HSTS="+tc.value))
		if tc.msg == "" {
			if err != nil || cfg.HSTS != tc.value {
				t.Errorf("%q: %v", tc.value, err)
			}
			continue
		}
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_HSTS"}) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got %v, want SESSIONGATE_HSTS with %q", tc.value, err, tc.msg)
		}
	}
	cfg, err := Load(base(t))
	if err != nil || cfg.HSTS != "" || cfg.StaticMaxAge != 0 {
		t.Fatalf("default: %+v, %v", cfg, err)
	}
}

func TestPrecompressedPaths(t *testing.T) {
	for _, bad := range []string{"static/", "/static/../x", "/a//b", "/a?b"} {
		_, err := Load(append(base(t), "SESSIONGATE_PRECOMPRESSED="+bad))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_PRECOMPRESSED"}) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	cfg, err := Load(append(base(t), "SESSIONGATE_PRECOMPRESSED=/"))
	if err != nil || !reflect.DeepEqual(cfg.Precompressed, []string{"/"}) {
		t.Errorf("/: %v %v", cfg, err)
	}
}

func TestInternalPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	cfg, err := Load(append(base(t), "SESSIONGATE_INTERNAL_PATHS=/wp-content/uploads/woocommerce_uploads,/protected/="+dir))
	if err != nil {
		t.Fatal(err)
	}
	want := []InternalLocation{{Prefix: "/wp-content/uploads/woocommerce_uploads/"}, {Prefix: "/protected/", Dir: dir}}
	if got := cfg.InternalLocations(); !reflect.DeepEqual(got, want) {
		t.Errorf("InternalLocations() = %v, want %v", got, want)
	}
	for _, c := range []struct{ value, index, want string }{
		{"protected/", "", "starting with /"},
		{"/a/../b/", "", "no query"},
		{"/", "", "whole site"},
		{"/p/,/p", "", "listed twice"},
		{"/p/=relative", "", "absolute path"},
		{"/p/=" + filepath.Join(dir, "missing"), "", "does not exist"},
		{"/p/=" + file, "", "not a directory"},
		{"/public/", "public/index.php", "front controller /public/index.php"},
		{"=/srv", "", "starting with /"},
	} {
		env := base(t)
		if c.index != "" {
			env = append(env, "SESSIONGATE_INDEX="+c.index)
		}
		_, err := Load(append(env, "SESSIONGATE_INTERNAL_PATHS="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_INTERNAL_PATHS"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SESSIONGATE_INTERNAL_PATHS=%s: got %v, want an error naming only it, saying %q", c.value, err, c.want)
		}
	}
}

func TestServerNames(t *testing.T) {
	cfg, err := Load(append(base(t), "SESSIONGATE_SERVER_NAMES=Shop.Example.COM.,*.cdn.example.com,203.0.113.5,[2001:DB8::1],::2"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shop.example.com", "*.cdn.example.com", "203.0.113.5", "[2001:db8::1]", "[::2]"}
	for value, hint := range map[string]string{
		"example.com www.example.com": "comma-separated",
		".example.com":                "example.com,*.example.com",
		"bücher.example":              "xn--",
	} {
		if _, err := Load(append(base(t), "SESSIONGATE_SERVER_NAMES="+value)); err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("%q: %v, want a hint saying %q", value, err, hint)
		}
	}
	if got := cfg.HostNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("HostNames() = %q, want %q", got, want)
	}
	for _, bad := range []string{
		"https://example.com", "example.com:443", "*.com", "*", "a*.example.com", "exa_mple.com",
		"-x.example.com", "example..com", "[::1", "fe80::1%eth0", "example.com,EXAMPLE.com", "ex ample.com",
		"2001:db8::1,[2001:0DB8::0001]",
	} {
		_, err := Load(append(base(t), "SESSIONGATE_SERVER_NAMES="+bad))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_SERVER_NAMES"}) {
			t.Errorf("SESSIONGATE_SERVER_NAMES=%s: got %v, want an error naming only it", bad, err)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	cfg, err := Load(append(base(t), "SESSIONGATE_SERVER_NAMES=www.example.com,Example.COM.", "SESSIONGATE_CANONICAL_NAME=EXAMPLE.com."))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Canonical(); got != "example.com" {
		t.Errorf("Canonical() = %q", got)
	}
	// A name a wildcard lists is listed.
	if _, err := Load(append(base(t), "SESSIONGATE_SERVER_NAMES=example.com,*.example.com", "SESSIONGATE_CANONICAL_NAME=www.example.com")); err != nil {
		t.Errorf("canonical name under a listed wildcard: %v", err)
	}
	for _, c := range []struct{ names, canonical, want string }{
		{"", "example.com", "list it in SESSIONGATE_SERVER_NAMES"},
		{"www.example.com", "example.com", "not one of SESSIONGATE_SERVER_NAMES"},
		{"*.example.com", "*.example.com", "a wildcard"},
		{"example.com", "https://example.com", "without port or scheme"},
		{"example.com", "example.com:443", "without port or scheme"},
		{"example.com,203.0.113.5", "203.0.113.5", "listed addresses are served"},
		{"example.com,2001:db8::1", "[2001:db8::1]", "listed addresses are served"},
		{"example.com,2001:db8::1", "2001:db8::1", "listed addresses are served"},
		{"xn--bcher-kva.example", "bücher.example", "xn--"},
		{"example.com,app", "app", "without a dot"},
	} {
		_, err := Load(append(base(t), "SESSIONGATE_SERVER_NAMES="+c.names, "SESSIONGATE_CANONICAL_NAME="+c.canonical))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_CANONICAL_NAME"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("names %q, canonical %q: got %v, want an error naming only SESSIONGATE_CANONICAL_NAME, saying %q", c.names, c.canonical, err, c.want)
		}
	}
}

func TestInternalAliasInsideTheRootWarns(t *testing.T) {
	env := base(t)
	var root string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SESSIONGATE_DOCUMENT_ROOT="); ok {
			root = v
		}
	}
	os.MkdirAll(filepath.Join(root, "files/private"), 0o755)
	outside := t.TempDir()
	cfg, err := Load(append(env, "SESSIONGATE_INTERNAL_PATHS=/p/="+filepath.Join(root, "files/private")+",/q/="+outside))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "/files/private/") || !strings.Contains(cfg.Warnings[0], "SESSIONGATE_INTERNAL_PATHS") {
		t.Errorf("warnings %q, want one naming the alias inside the root and its public URL", cfg.Warnings)
	}
	// Its URL internal too: nothing to warn about.
	cfg, err = Load(append(env, "SESSIONGATE_INTERNAL_PATHS=/p/="+filepath.Join(root, "files/private")+",/files/"))
	if err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("with /files/ internal: %q %v", cfg.Warnings, err)
	}
}

func TestRateLimits(t *testing.T) {
	cfg, err := Load(append(base(t), "SESSIONGATE_RATE_LIMITS=/wp-login.php 10r/m burst=5,/api/ 20r/s"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RateLimit{
		{Path: "/wp-login.php", PerSecond: 10.0 / 60, Burst: 5, Spec: "/wp-login.php 10r/m burst=5"},
		{Path: "/api/", PerSecond: 20, Spec: "/api/ 20r/s"},
	}
	if got := cfg.RateLimits(); !reflect.DeepEqual(got, want) {
		t.Errorf("RateLimits() = %+v, want %+v", got, want)
	}
	for _, c := range []struct{ value, want string }{
		{"/wp-login.php", "PATH RATE"},
		{"/wp-login.php 10r/m burst=5 nodelay", "drop nodelay"},
		{"/wp-login.php 10r/m delay=2", "drop delay=2"},
		{"/wp-login.php 10r/m burst=5 x", "PATH RATE"},
		{"wp-login.php 10r/m", "starting with /"},
		{"/a/../b 10r/m", "starting with /"},
		{"/x 10/m", "10r/s or 30r/m"},
		{"/x 0r/s", "10r/s or 30r/m"},
		{"/x 5r/h", "10r/s or 30r/m"},
		{"/x 1.5r/s", "10r/s or 30r/m"},
		{"/x 5r/s burst", "burst=N"},
		{"/x 5r/s burst=-1", "burst=N"},
		// Over the limit: the message says what the limit is.
		{"/x 5r/s burst=1000001", "at most 1000000"},
		{"/x 5r/s burst=99999999999999999999", "at most 1000000"},
		{"/x 1000001r/s", "at most 1000000"},
		{"/x 1000000r/s burst=1000000", "no error"},
		{"/x 5r/s,/x 6r/s", "listed twice"},
	} {
		_, err := Load(append(base(t), "SESSIONGATE_RATE_LIMITS="+c.value))
		if c.want == "no error" {
			if err != nil {
				t.Errorf("SESSIONGATE_RATE_LIMITS=%s: %v, want the limits themselves accepted", c.value, err)
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_RATE_LIMITS"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SESSIONGATE_RATE_LIMITS=%s: got %v, want an error naming only it, saying %q", c.value, err, c.want)
		}
	}
}

func TestErrorPages(t *testing.T) {
	cfg, err := Load(append(base(t), "SESSIONGATE_ERROR_PAGES=502 503  504=/50x.html, 404 = /errors/not-found.html"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{502: "/50x.html", 503: "/50x.html", 504: "/50x.html", 404: "/errors/not-found.html"}
	if got := cfg.ErrorPages(); !reflect.DeepEqual(got, want) {
		t.Errorf("ErrorPages() = %v, want %v", got, want)
	}
	for _, c := range []struct{ value, want string }{
		{"502", "CODES=URL"},
		{"=/50x.html", "CODES=URL"},
		{"502=", "CODES=URL"},
		{"502 /50x.html", "CODES=URL"},
		{"302=/moved.html", "not an error status code"},
		{"600=/x.html", "not an error status code"},
		{"5xx=/50x.html", "not an error status code"},
		{"499=/gone.html", "nothing is sent"},
		{"+502=/50x.html", "not an error status code"},
		{"0502=/50x.html", "not an error status code"},
		{"410=/gone.html", "would never be sent"},
		{"416 412=/range.html", "would never be sent"},
		{"505=/x.html", "would never be sent"},
		{"502=@fallback", "named locations"},
		{"502=https://status.example.com/", "not a redirect"},
		{"502=50x.html", "starting with /"},
		{"502=/errors/", "starting with /"},
		{"502=/a/../50x.html", "starting with /"},
		{"502=/50x.html?x=1", "starting with /"},
		{"502=/50x%2ehtml", "starting with /"},
		{"500=/error.php", "never run"},
		{"500=/error.PHP/x.html", "never run"},
		{"404=/.errors/404.html", "dotfiles"},
		{"502=/a.html,404 502=/b.html", "502 is listed twice"},
	} {
		_, err := Load(append(base(t), "SESSIONGATE_ERROR_PAGES="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_ERROR_PAGES"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SESSIONGATE_ERROR_PAGES=%s: got %v, want an error naming only it, saying %q", c.value, err, c.want)
		}
	}
}

func TestRestrictedPaths(t *testing.T) {
	env := base(t)
	for _, kv := range env {
		if root, ok := strings.CutPrefix(kv, "SESSIONGATE_DOCUMENT_ROOT="); ok {
			os.MkdirAll(filepath.Join(root, "pma"), 0o755)
		}
	}
	cfg, err := Load(append(env, "SESSIONGATE_RESTRICTED_PATHS=/phpmyadmin/  10.0.0.0/8 192.168.1.7 ::ffff:172.16.0.0/108 fd00::/8, /xmlrpc.php none"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RestrictedPath{
		{Path: "/phpmyadmin/", Spec: "/phpmyadmin/ 10.0.0.0/8 192.168.1.7 ::ffff:172.16.0.0/108 fd00::/8", Allow: Prefixes{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
			netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("fd00::/8"),
		}},
		{Path: "/xmlrpc.php", Spec: "/xmlrpc.php none"},
	}
	if got := cfg.RestrictedPaths(); !reflect.DeepEqual(got, want) {
		t.Errorf("RestrictedPaths() = %+v, want %+v", got, want)
	}
	for _, c := range []struct{ value, want string }{
		{"/phpmyadmin/", "PATH then the addresses"},
		{"phpmyadmin/ 10.0.0.0/8", "starting with /"},
		{"/a/../b none", "starting with /"},
		{"/x 10.0.0.0/33", "IP address or a CIDR"},
		{"/x example.com", "IP address or a CIDR"},
		{"/x fe80::1%eth0", "IP address or a CIDR"},
		{"/x ::ffff:10.0.0.0/8", "IPv4-mapped"},
		{"/x 10.0.0.1 none", "none stands alone"},
		{"/x all", "leave the path out"},
		{"/ none", "whole site"},
		{"/x none,/x 10.0.0.1", "listed twice"},
		// nginx's location /pma is a prefix: here it would leave /pma/ open.
		{"/pma 10.0.0.0/8", "write /pma/"},
		{"/wp-admin/* 10.0.0.0/8", "not as patterns"},
		{"/admin/*.php none", "not as patterns"},
	} {
		_, err := Load(append(env, "SESSIONGATE_RESTRICTED_PATHS="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_RESTRICTED_PATHS"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SESSIONGATE_RESTRICTED_PATHS=%s: got %v, want an error naming only it, saying %q", c.value, err, c.want)
		}
	}
}

// writeHtpasswd writes a password file and returns its path.
func writeHtpasswd(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBasicAuth(t *testing.T) {
	good := writeHtpasswd(t, "bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n")
	cfg, err := Load(append(base(t), "SESSIONGATE_BASIC_AUTH=/ "+good+", /wp-admin/  "+good))
	if err != nil {
		t.Fatal(err)
	}
	want := []BasicAuth{{Path: "/", File: good, Spec: "/ " + good}, {Path: "/wp-admin/", File: good, Spec: "/wp-admin/ " + good}}
	if got := cfg.BasicAuths(); !reflect.DeepEqual(got, want) {
		t.Errorf("BasicAuths() = %+v, want %+v", got, want)
	}
	sha6 := writeHtpasswd(t, "# users\nana:$6$saltsalt$cG1sLi5KbTzhI1WmNHyNMm4rVbEZ5wXoSEDF0Ko2Vw8\n")
	for _, c := range []struct{ value, want string }{
		{"/", "PATH then the password file"},
		{"/ " + good + " extra", "PATH then the password file"},
		{"/ htpasswd", "absolute path"},
		{"admin/ " + good, "starting with /"},
		{"/admin/* " + good, "not as patterns"},
		{"/ /no/such/file", "/no/such/file: does not exist"},
		{"/ " + sha6, "line 2 (user \"ana\"): $6$ crypt hashes are not supported"},
		{"/a/ " + good + ",/a/ " + good, "listed twice"},
	} {
		_, err := Load(append(base(t), "SESSIONGATE_BASIC_AUTH="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_BASIC_AUTH"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SESSIONGATE_BASIC_AUTH=%s: got %v, want an error naming only it, saying %q", c.value, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "cG1sLi5K") {
			t.Errorf("the error shows a hash: %v", err)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	env := base(t)
	for _, kv := range env {
		if root, ok := strings.CutPrefix(kv, "SESSIONGATE_DOCUMENT_ROOT="); ok {
			os.MkdirAll(filepath.Join(root, "fonts"), 0o755)
		}
	}
	// As a YAML block gives it: indented, a CRLF, a blank line, the
	// trailing newline.
	value := "\n  x-frame-options:  SAMEORIGIN \r\n" +
		"  Permissions-Policy: camera=(), microphone=()\n\n" +
		"  /fonts/ Access-Control-Allow-Origin: *\n" +
		"  /embed/widget.php X-Frame-Options:\n" +
		"  X-Robots-Tag: googlebot: noindex, bingbot: nofollow\n"
	cfg, err := Load(append(env, "SESSIONGATE_RESPONSE_HEADERS="+value, "SESSIONGATE_HIDE_HEADERS=x-powered-by, Server"))
	if err != nil {
		t.Fatal(err)
	}
	want := []ResponseHeader{
		{"/", "X-Frame-Options", "SAMEORIGIN"},
		{"/", "Permissions-Policy", "camera=(), microphone=()"},
		{"/fonts/", "Access-Control-Allow-Origin", "*"},
		{"/embed/widget.php", "X-Frame-Options", ""},
		{"/", "X-Robots-Tag", "googlebot: noindex, bingbot: nofollow"},
	}
	if got := cfg.ResponseHeaders(); !reflect.DeepEqual(got, want) {
		t.Errorf("ResponseHeaders() = %+v, want %+v", got, want)
	}
	if got := cfg.HiddenHeaders(); !slices.Equal(got, []string{"X-Powered-By", "Server"}) {
		t.Errorf("HiddenHeaders() = %q", got)
	}
	if s := cfg.LogValue().String(); !strings.Contains(s, "SESSIONGATE_RESPONSE_HEADERS=x-frame-options:  SAMEORIGIN\n") {
		t.Errorf("start-up line does not show the lines as lines: %s", s)
	}

	for _, c := range []struct{ variable, value, want string }{
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options SAMEORIGIN", "each line is Name: value"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X Frame: 1", "each line is Name: value"},
		{"SESSIONGATE_RESPONSE_HEADERS", ": x", "each line is Name: value"},
		{"SESSIONGATE_RESPONSE_HEADERS", "/fonts/", "a path is followed by the header"},
		{"SESSIONGATE_RESPONSE_HEADERS", "/fonts/*.woff2 Access-Control-Allow-Origin: *", "not as patterns"},
		// nginx's location /fonts is a prefix; here it would be one URL.
		{"SESSIONGATE_RESPONSE_HEADERS", "/fonts Access-Control-Allow-Origin: *", "write /fonts/"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-A: 1\x00", "control character"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options: DENY, X-Content-Type-Options: nosniff", "each header on a line of its own"},
		{"SESSIONGATE_RESPONSE_HEADERS", "Referrer-Policy: no-referrer,Content-Security-Policy: default-src 'self'", "each header on a line of its own"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-A: 1\nx-a: 2", "given twice for /"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options:", "no broader line adds it"},
		{"SESSIONGATE_RESPONSE_HEADERS", "/a/ X-A: 1\n/b/ X-A:", "no broader line adds it"},
		{"SESSIONGATE_RESPONSE_HEADERS", "/a/x X-A: 1\n/a/x/ X-A:", "no broader line adds it"},
		{"SESSIONGATE_RESPONSE_HEADERS", "Set-Cookie: a=b", "session cookie"},
		{"SESSIONGATE_RESPONSE_HEADERS", "cache-control: public, max-age=600", "SESSIONGATE_STATIC_MAX_AGE"},
		{"SESSIONGATE_RESPONSE_HEADERS", "Strict-Transport-Security: max-age=600", "SESSIONGATE_HSTS"},
		// A CDN reads these before Cache-Control; the session bridge takes
		// them off responses that set the session cookie, after which a
		// line would put them back.
		{"SESSIONGATE_RESPONSE_HEADERS", "CDN-Cache-Control: max-age=600", "a CDN reads this before Cache-Control"},
		{"SESSIONGATE_RESPONSE_HEADERS", "Cloudflare-CDN-Cache-Control: max-age=600", "a CDN reads this before Cache-Control"},
		{"SESSIONGATE_RESPONSE_HEADERS", "/pages/ Surrogate-Control: max-age=600", "a CDN reads this before Cache-Control"},
		{"SESSIONGATE_RESPONSE_HEADERS", "Content-Length: 0", "frames each response"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Sessiongate-Op: delete", "protocol with the apps"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Accel-Redirect: /files/a", "protocol with the apps"},
		// Values as other configurations write them, which browsers would
		// drop without a word.
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options: SAMEORIGIN X-Content-Type-Options: nosniff", "X-Content-Type-Options: starts a second header"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options: SAMEORIGIN; X-Content-Type-Options: nosniff", "second header"},
		{"SESSIONGATE_RESPONSE_HEADERS", `X-Frame-Options: SAMEORIGIN\nX-Content-Type-Options: nosniff`, `a literal \n`},
		{"SESSIONGATE_RESPONSE_HEADERS", `X-Frame-Options: "SAMEORIGIN"`, "drop nginx's quotes"},
		{"SESSIONGATE_RESPONSE_HEADERS", `Referrer-Policy: "no-referrer" always;`, "nginx's always"},
		{"SESSIONGATE_RESPONSE_HEADERS", "Referrer-Policy: no-referrer always", "nginx's always"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options: ALLOW-FROM https://a.example", "DENY or SAMEORIGIN"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Frame-Options: SAMEORIGIN;", "DENY or SAMEORIGIN"},
		{"SESSIONGATE_RESPONSE_HEADERS", "X-Content-Type-Options: nosniff;", "is nosniff"},
		{"SESSIONGATE_RESPONSE_HEADERS", "/downloads/ Content-Disposition: attachment", "error pages downloads"},
		{"SESSIONGATE_HIDE_HEADERS", "Allow", "Allow cannot be hidden"},
		{"SESSIONGATE_HIDE_HEADERS", "X-Powered-By,x-powered-by", "listed twice"},
		{"SESSIONGATE_HIDE_HEADERS", "X Powered", "not a header name"},
		{"SESSIONGATE_HIDE_HEADERS", "Set-Cookie", "Set-Cookie cannot be hidden"},
		{"SESSIONGATE_HIDE_HEADERS", "vary", "Vary cannot be hidden"},
		{"SESSIONGATE_HIDE_HEADERS", "x,", "empty entry"},
	} {
		_, err := Load(append(env, c.variable+"="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{c.variable}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: got %v, want %q", c.variable, c.value, err, c.want)
		}
	}
	// Real values with commas, semicolons, colons and spaces pass.
	for _, v := range []string{
		"Content-Security-Policy: default-src 'self'; img-src 'self' data: https:; frame-ancestors 'self'",
		"Content-Security-Policy: default-src 'self'; report-uri https://csp.example/r;",
		"Link: </app.css>; rel=preload; as=style, </app.js>; rel=preload; as=script",
		`Report-To: {"group":"csp","max_age":10886400,"endpoints":[{"url":"https://r.example/csp"}]}`,
		`NEL: {"report_to":"csp","max_age":31536000}`,
		"X-Robots-Tag: googlebot: noindex, bingbot: nofollow",
		"x-frame-options: deny",
		"Cross-Origin-Opener-Policy: same-origin",
		"Alt-Svc: h3=\":443\"; ma=86400",
	} {
		if _, err := Load(append(env, "SESSIONGATE_RESPONSE_HEADERS="+v)); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	// An empty value under a path a broader line covers is how a part of
	// the site is kept out of a header.
	if _, err := Load(append(env, "SESSIONGATE_RESPONSE_HEADERS=/ X-A: 1\n/a/ X-B: 2\n/a/b/ X-A:\n/a/c.php X-B:")); err != nil {
		t.Error(err)
	}
}

func TestRedirects(t *testing.T) {
	env := base(t)
	for _, kv := range env {
		if root, ok := strings.CutPrefix(kv, "SESSIONGATE_DOCUMENT_ROOT="); ok {
			os.MkdirAll(filepath.Join(root, "shop"), 0o755)
		}
	}
	cfg, err := Load(append(env, "SESSIONGATE_REDIRECTS=/old-page /new-page, /blog/  https://blog.example.com/ 302,/promo /sale?utm=x 307,/a/ /b/,/b/ /c"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Redirect{
		{From: "/old-page", To: "/new-page", Spec: "/old-page /new-page"},
		{From: "/blog/", To: "https://blog.example.com/", Code: 302, Spec: "/blog/ https://blog.example.com/ 302"},
		{From: "/promo", To: "/sale?utm=x", Code: 307, Spec: "/promo /sale?utm=x 307"},
		{From: "/a/", To: "/b/", Spec: "/a/ /b/"},
		{From: "/b/", To: "/c", Spec: "/b/ /c"},
	}
	if got := cfg.Redirects(); !reflect.DeepEqual(got, want) {
		t.Errorf("Redirects() = %+v, want %+v", got, want)
	}
	for i, keeps := range []bool{false, true, false, true, false} {
		if want[i].KeepsRest() != keeps {
			t.Errorf("%s: KeepsRest %v", want[i].Spec, !keeps)
		}
	}
	for _, c := range []struct{ value, want string }{
		{"/old", "FROM TO [CODE]"},
		{"/a /b 301 x", "FROM TO [CODE]"},
		{"old /new", "starting with /"},
		{"/a/../b /new", "starting with /"},
		{"/old* /new", "not as patterns"},
		{"/old /new?a=1,2", "written %2C"},
		{"/a /b 200", "not a redirect status"},
		{"/a /b 3011", "not a redirect status"},
		{"/a //evil.example/", "another host"},
		{"/a /b#top", "fragment"},
		{"/a /b\\c", "percent-encode"},
		{"/a ftp://example.com/", "http:// or https://"},
		{"/a new-page", "http:// or https://"},
		{"/a https:///x", "no host"},
		{"/a https://user:pw@example.com/", "user or password"},
		{"/a /x/../b", ". or .. segments"},
		{"/a /b,/a /c", "listed twice"},
		{"/a /b,/b /a", "redirect loop: /a -> /b -> /a"},
		{"/a /b,/b /c,/c/ /a", "redirect loop"},
		{"/x /x", "redirect loop"},
		{"/ /new/", "do not end"},
		{"/old/ /old/new/", "do not end"},
		// /c/ moved to /a/ keeps the rest: /a/x goes to /c/x, and back.
		{"/a/ /c/,/c/ /a/", "redirect loop"},
		// The directory's own URL without its slash falls under it.
		{"/docs /guide/,/guide/ /docs", "redirect loop"},
		// One path under a moved directory comes back.
		{"/a/ /b/,/b/c /a/c", "redirect loop: /b/c -> /a/c -> /b/c"},
		// A chain that grows without end, a cycle longer than the list, and
		// targets the server reads as the same path as an entry.
		{"/a/ /b/x/,/b/ /a/", "do not end"},
		{"/a/ /b/,/b/1 /a/2,/b/2 /a/3,/b/3 /a/1", "redirect loop"},
		{"/a /b%2Dc,/b-c /a", "redirect loop"},
		{"/a /b//c,/b/c /a", "redirect loop"},
		{"/café /x,/x /caf%C3%A9", "redirect loop"},
	} {
		_, err := Load(append(env, "SESSIONGATE_REDIRECTS="+c.value))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_REDIRECTS"}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.value, err, c.want)
		}
	}
	// A chain that ends, a whole site moved to another host, a directory
	// whose more specific part moves elsewhere first, and an exact URL that
	// is a directory of the site (nginx's location = /shop).
	for _, v := range []string{"/a /b,/b /c,/c /d", "/ https://new.example.com/", "/old/ /new/,/new/x /old/y",
		"/docs/ /docs/v1/,/docs/v1/ https://archive.example.com/", "/shop /store/"} {
		if _, err := Load(append(env, "SESSIONGATE_REDIRECTS="+v)); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
}

// A listener or php-fpm host holding a space or a control character (a
// stray space in an env file, a space-separated list) names no address:
// it passed host:port, and the start failed later with exit status 1
// ("lookup  : no such host"), which supervisors restart, or every PHP
// request got 502. Host names (underscores included, as container names
// have), IP addresses and IPv6 zones still pass.
func TestListenAndBackendHostsNoAddressHas(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"SESSIONGATE_LISTEN", " :8080"},
		{"SESSIONGATE_LISTEN", "\t127.0.0.1:8080"},
		{"SESSIONGATE_ADMIN_LISTEN", "local host:8081"},
		{"SESSIONGATE_ADMIN_LISTEN", " :8081"},
		{"SESSIONGATE_PHP_FPM", "fpm1 fpm2:9000"},
		{"SESSIONGATE_PHP_FPM", "fpm\x01:9000"},
		{"SESSIONGATE_PHP_FPM", "fpm\u00a0x:9000"},
	} {
		_, err := Load(append(base(t), tc.name+"="+tc.value))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{tc.name}) {
			t.Errorf("%s=%q: got %v, want it refused", tc.name, tc.value, err)
		}
	}
	for _, env := range [][]string{
		{"SESSIONGATE_LISTEN=localhost:8080", "SESSIONGATE_ADMIN_LISTEN=[fe80::1%eth0]:8081"},
		{"SESSIONGATE_LISTEN=[::1]:8080", "SESSIONGATE_ADMIN_LISTEN=my_host-1.example:8081"},
		{"SESSIONGATE_PHP_FPM=php_fpm:9000,[fe80::1%eth0]:9000,10.0.0.1:9000, fpm.local:9001 "},
	} {
		if _, err := Load(append(base(t), env...)); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

// A CIDR with host bits (10.0.0.5/24, the proxy's address as `ip addr`
// shows it) was masked to its network without a word: every host of that
// /24 could then forge X-Forwarded-For, or pass a restricted path. nginx
// says "low address bits of 10.0.0.5/24 are meaningless"; the gateway
// warns at start too, naming the network it takes.
func TestHostBitsInCIDRsWarn(t *testing.T) {
	cfg, err := Load(append(base(t),
		"SESSIONGATE_TRUSTED_PROXIES=10.0.0.5/24, 192.168.0.0/16,::ffff:172.16.0.9/124,2001:db8::1/64",
		"SESSIONGATE_RESTRICTED_PATHS=/admin/ 192.168.1.7/24 10.0.0.0/8,/x.php none"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{
		"SESSIONGATE_TRUSTED_PROXIES: 10.0.0.5/24 is taken as 10.0.0.0/24",
		"SESSIONGATE_TRUSTED_PROXIES: ::ffff:172.16.0.9/124 is taken as 172.16.0.0/28",
		"SESSIONGATE_TRUSTED_PROXIES: 2001:db8::1/64 is taken as 2001:db8::/64",
		"SESSIONGATE_RESTRICTED_PATHS: 192.168.1.7/24 is taken as 192.168.1.0/24",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if n := len(cfg.Warnings); n != 4 {
		t.Errorf("%d warnings, want 4:\n%s", n, got)
	}
	cfg, err = Load(append(base(t), "SESSIONGATE_TRUSTED_PROXIES=10.0.0.0/8,10.0.0.5,::ffff:172.16.0.0/108", "SESSIONGATE_RESTRICTED_PATHS=/admin/ 10.0.0.0/8 fd00::/8"))
	if err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("networks without host bits: %v, warnings %q", err, cfg.Warnings)
	}
}

// TestTrustEveryAddressWarns: SESSIONGATE_TRUSTED_PROXIES=0.0.0.0/0 (how
// nginx's set_real_ip_from 0.0.0.0/0 is often written behind a cloud load
// balancer whose addresses change) loaded without a word, and with every
// hop trusted the client's address is the leftmost X-Forwarded-For entry,
// which the client writes: any client could pass
// SESSIONGATE_RESTRICTED_PATHS, dodge SESSIONGATE_RATE_LIMITS and choose
// PHP's REMOTE_ADDR. nginx's default real_ip_recursive off takes the
// rightmost entry instead, the one the load balancer appended.
func TestTrustEveryAddressWarns(t *testing.T) {
	for _, v := range []string{"0.0.0.0/0", "::/0", "10.0.0.0/8, ::ffff:0.0.0.0/96"} {
		cfg, err := Load(append(base(t), "SESSIONGATE_TRUSTED_PROXIES="+v))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(cfg.Warnings, "\n")
		if !strings.Contains(got, "SESSIONGATE_TRUSTED_PROXIES") || !strings.Contains(got, "every") || !strings.Contains(got, "X-Forwarded-For") {
			t.Errorf("%s: warnings %q, want one saying every address is trusted, and what a client's X-Forwarded-For then does", v, got)
		}
	}
	cfg, err := Load(append(base(t), "SESSIONGATE_TRUSTED_PROXIES=0.0.0.0/1,10.0.0.0/8,fd00::/8"))
	if err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("proxies' networks: %v, warnings %q", err, cfg.Warnings)
	}
}

// A static root that is the filesystem root serves every file of the host
// the gateway may read (/etc/passwd answered 200), as a variable that
// expanded to nothing (SESSIONGATE_DOCUMENT_ROOT=$SITE/) would make it. It
// loaded; it is refused under the variable that gave it. php-fpm may still
// see its site at / when the gateway serves another tree.
func TestStaticRootIsNotTheFilesystemRoot(t *testing.T) {
	link := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		name string
	}{
		{[]string{"SESSIONGATE_DOCUMENT_ROOT=/"}, "SESSIONGATE_DOCUMENT_ROOT"},
		{[]string{"SESSIONGATE_DOCUMENT_ROOT=//."}, "SESSIONGATE_DOCUMENT_ROOT"},
		{[]string{"SESSIONGATE_DOCUMENT_ROOT=/srv/site", "SESSIONGATE_STATIC_ROOT=/"}, "SESSIONGATE_STATIC_ROOT"},
		{[]string{"SESSIONGATE_DOCUMENT_ROOT=/srv/site", "SESSIONGATE_STATIC_ROOT=" + link}, "SESSIONGATE_STATIC_ROOT"},
	} {
		_, err := Load(append([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_SESSIONS=off"}, c.env...))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{c.name}) || !strings.Contains(err.Error(), "filesystem root") {
			t.Errorf("%v: got %v, want %s refused", c.env, err, c.name)
		}
	}
	if _, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_DOCUMENT_ROOT=/", "SESSIONGATE_STATIC_ROOT=" + t.TempDir()}); err != nil {
		t.Errorf("php-fpm's root at /, the gateway's elsewhere: %v", err)
	}
}

// With SESSIONGATE_COMPRESS=off nothing goes out compressed, the copies
// SESSIONGATE_PRECOMPRESSED names included (server/static.go looks for
// them only when it is on; its help: "off: never"). Both set loaded, and
// the build step's .br and .gz files were never sent, without a word, where
// nginx's "gzip off; gzip_static on;" sends them. It is refused, as
// SESSIONGATE_ADMIN_PPROF without an admin listener is.
func TestPrecompressedNeedsCompress(t *testing.T) {
	_, err := Load(append(base(t), "SESSIONGATE_COMPRESS=off", "SESSIONGATE_PRECOMPRESSED=/static/"))
	var cerr *Error
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_PRECOMPRESSED"}) || !strings.Contains(err.Error(), "SESSIONGATE_COMPRESS=on") {
		t.Errorf("got %v, want SESSIONGATE_PRECOMPRESSED refused", err)
	}
	if _, err := Load(append(base(t), "SESSIONGATE_COMPRESS=off")); err != nil {
		t.Errorf("compression off alone: %v", err)
	}
	// A SESSIONGATE_COMPRESS that does not parse is its own mistake only.
	_, err = Load(append(base(t), "SESSIONGATE_COMPRESS=maybe", "SESSIONGATE_PRECOMPRESSED=/static/"))
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_COMPRESS"}) {
		t.Errorf("unreadable SESSIONGATE_COMPRESS: got %v, want only it refused", err)
	}
	if _, err := Load(append(base(t), "SESSIONGATE_COMPRESS_CACHE=0", "SESSIONGATE_PRECOMPRESSED=/static/")); err != nil {
		t.Errorf("precompressed copies only: %v", err)
	}
}

// SESSIONGATE_IDLE_TIMEOUT=0 turns keep-alive off (cmd/gateway), so with
// SESSIONGATE_READ_TIMEOUT=0 too no connection waits for a next request:
// both load. A negative idle timeout, which net/http would take as none,
// is refused.
func TestIdleTimeoutZeroLoads(t *testing.T) {
	for _, env := range [][]string{{"SESSIONGATE_IDLE_TIMEOUT=0", "SESSIONGATE_READ_TIMEOUT=0"}, {"SESSIONGATE_IDLE_TIMEOUT=0"}, {"SESSIONGATE_READ_TIMEOUT=0"}} {
		if _, err := Load(append(base(t), env...)); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
	_, err := Load(append(base(t), "SESSIONGATE_IDLE_TIMEOUT=-1s"))
	var cerr *Error
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_IDLE_TIMEOUT"}) {
		t.Errorf("SESSIONGATE_IDLE_TIMEOUT=-1s: got %v, want it refused", err)
	}
}

// SESSIONGATE_DOCUMENT_ROOT is php-fpm's view of the site, checked only
// for being absolute when SESSIONGATE_STATIC_ROOT names the gateway's: a
// stray space at its end (an env file, a quoted value) loaded, and every
// PHP request then got php-fpm's "File not found." for SCRIPT_FILENAME
// "/srv/site /index.php". Spaces around it are refused.
func TestDocumentRootWithoutSpacesAround(t *testing.T) {
	static := t.TempDir()
	for _, v := range []string{"/srv/site ", "/srv/site\t", "/srv/site\r"} {
		_, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_STATIC_ROOT=" + static, "SESSIONGATE_DOCUMENT_ROOT=" + v})
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_DOCUMENT_ROOT"}) {
			t.Errorf("%q: got %v, want SESSIONGATE_DOCUMENT_ROOT refused", v, err)
		}
	}
	if _, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_STATIC_ROOT=" + static, "SESSIONGATE_DOCUMENT_ROOT=/srv/my site"}); err != nil {
		t.Errorf("a space inside: %v", err)
	}
}

// TestUnknownVariableLookingLikeAKnownOne: a name with a space around it
// (an env file's `SESSIONGATE_LISTEN = :8080`) or in lower case is not the
// variable, and printed bare the warning would name what looks like the
// right one: it is quoted and points at the variable meant.
func TestUnknownVariableLookingLikeAKnownOne(t *testing.T) {
	for name, want := range map[string]string{
		"SESSIONGATE_LISTEN ":  `unknown variable "SESSIONGATE_LISTEN " ignored: SESSIONGATE_LISTEN spelt otherwise`,
		"SESSIONGATE_Listen":   `unknown variable "SESSIONGATE_Listen" ignored: SESSIONGATE_LISTEN spelt otherwise`,
		"SESSIONGATE_LISTEN\t": `unknown variable "SESSIONGATE_LISTEN\t" ignored: SESSIONGATE_LISTEN spelt otherwise`,
		"SESSIONGATE_NOPE-X":   `unknown variable "SESSIONGATE_NOPE-X" ignored (typo?)`,
		"SESSIONGATE_NOPE":     `unknown variable SESSIONGATE_NOPE ignored (typo?)`,
	} {
		c, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_SESSION_KEYS=" + testKey, name + "=:8081"})
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
			t.Errorf("%q: warnings %q, want one starting %q", name, c.Warnings, want)
		}
	}
}

// TestUnknownVariableSuggestsTheNearest: "unknown variable
// SESSIONGATE_REDIS_URI ignored (typo?)" leaves the reader to find which
// variable was meant among seventy, while the gateway runs on the default
// (sessions in memory here). A name one or two edits away from a known one
// (a letter missing, doubled, swapped or wrong, an underscore lost) names
// that one; a name near none, or as near two, keeps the bare question.
func TestUnknownVariableSuggestsTheNearest(t *testing.T) {
	for name, want := range map[string]string{
		"SESSIONGATE_REDIS_URI":       "unknown variable SESSIONGATE_REDIS_URI ignored: did you mean SESSIONGATE_REDIS_URL?",
		"SESSIONGATE_DOCUMENTROOT":    "unknown variable SESSIONGATE_DOCUMENTROOT ignored: did you mean SESSIONGATE_DOCUMENT_ROOT?",
		"SESSIONGATE_SESION_KEYS":     "unknown variable SESSIONGATE_SESION_KEYS ignored: did you mean SESSIONGATE_SESSION_KEYS?",
		"SESSIONGATE_PHP_FMP":         "unknown variable SESSIONGATE_PHP_FMP ignored: did you mean SESSIONGATE_PHP_FPM?",
		"SESSIONGATE_DJANGO_PATH":     "unknown variable SESSIONGATE_DJANGO_PATH ignored: did you mean SESSIONGATE_DJANGO_PATHS?",
		"SESSIONGATE_MAX_BODY_SIZE":   "unknown variable SESSIONGATE_MAX_BODY_SIZE ignored (typo?)",
		"SESSIONGATE_NOPE":            "unknown variable SESSIONGATE_NOPE ignored (typo?)",
		"SESSIONGATE_SESSION_COOKIES": "unknown variable SESSIONGATE_SESSION_COOKIES ignored: did you mean SESSIONGATE_SESSION_COOKIE?",
	} {
		env := []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_SESSION_KEYS=" + testKey, name + "=x"}
		c, err := Load(env)
		var warnings []string
		if err != nil {
			// The misspelt variable's value may make a known one fail; the
			// warning is part of the error then.
			warnings = strings.Split(err.Error(), "\n")
		} else {
			warnings = c.Warnings
		}
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("%s: warnings %q, want %q", name, warnings, want)
		}
	}
}

// TestSessionKeyMessageSaysHowToMakeOne: a missing or short key is the
// first error of every new set-up; the message must say how to make a good
// one, not only what is wrong with this one.
func TestSessionKeyMessageSaysHowToMakeOne(t *testing.T) {
	const howTo = "head -c 48 /dev/urandom | base64 -w0"
	for _, keys := range []string{"", "short", testKey + ",short"} {
		env := []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir()}
		if keys != "" {
			env = append(env, "SESSIONGATE_SESSION_KEYS="+keys)
		}
		_, err := Load(env)
		if err == nil || !strings.Contains(err.Error(), "SESSIONGATE_SESSION_KEYS") || !strings.Contains(err.Error(), howTo) {
			t.Errorf("SESSIONGATE_SESSION_KEYS=%q: %v; want the variable named and %q", keys, err, howTo)
		}
		if keys != "" && strings.Contains(err.Error(), "short") {
			t.Errorf("the message shows the secret: %v", err)
		}
	}
}

// TestDurationInDays: nginx writes expires 30d, and Go's durations have no
// d unit: "not a duration: use a number with a unit (e.g. 500ms, 60s, 2m)"
// leaves the reader to guess that days are written in hours. A value in
// days gets the hours it means.
func TestDurationInDays(t *testing.T) {
	for value, want := range map[string]string{
		"30d": "no d unit: write 720h for 30d",
		"1d":  "no d unit: write 24h for 1d",
		"14d": "no d unit: write 336h for 14d",
	} {
		for _, name := range []string{"SESSIONGATE_STATIC_MAX_AGE", "SESSIONGATE_SESSION_MAX_AGE"} {
			_, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_SESSION_KEYS=" + testKey, name + "=" + value})
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s=%s: %v; want %q", name, value, err, want)
			}
		}
	}
	// Not days: the general message.
	_, err := Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_SESSION_KEYS=" + testKey, "SESSIONGATE_PHP_TIMEOUT=1.5xd"})
	if err == nil || strings.Contains(err.Error(), "no d unit") {
		t.Errorf("SESSIONGATE_PHP_TIMEOUT=1.5xd: %v", err)
	}
}

// Cache-Control's max-age counts whole seconds: a value that is not one
// would go out cut down (500ms as max-age=0, which asks browsers to
// revalidate every time), so it is refused, naming the variable.
func TestStaticMaxAgeWholeSeconds(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"0", true},
		{"1s", true},
		{"720h", true},
		{"90m", true},
		{"500ms", false},
		{"1.5s", false},
		{"1s1ns", false},
	} {
		c, err := Load(append(base(t), "SESSIONGATE_STATIC_MAX_AGE="+tc.value))
		var cerr *Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case !tc.ok && (!errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_STATIC_MAX_AGE"})):
			t.Errorf("%s: got %v (config %v), want an error naming SESSIONGATE_STATIC_MAX_AGE", tc.value, err, c != nil)
		case !tc.ok && !strings.Contains(err.Error(), "whole number of seconds"):
			t.Errorf("%s: message %q does not say why", tc.value, err)
		}
	}
}

// SESSIONGATE_SEND_TIMEOUT is nginx's send_timeout: 60 s unless set, 0 for
// none, and a negative value (which would silently mean none) is refused.
func TestSendTimeout(t *testing.T) {
	cfg, err := Load(base(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SendTimeout != time.Minute {
		t.Errorf("default SendTimeout = %v, want 60s as nginx's send_timeout", cfg.SendTimeout)
	}
	for v, want := range map[string]time.Duration{"2s": 2 * time.Second, "0": 0, "5m": 5 * time.Minute} {
		cfg, err := Load(append(base(t), "SESSIONGATE_SEND_TIMEOUT="+v))
		if err != nil || cfg.SendTimeout != want {
			t.Errorf("SESSIONGATE_SEND_TIMEOUT=%s: %v, %v; want %v", v, cfg.SendTimeout, err, want)
		}
	}
	_, err = Load(append(base(t), "SESSIONGATE_SEND_TIMEOUT=-1s"))
	var cerr *Error
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{"SESSIONGATE_SEND_TIMEOUT"}) {
		t.Errorf("SESSIONGATE_SEND_TIMEOUT=-1s: got %v, want it refused", err)
	}
}

// TestQuotedValueIsPointedOut: `docker run --env-file` and Kubernetes keep
// the quotes of KEY="value" as part of the value (systemd's
// EnvironmentFile and shells remove them). A quoted path or size then fails
// with a message about the value that does not say why, and a quoted
// session key is taken whole, so Django, given the key without quotes,
// refuses every session. Each is pointed out by name, never echoing the
// value (it may be a secret).
func TestQuotedValueIsPointedOut(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name, kv string
		fails    bool
	}{
		{"size", `SESSIONGATE_MAX_BODY="10m"`, true},
		{"path", `SESSIONGATE_DOCUMENT_ROOT='` + root + `'`, true},
		{"key", `SESSIONGATE_SESSION_KEYS="` + testKey + `"`, false},
	} {
		env := []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSION_KEYS=" + testKey, tc.kv}
		variable := tc.kv[:strings.Index(tc.kv, "=")]
		c, err := Load(env)
		var notes []string
		switch {
		case tc.fails && err == nil:
			t.Errorf("%s: %s accepted", tc.name, tc.kv)
			continue
		case tc.fails:
			notes = strings.Split(err.Error(), "\n")
		case err != nil:
			t.Errorf("%s: %s refused: %v", tc.name, tc.kv, err)
			continue
		default:
			notes = c.Warnings
		}
		want := variable + "'s value is wrapped in quotes"
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("%s: %q, want a line saying %q", tc.name, notes, want)
		}
		if tc.name == "key" && slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, testKey) }) {
			t.Errorf("the key is echoed: %q", notes)
		}
	}
}

// SESSIONGATE_PHP_CHECK_INTERVAL and _DJANGO_CHECK_INTERVAL take 0 (off) or
// 1s and more, 10s by default: a check waits up to 2 s for its answer, so
// 100ms is taken for the typo it is.
func TestCheckIntervalValues(t *testing.T) {
	for name, got := range map[string]func(*Config) time.Duration{
		"SESSIONGATE_PHP_CHECK_INTERVAL":    func(c *Config) time.Duration { return c.PHPCheckInterval },
		"SESSIONGATE_DJANGO_CHECK_INTERVAL": func(c *Config) time.Duration { return c.Django.CheckInterval },
	} {
		c, err := Load(base(t))
		if err != nil || got(c) != 10*time.Second {
			t.Errorf("%s unset: %v, %v; want 10s", name, got(c), err)
		}
		for value, want := range map[string]time.Duration{"0": 0, "1s": time.Second, "2m": 2 * time.Minute} {
			c, err := Load(append(base(t), name+"="+value))
			if err != nil || got(c) != want {
				t.Errorf("%s=%s: %v, %v; want %v", name, value, got(c), err, want)
			}
		}
		for _, value := range []string{"100ms", "-1s", "10"} {
			_, err := Load(append(base(t), name+"="+value))
			e, ok := err.(*Error)
			if !ok || !slices.Equal(e.Vars(), []string{name}) || !strings.Contains(err.Error(), "at least 1s, or 0 (off)") {
				t.Errorf("%s=%s: got %v", name, value, err)
			}
		}
	}
}

// SiteName is PHP's SERVER_NAME for a request without Host and the Host of
// the gateway's Django backend checks: the canonical name, else the first
// listed name that is not a wildcard, as the lists compare names.
func TestSiteName(t *testing.T) {
	for _, c := range []struct {
		canonical string
		names     []string
		want      string
	}{
		{"", nil, ""},
		{"shop.example", []string{"www.shop.example", "shop.example"}, "shop.example"},
		{"", []string{"*.shop.example", "Shop.Example.", "other.example"}, "shop.example"},
		{"", []string{"2001:db8::1"}, "[2001:db8::1]"},
		{"", []string{"192.0.2.7"}, "192.0.2.7"},
		{"", []string{"*.shop.example"}, ""},
	} {
		cfg := &Config{CanonicalName: c.canonical, ServerNames: c.names}
		if got := cfg.SiteName(); got != c.want {
			t.Errorf("canonical %q, names %q: %q, want %q", c.canonical, c.names, got, c.want)
		}
	}
}
