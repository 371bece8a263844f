package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// TestBrowser is the user's view of issue 4: a real Chromium logs in with
// Django's admin login form, then opens a PHP page of the demo site
// (examples/php/who.php) and sees its name and user id there, adds to the
// PHP cart and finds it in Django's JSON, and logs out with Django's logout:
// the PHP page shows anonymous again. The stack is the real one: gunicorn
// with examples/django, php-fpm serving examples/php (the files `make demo`
// serves) with the gateway's prepend, redis-server, and the gateway built
// in-process from the same configuration variables as the binary.
//
// What makes it fail when the login does not carry over: who.php prints a
// name and an id only when sessiongate_user_id() (the prepend reading the
// shared session) returns Django's user; without the session bridge PHP has
// no such function and the page says "anonymous", so the check after login
// fails.
//
// It runs on Debian's Django 3.2 and on Django 5.2 with gunicorn 23, the
// pair deploy/django.Dockerfile installs (its admin logs out with a POST
// form too).
func TestBrowser(t *testing.T) {
	t.Parallel()
	harness.Require(t, "chromium", "php-fpm8.2", "redis-server", "gunicorn", "django")
	forEachDjango(t, djangoReleases(t, "3.2", "5.2"), testBrowserOn)
}

// testBrowserOn is TestBrowser on one Django release.
func testBrowserOn(t *testing.T, rel djangoRelease) {
	start := time.Now()
	base, userID := startBrowserStack(t, rel)
	t.Logf("stack up in %v", time.Since(start).Round(time.Millisecond))

	b := newBrowser(t, base, 60*time.Second)

	// 1. Django's admin login form, typed into like a person would.
	b.open("/admin/login/?next=/admin/", 200)
	b.do("fill the login form",
		chromedp.SendKeys(chromedp.ID("id_username"), "demo"),
		chromedp.SendKeys(chromedp.ID("id_password"), "demo-password"))
	b.submit("log in", chromedp.CSS(`#login-form [type="submit"]`), 200, "/admin/")
	if n := b.eval(`document.querySelectorAll("#user-tools").length`); n != "1" {
		b.fatalf("the admin index shows no logged-in user tools (login refused?)")
	}
	sid := b.cookie("sessionid")
	if sid == nil || !sid.HTTPOnly || sid.SameSite != network.CookieSameSiteLax {
		b.fatalf("session cookie after login: %+v", sid)
	}

	// 2. The PHP page knows who logged in.
	b.open("/who.php", 200)
	shot := b.screenshot("who-logged-in.png")
	t.Logf("screenshot of the PHP page after login: %s", shot)
	who := b.whoami()
	if who.Name != "demo" || who.ID != userID {
		b.fatalf("PHP after the Django login: name %q id %q, want demo and %s; page says %q", who.Name, who.ID, userID, who.Text)
	}

	// 3. The PHP cart (its form and CSRF token) in the same session, read by
	// Django.
	b.open("/cart.php", 200)
	b.submit("add an apple", chromedp.CSS(`form button[name="add"]`), 200, "/cart.php")
	if q := b.eval(`document.querySelector("#cart td.qty")?.textContent ?? "none"`); q != "1" {
		b.fatalf("PHP cart after adding an apple: quantity %s", q)
	}
	b.open("/accounts/cart/", 200)
	if body := b.eval(`document.body.innerText`); !regexp.MustCompile(`"cart":\s*\{"apple":\s*1\}`).MatchString(body) {
		b.fatalf("Django's view of the PHP cart: %s", body)
	}

	// 4. Log out with Django's admin logout (a POST form with Django's CSRF
	// token, from the PHP page); Django sends the browser back to who.php.
	b.open("/who.php", 200)
	b.submit("log out", chromedp.CSS("#logout"), 200, "/who.php")
	who = b.whoami()
	if who.Name != "" || who.ID != "" || !strings.Contains(who.Text, "anonymous") {
		b.fatalf("PHP after the Django logout: name %q id %q, page says %q", who.Name, who.ID, who.Text)
	}
	if c := b.cookie("sessionid"); c != nil {
		b.fatalf("session cookie still set after logout: %+v", c)
	}
	// Django agrees: the admin asks for a login again.
	b.open("/admin/", 200)
	if p := b.eval(`location.pathname`); p != "/admin/login/" {
		b.fatalf("after logout /admin/ ended at %s, want the login page", p)
	}
	t.Logf("browser scenario in %v (base %s)", time.Since(start).Round(time.Millisecond), base)
}

// startBrowserStack starts php-fpm on a copy of examples/php with the gateway's
// prepend, redis-server, gunicorn on examples/django (migrated into a fresh
// database, demo user created), and one gateway in front of them. It returns
// the gateway's base URL and the demo user's id.
func startBrowserStack(t *testing.T, rel djangoRelease) (base, userID string) {
	t.Helper()
	base, userID, _ = startExampleStack(t, rel)
	return base, userID
}

// startExampleStack is startBrowserStack, also returning the directory
// php-fpm serves (the copy of examples/php).
func startExampleStack(t *testing.T, rel djangoRelease) (base, userID, site string) {
	t.Helper()
	// A copy: php-fpm's workers may run as another user (harness.ShareWithPHP).
	site = t.TempDir()
	if err := os.CopyFS(site, os.DirFS("../examples/php")); err != nil {
		t.Fatal(err)
	}
	project, err := filepath.Abs("../examples/django")
	if err != nil {
		t.Fatal(err)
	}
	prepend := writePrepend(t)

	djEnv := []string{
		"DJANGO_SECRET_KEY=browser-test-django-secret-key-0123456789",
		"DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
	}
	// Django migrates (about a second of CPU, once per run) while php-fpm
	// and Redis start on the test goroutine, where the harness may call
	// t.Fatal. The deferred receive keeps manage.py from outliving a
	// failed start (and the temporary directories it writes to).
	var (
		db     string
		outs   []string
		migErr error
	)
	dbDir := t.TempDir()
	migrated := make(chan struct{})
	go func() {
		defer close(migrated)
		db, outs, migErr = djangoDatabaseIn(dbDir, rel, project, djEnv, []string{"migrate", "--noinput"}, []string{"demo_user"})
	}()
	defer func() { <-migrated }()
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: site, Children: 4})
	red := harness.StartRedis(t)
	<-migrated
	if migErr != nil {
		t.Fatal(migErr)
	}
	out := outs[1]
	djEnv = append(djEnv, "DJANGO_DATABASE="+db)
	m := regexp.MustCompile(`\(id (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo_user printed no id: %s", out)
	}
	g := harness.StartGunicorn(t, rel.gunicornOptions("sgdemo", harness.GunicornOptions{
		Dir: project, Env: djEnv, Workers: 2, Threads: 4,
	}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})

	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + site,
		"SESSIONGATE_PHP_MAX_CONNS=4",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_DJANGO_URL=" + g.URL(),
		"SESSIONGATE_DJANGO_PATHS=/admin/,/accounts/,/static/admin/",
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	a, err := app.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Server.Handler())
	t.Cleanup(func() {
		ts.Close()
		a.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return ts.URL, m[1], site
}

// browser is one headless Chromium tab with the test's helpers. Every
// method fails the test with the page's address and text, and keeps a
// screenshot, when the browser does not do what was asked.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// newBrowser starts Debian's chromium headless, with a fresh profile, and
// with everything that would phone home turned off: on a closed network
// those connections are refused and only slow the start. The tab closes and
// the process is killed (and waited for) when the test ends; chromedp also
// sets the parent-death signal, so a crashed test binary leaves no browser.
// extra adds to the flags (host-resolver-rules, for a site under its own
// names).
func newBrowser(t *testing.T, base string, limit time.Duration, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	bin := harness.Bin(t, "chromium")
	// Kept when the test fails (its path is logged), removed when it passes.
	shots, err := os.MkdirTemp("", "sessiongate-browser-")
	if err != nil {
		t.Fatal(err)
	}
	// Short: the socket's path must fit in 108 bytes, which t.TempDir()
	// with a subtest's name does not.
	tmp, err := os.MkdirTemp("", "sgchr-")
	if err != nil {
		t.Fatal(err)
	}
	var output testlog.Buffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		// A killed browser leaves its SingletonSocket directory in TMPDIR:
		// /tmp gathered an org.chromium.Chromium.* directory per test.
		chromedp.Env("TMPDIR=" + tmp),
		chromedp.Headless,
		chromedp.DisableGPU,
		// The test visits only its own loopback pages; containers and root
		// (as in CI) cannot give Chromium the namespaces its sandbox needs.
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(&output),
	}
	opts = append(opts, extra...)
	// Bounds the whole browser scenario: a page that never arrives fails
	// the test instead of hanging it.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), limit)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
		os.RemoveAll(tmp)
		if t.Failed() {
			t.Logf("screenshots kept in %s", shots)
			// Its last lines: the rest is mostly D-Bus noise of a machine
			// without a desktop session.
			if s := strings.TrimSpace(output.String()); s != "" {
				if len(s) > 4000 {
					s = "..." + s[len(s)-4000:]
				}
				t.Logf("chromium output (end):\n%s", s)
			}
		} else {
			os.RemoveAll(shots)
		}
	})
	// Start the browser now, so a chromium that cannot start fails here.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v\n%s", bin, err, output.String())
	}
	return &browser{t: t, ctx: bctx, base: base, shots: shots}
}

// fatalf fails the test with where the browser is and what it shows, and a
// screenshot of it.
func (b *browser) fatalf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	// Fresh time: the scenario's context may be what ran out.
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if b.ctx.Err() == nil {
		where, _ := chromedp.Run(ctx, chromedp.Location())
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			p := filepath.Join(b.shots, "failure.png")
			if os.WriteFile(p, png, 0o644) == nil {
				msg += "\nscreenshot: " + p
			}
		}
		msg += fmt.Sprintf("\nbrowser at %s, page text:\n%.1500s", where, text)
	}
	b.t.Fatal(msg)
}

// do runs steps that return nothing.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

// open loads path and checks the HTTP status of the final document (after
// redirects).
func (b *browser) open(path string, status int64) {
	b.t.Helper()
	res, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.fatalf("open %s: %v", path, err)
	}
	if res.Status != status {
		b.fatalf("open %s: status %d, want %d", path, res.Status, status)
	}
}

// submit clicks a form's button, waits for the page the form leads to, and
// checks its status and path.
func (b *browser) submit(what string, button chromedp.CSS, status int64, path string) {
	b.t.Helper()
	res, err := chromedp.RunResponse(b.ctx, chromedp.Click(button))
	if err != nil {
		b.fatalf("%s: %v", what, err)
	}
	u, err := url.Parse(res.URL)
	if err != nil || res.Status != status || u.Path != path {
		b.fatalf("%s: ended at %s with status %d, want %s and %d", what, res.URL, res.Status, path, status)
	}
}

// eval evaluates a JavaScript expression and returns it as text.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.fatalf("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// whoPage is what who.php shows.
type whoPage struct {
	Text string `json:"text"`
	Name string `json:"name"`
	ID   string `json:"id"`
}

// whoami reads who.php's answer from the page the browser shows; absent
// elements read as "".
func (b *browser) whoami() whoPage {
	b.t.Helper()
	w, err := chromedp.Run(b.ctx, chromedp.Evaluate[whoPage](`({
		text: document.querySelector("#who")?.innerText ?? "",
		name: document.querySelector("#username")?.innerText ?? "",
		id: document.querySelector("#user-id")?.innerText ?? "",
	})`))
	if err != nil {
		b.fatalf("read who.php: %v", err)
	}
	return w
}

// cookie returns the browser's cookie for the gateway's URL, or nil.
func (b *browser) cookie(name string) *network.Cookie {
	b.t.Helper()
	cookies, err := chromedp.Run(b.ctx, chromedp.Action[[]*network.Cookie](
		func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
			r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
			return r.Cookies, err
		}))
	if err != nil {
		b.fatalf("read cookies: %v", err)
	}
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// screenshot saves the visible page as a PNG in the screenshot directory and
// returns its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		b.fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	p := filepath.Join(b.shots, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}
