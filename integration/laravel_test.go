package integration

// Behaviour a Laravel site (or any site deployed the same way) sees behind
// the gateway, compared with Laravel's documented nginx configuration.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestDeploySymlinkSwitchRunsNewRelease is the atomic deploy of Laravel
// Envoyer, Deployer and Capistrano: the document root is current/public,
// current -> releases/N, and a deploy repoints current and later deletes
// old releases. Laravel's nginx configuration sends SCRIPT_FILENAME as
// $realpath_root$fastcgi_script_name, so php-fpm runs the new release at
// once. Given the symlinked path instead, a php-fpm worker that already ran
// the script resolves it from its realpath cache (realpath_cache_ttl, 120 s
// by default) and keeps running the old release, or fails with "File not
// found." once the old release is deleted.
func TestDeploySymlinkSwitchRunsNewRelease(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	base := t.TempDir()
	// SCRIPT_FILENAME = DOCUMENT_ROOT + script path stays true (the
	// configuration table promises it, and scripts derive paths from it).
	const check = `if (strpos($_SERVER['SCRIPT_FILENAME'], $_SERVER['DOCUMENT_ROOT'] . '/') !== 0) { echo ' outside DOCUMENT_ROOT'; }`
	writeTree(t, base, map[string]string{
		"releases/1/public/index.php": `<?php echo 'release 1'; ` + check,
		"releases/2/public/index.php": `<?php echo 'release 2'; ` + check,
	})
	current := filepath.Join(base, "current")
	if err := os.Symlink("releases/1", current); err != nil {
		t.Fatal(err)
	}
	docRoot := filepath.Join(current, "public")
	// One worker, so that the request after the deploy meets the worker
	// (and the realpath cache) that ran the one before.
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: base, Children: 1})
	g := startGWOn(t, fpm, docRoot, func(c *config.Config) { c.StaticRoot = docRoot })

	for i := 0; i < 3; i++ {
		if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 1" {
			t.Fatalf("before the deploy: %d %q", res.StatusCode, body)
		}
	}

	// ln -sfn releases/2 current, then the old release is removed.
	tmp := filepath.Join(base, "current.tmp")
	if err := os.Symlink("releases/2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	// The router looks at its root again at most once a second.
	time.Sleep(1500 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 2" {
			t.Fatalf("after the deploy: %d %q, want 200 %q (nginx with $realpath_root runs the new release at once)", res.StatusCode, body, "release 2")
		}
	}
	if err := os.RemoveAll(filepath.Join(base, "releases/1")); err != nil {
		t.Fatal(err)
	}
	if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 2" {
		t.Fatalf("after the old release was deleted: %d %q", res.StatusCode, body)
	}
}

// TestDeployKeepOneReleaseNoGap: with keep_releases 1 (Deployer,
// Capistrano) the previous release is deleted right after current is
// repointed. Until the gateway's next periodic look at its root (up to a
// second) every page and asset was 404 from the deleted directory; nginx
// looks the root up per request and has no such gap.
func TestDeployKeepOneReleaseNoGap(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"releases/1/public/index.php": `<?php echo 'release 1';`,
		"releases/2/public/index.php": `<?php echo 'release 2';`,
		"releases/2/public/app.2.js":  "js 2",
	})
	current := filepath.Join(base, "current")
	if err := os.Symlink("releases/1", current); err != nil {
		t.Fatal(err)
	}
	docRoot := filepath.Join(current, "public")
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: base, Children: 1})
	g := startGWOn(t, fpm, docRoot, func(c *config.Config) { c.StaticRoot = docRoot })
	if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 1" {
		t.Fatalf("before the deploy: %d %q", res.StatusCode, body)
	}
	tmp := filepath.Join(base, "current.tmp")
	if err := os.Symlink("releases/2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(base, "releases/1")); err != nil {
		t.Fatal(err)
	}
	if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 2" {
		t.Errorf("a page right after the deploy: %d %q, want 200 %q", res.StatusCode, body, "release 2")
	}
	if res, body := g.get(t, "/app.2.js"); res.StatusCode != 200 || body != "js 2" {
		t.Errorf("an asset right after the deploy: %d %q", res.StatusCode, body)
	}
}

// TestDeploySymlinkSwitchProductionOpcache is the same deploy with the
// opcache settings production guides give (validate_timestamps=0: php-fpm
// never looks at a cached script's file again until it is reloaded), and
// an application that includes its code by __DIR__, as every framework
// does. opcache keys scripts by their resolved path: given the symlinked
// path, a worker would run the old release's compiled scripts for good.
// The static files come from the new release too, and a stylesheet a
// reproducible build gave the same size and mtime in both releases is not
// revalidated as unchanged.
func TestDeploySymlinkSwitchProductionOpcache(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	base := t.TempDir()
	const index = `<?php $s = opcache_get_status(false); echo (require __DIR__ . '/../app/version.php'), ($s && $s['opcache_enabled'] ? ' opcache' : ' no opcache');`
	css1 := strings.Repeat("body { color: red; }\n", 20)
	css2 := strings.Repeat("body { color: tan; }\n", 20)
	writeTree(t, base, map[string]string{
		"releases/1/public/index.php":   index,
		"releases/1/app/version.php":    `<?php return 'release 1';`,
		"releases/1/public/app.css":     css1,
		"releases/1/public/only-1.html": "old page",
		"releases/2/public/index.php":   index,
		"releases/2/app/version.php":    `<?php return 'release 2';`,
		"releases/2/public/app.css":     css2,
	})
	epoch := time.Unix(1, 0) // SOURCE_DATE_EPOCH, the Nix store's mtime
	for _, n := range []string{"1", "2"} {
		if err := os.Chtimes(filepath.Join(base, "releases", n, "public/app.css"), epoch, epoch); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("releases/1", current); err != nil {
		t.Fatal(err)
	}
	docRoot := filepath.Join(current, "public")
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: base, Children: 1, AdminValues: map[string]string{
		"opcache.enable": "1", "opcache.validate_timestamps": "0", "opcache.revalidate_freq": "60",
	}})
	g := startGWOn(t, fpm, docRoot, func(c *config.Config) { c.StaticRoot = docRoot })

	for i := 0; i < 3; i++ {
		if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 1 opcache" {
			t.Fatalf("before the deploy: %d %q", res.StatusCode, body)
		}
	}
	res, body := g.get(t, "/app.css")
	if res.StatusCode != 200 || body != css1 {
		t.Fatalf("app.css before the deploy: %d", res.StatusCode)
	}
	oldTag := res.Header.Get("ETag")

	tmp := filepath.Join(base, "current.tmp")
	if err := os.Symlink("releases/2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the router looks again once a second
	for i := 0; i < 3; i++ {
		if res, body := g.get(t, "/some/page"); res.StatusCode != 200 || body != "release 2 opcache" {
			t.Fatalf("after the deploy: %d %q, want release 2 (opcache must not keep the old release's scripts)", res.StatusCode, body)
		}
	}
	if res, body := g.get(t, "/only-1.html"); res.StatusCode != 200 || body != "release 2 opcache" {
		t.Errorf("a file only the old release has: %d %q, want the new release's front controller", res.StatusCode, body)
	}
	res, body = g.get(t, "/app.css", "If-None-Match", oldTag)
	if res.StatusCode != 200 || body != css2 {
		t.Errorf("app.css revalidated with the old release's ETag %s: %d, want 200 with the new release's content", oldTag, res.StatusCode)
	}
}

// TestStorageLinkOutOfRootIsLogged: Laravel's `php artisan storage:link`
// makes public/storage -> ../storage/app/public, a link out of the root.
// nginx follows it; the gateway answers 404 by design (README, "From nginx
// to sessiongate"), and its log must say why: a bare 404 line, the same as
// for a missing file, leaves the operator nothing to go on.
func TestStorageLinkOutOfRootIsLogged(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	writeTree(t, filepath.Dir(g.Root), map[string]string{"storage/app/public/avatar.txt": "avatar"})
	if err := os.Symlink("../storage/app/public", filepath.Join(g.Root, "storage")); err != nil {
		t.Fatal(err)
	}
	if res, body := g.get(t, "/storage/avatar.txt"); res.StatusCode != 404 || strings.Contains(body, "avatar") {
		t.Fatalf("/storage/avatar.txt: %d %q, want the documented 404", res.StatusCode, body)
	}
	if l, _ := logLine(g.Logs, `"path":"/storage/avatar.txt"`); !strings.Contains(l, `"level":"WARN"`) || !strings.Contains(l, "symlink") || !strings.Contains(l, "SESSIONGATE_STATIC_ROOT") {
		t.Errorf("the 404 of a link out of the root is not a warning that says so:\n%s", l)
	}
	// A missing file stays an ordinary request for the front controller.
	if res, _ := g.get(t, "/storage-missing.txt"); res.StatusCode != 200 {
		t.Errorf("/storage-missing.txt: %d, want the front controller's 200", res.StatusCode)
	}
	if l, _ := logLine(g.Logs, `"path":"/storage-missing.txt"`); !strings.Contains(l, `"level":"INFO"`) {
		t.Errorf("a missing file logged as more than a request:\n%s", l)
	}
}

// TestFollowSymlinksOutOfRoot: Debian's packaged PHP applications link
// their static files out of their root (phpMyAdmin's
// themes/pmahomme/jquery/jquery-ui.css -> /usr/share/javascript/...,
// Horde's themes -> /etc/horde/...), and nginx follows such links. By
// default the gateway does not (404, with a warning); with the target
// directory in SESSIONGATE_FOLLOW_SYMLINKS, or `any`, the static file is
// served and a linked script runs in php-fpm.
func TestFollowSymlinksOutOfRoot(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"site/index.php":                 `<?php echo 'front';`,
		"javascript/jquery-ui/theme.css": "body{color:red}",
		"javascript/.secret":             "dot",
		"app-lib/tool.php":               `<?php echo 'tool ran';`,
		"app-lib/index.php":              `<?php echo 'app index';`,
		"elsewhere/private.txt":          "private",
	})
	site := filepath.Join(base, "site")
	for name, target := range map[string]string{
		"jquery":      filepath.Join(base, "javascript/jquery-ui"),
		"js":          filepath.Join(base, "javascript"),
		"tool.php":    filepath.Join(base, "app-lib/tool.php"),
		"app":         filepath.Join(base, "app-lib"),
		"private.txt": filepath.Join(base, "elsewhere/private.txt"),
	} {
		if err := os.Symlink(target, filepath.Join(site, name)); err != nil {
			t.Fatal(err)
		}
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: site, Children: 2})
	for _, tc := range []struct {
		follow  []string
		allowed map[string]string // path -> body, "" = 404
	}{
		{nil, map[string]string{"/jquery/theme.css": "", "/tool.php": "", "/private.txt": "", "/app/": ""}},
		{[]string{filepath.Join(base, "javascript"), filepath.Join(base, "app-lib")},
			map[string]string{"/jquery/theme.css": "body{color:red}", "/tool.php": "tool ran", "/private.txt": "", "/js/.secret": "", "/app/": "app index"}},
		{[]string{"any"}, map[string]string{"/jquery/theme.css": "body{color:red}", "/tool.php": "tool ran", "/private.txt": "private", "/app/": "app index"}},
	} {
		g := startGWOn(t, fpm, site, func(c *config.Config) {
			if tc.follow != nil {
				c.FollowSymlinks = tc.follow
			}
		})
		for p, want := range tc.allowed {
			res, body := g.get(t, p)
			if want == "" && res.StatusCode != 404 || want != "" && (res.StatusCode != 200 || body != want) {
				t.Errorf("FOLLOW_SYMLINKS %v: %s: %d %q, want %q", tc.follow, p, res.StatusCode, body, want)
			}
		}
		if res, _ := g.get(t, "/jquery/theme.css"); tc.follow != nil && res.Header.Get("Content-Type") != "text/css" {
			t.Errorf("FOLLOW_SYMLINKS %v: Content-Type %q", tc.follow, res.Header.Get("Content-Type"))
		}
	}
}
