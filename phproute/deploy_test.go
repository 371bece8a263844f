package phproute

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRootFollowsSymlinkSwitch is the atomic deploy of Capistrano, Deployer
// and Envoyer: the document root is current/public, current is a symlink to
// releases/N, and a deploy repoints it (ln -sfn) and later deletes old
// releases. Like nginx, which looks the root up per request, the router must
// route against the new release, not keep the directory it opened at start.
func TestRootFollowsSymlinkSwitch(t *testing.T) {
	base := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("releases/1/public/index.php", "<?php")
	write("releases/1/public/app.111.js", "old")
	write("releases/2/public/index.php", "<?php")
	write("releases/2/public/app.222.js", "new")
	current := filepath.Join(base, "current")
	if err := os.Symlink("releases/1", current); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, current, "/index.php")
	if rt := r.Resolve("/app.111.js"); rt.Kind != Static {
		t.Fatalf("before the deploy: %+v", rt)
	}

	// ln -sfn releases/2 current; then the old release is removed.
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

	deadline := time.Now().Add(3 * time.Second)
	for {
		new, front := r.Resolve("/app.222.js"), r.Resolve("/some/pretty/url")
		if new.Kind == Static && new.File == "app.222.js" && front.Kind == PHP {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3s after the deploy: /app.222.js = %+v, /some/pretty/url = %+v", new, front)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, _, err := r.Open(Route{File: "app.222.js"})
	if err != nil {
		t.Fatalf("open after the deploy: %v", err)
	}
	defer f.Close()
	b := make([]byte, 3)
	if _, err := f.Read(b); err != nil || string(b) != "new" {
		t.Fatalf("read %q, %v; want the new release's file", b, err)
	}
}

// TestAbsoluteSymlinkInsideRoot: os.Root refuses every absolute symlink,
// but one that leads back inside the root (ln -s /srv/www/img/logo.png
// logo.png, how many deploy scripts and `ln -s "$PWD/..."` write them)
// reaches nothing outside it; nginx serves it, and so must the router.
// One leading outside stays refused.
func TestAbsoluteSymlinkInsideRoot(t *testing.T) {
	root, outside := site(t)
	for link, target := range map[string]string{
		"abs.css":   filepath.Join(root, "style.css"),
		"abs-dir":   filepath.Join(root, "docs"),
		"abs-out":   filepath.Join(outside, "secret.txt"),
		"abs-front": filepath.Join(root, "sub"),
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for path, want := range map[string]Route{
		"/abs.css":                {Kind: Static, File: "style.css", Name: "abs.css"},
		"/abs-dir/index.html":     {Kind: Static, File: "docs/index.html", Name: "index.html"},
		"/abs-dir/":               {Kind: Static, File: "docs/index.html", Name: "index.html"},
		"/abs-dir":                {Kind: Redirect, Location: "/abs-dir/"},
		"/abs-front/script.php":   {Kind: PHP, ScriptName: "/abs-front/script.php"},
		"/abs-front/script.php/x": {Kind: PHP, ScriptName: "/abs-front/script.php", PathInfo: "/x"},
	} {
		got := r.Resolve(path)
		got.Reason = ""
		if routed(t, r, got) != want {
			t.Errorf("%s: %+v, want %+v", path, got, want)
		}
		if got.Kind == Static {
			f, _, err := r.Open(got)
			if err != nil {
				t.Errorf("%s: open: %v", path, err)
			} else {
				f.Close()
			}
		}
	}
	if got := r.Resolve("/abs-out"); got.Kind != NotFound {
		t.Errorf("/abs-out (outside the root): %+v, want not found", got)
	}
}

// TestDeployerSharedStorageLink: Deployer's and Capistrano's Laravel
// recipes link storage/ of every release to shared/storage, and
// `php artisan storage:link` makes public/storage -> ../storage/app/public,
// so uploads lead out of the release to shared/storage/app/public. Listing
// that directory in SESSIONGATE_FOLLOW_SYMLINKS serves them, before and
// after a deploy repoints current, while other links out stay refused.
func TestDeployerSharedStorageLink(t *testing.T) {
	base := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("shared/storage/app/public/avatar.jpg", "jpg")
	write("shared/.env", "APP_KEY=secret")
	for _, n := range []string{"1", "2"} {
		write("releases/"+n+"/public/index.php", "<?php")
		link("../../shared/storage", "releases/"+n+"/storage")
		link("../storage/app/public", "releases/"+n+"/public/storage")
		link("../../../shared/.env", "releases/"+n+"/public/env.txt")
	}
	link("releases/1", "current")
	r, err := New(filepath.Join(base, "current/public"), "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.FollowSymlinksOut(false, []string{filepath.Join(base, "shared/storage/app/public")})
	check := func(when string) {
		t.Helper()
		rt := r.Resolve("/storage/avatar.jpg")
		if rt.Kind != Static {
			t.Fatalf("%s: /storage/avatar.jpg = %+v", when, rt)
		}
		f, _, err := r.Open(rt)
		if err != nil {
			t.Fatalf("%s: open: %v", when, err)
		}
		f.Close()
		if rt := r.Resolve("/env.txt"); rt.Kind != NotFound {
			t.Errorf("%s: /env.txt (a link out to shared/.env) = %+v, want not found", when, rt)
		}
	}
	check("before the deploy")
	lookEvery(t, 0)
	link("releases/2", "current.tmp")
	if err := os.Rename(filepath.Join(base, "current.tmp"), filepath.Join(base, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(base, "releases/1")); err != nil {
		t.Fatal(err)
	}
	check("after the deploy")
	if got := r.RealPath(); got != filepath.Join(base, "releases/2/public") {
		t.Errorf("RealPath after the deploy: %s", got)
	}
}

// TestFollowSymlinksDirThroughCurrent: a directory listed in
// SESSIONGATE_FOLLOW_SYMLINKS through the deploy symlink (Symfony's
// `assets:install --symlink` makes public/bundles/x -> vendor/.../public,
// so /srv/app/current/vendor is listed) was resolved once, at start, to
// releases/1/vendor: after a deploy the links of the new release led to
// releases/2/vendor, outside what was allowed, and every such asset was 404
// until a restart. It is resolved again when the root is.
func TestFollowSymlinksDirThroughCurrent(t *testing.T) {
	base, current := releases(t, map[string]string{"vendor/acme/admin/public/admin.css": "css %N"},
		map[string]string{"public/bundles/admin": "../../vendor/acme/admin/public"})
	r := newRouter(t, current, "")
	r.FollowSymlinksOut(false, []string{filepath.Join(current, "vendor")})
	read := func(when string) string {
		t.Helper()
		rt := r.Resolve("/bundles/admin/admin.css")
		if rt.Kind != Static {
			t.Fatalf("%s: %+v", when, rt)
		}
		f, _, err := r.Open(rt)
		if err != nil {
			t.Fatalf("%s: open: %v", when, err)
		}
		defer f.Close()
		b := make([]byte, 16)
		n, _ := f.Read(b)
		return string(b[:n])
	}
	if got := read("before the deploy"); got != "css 1" {
		t.Fatalf("before the deploy: %q", got)
	}
	lookEvery(t, 0)
	deploy(t, current, "2")
	if err := os.RemoveAll(filepath.Join(base, "releases/1")); err != nil {
		t.Fatal(err)
	}
	if got := read("after the deploy"); got != "css 2" {
		t.Fatalf("after the deploy: %q", got)
	}
}

// TestDeletedRootSeenAtOnce: with keep_releases 1 (Deployer, Capistrano)
// the previous release is deleted right after current is repointed. The
// router looked at its root at most once a second, so until then every
// request resolved in the deleted directory: static files, and the front
// controller itself, 404, where nginx, looking the root up per request,
// serves the new release. A root found deleted is looked up again at once.
func TestDeletedRootSeenAtOnce(t *testing.T) {
	base, current := releases(t, map[string]string{"public/index.php": "x", "public/app.%N.js": "x"}, nil)
	lookEvery(t, time.Hour) // no periodic look during the test
	r := newRouter(t, current, "/index.php")
	if rt := r.Resolve("/app.1.js"); rt.Kind != Static {
		t.Fatalf("before the deploy: %+v", rt)
	}
	deploy(t, current, "2")
	if err := os.RemoveAll(filepath.Join(base, "releases/1")); err != nil {
		t.Fatal(err)
	}
	if rt := r.Resolve("/app.2.js"); rt.Kind != Static {
		t.Errorf("the new release's file right after the old release was deleted: %+v", rt)
	}
	if rt := r.Resolve("/some/page"); rt.Kind != PHP {
		t.Errorf("a page right after the old release was deleted: %+v", rt)
	}
	if got, want := r.RealPath(), filepath.Join(base, "releases/2/public"); got != want {
		t.Errorf("RealPath: %s, want %s", got, want)
	}
	f, _, err := r.Open(Route{File: "app.2.js"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	f.Close()
}

// TestOneRequestOneRelease: a request is routed, then its file opened or
// its script's DOCUMENT_ROOT taken. Open and RealPath looked at the root
// path again too, so a deploy landing in between split the request: routed
// as the old release's asset, then opened in the new release (404), or
// routed to a script of the old release and run from the new one. They use
// the root Resolve used.
func TestOneRequestOneRelease(t *testing.T) {
	base, current := releases(t, map[string]string{"public/app.%N.js": "x"}, nil)
	r := newRouter(t, current, "")
	lookEvery(t, 0) // every look at the root may find the switch
	rt := r.Resolve("/app.1.js")
	if rt.Kind != Static {
		t.Fatalf("before the deploy: %+v", rt)
	}
	// The deploy lands between routing and opening.
	deploy(t, current, "2")
	if got, want := r.RealPath(), filepath.Join(base, "releases/1/public"); got != want {
		t.Errorf("RealPath after Resolve: %s, want the release it routed in, %s", got, want)
	}
	f, _, err := r.Open(rt)
	if err != nil {
		t.Fatalf("opening the file routed in the old release: %v", err)
	}
	f.Close()
	// The next request sees the new release.
	if rt := r.Resolve("/app.2.js"); rt.Kind != Static {
		t.Errorf("the next request: %+v", rt)
	}
}

// TestScriptRootIsTheReleaseItWasRoutedIn: a PHP request is routed in one
// release, then another request finds a deploy before the first one's
// params are built (a WordPress REST body read, a slow upload's, lies in
// between). RealPath then names the new release; the first request's
// DOCUMENT_ROOT must still be the one it was routed in, or php-fpm runs
// the new release's script for it, or none ("Primary script unknown")
// when the script is new in the old release only.
func TestScriptRootIsTheReleaseItWasRoutedIn(t *testing.T) {
	base, current := releases(t, map[string]string{"public/only%N.php": "<?php"}, nil)
	r := newRouter(t, current, "")
	lookEvery(t, 0) // every look at the root may find the switch
	first := r.Resolve("/only1.php")
	if first.Kind != PHP || first.Root != filepath.Join(base, "releases/1/public") {
		t.Fatalf("before the deploy: %+v", first)
	}
	deploy(t, current, "2")
	second := r.Resolve("/only2.php")
	if second.Kind != PHP || second.Root != filepath.Join(base, "releases/2/public") {
		t.Fatalf("the request after the deploy: %+v", second)
	}
	if got, want := r.RealPath(), filepath.Join(base, "releases/2/public"); got != want {
		t.Fatalf("RealPath after the second request: %s, want %s", got, want)
	}
	if got, want := first.Root, filepath.Join(base, "releases/1/public"); got != want {
		t.Errorf("the first request's root: %s, want the release it was routed in, %s", got, want)
	}
	if rt := r.Resolve("/only1.php"); rt.Kind != NotFound {
		t.Errorf("the old release's script after the deploy: %+v", rt)
	}
	for _, p := range []string{"/", "/style.css", "/nothing"} {
		if rt := r.Resolve(p); rt.Root != "" {
			t.Errorf("%s (%v): Root %q, want it only on PHP routes", p, rt.Kind, rt.Root)
		}
	}
}

// TestOneResolveOneRelease: while one request resolves a path, another's
// look at the root may find a deploy. The lookup's helpers each loaded the
// open root again, so a path could be looked up in one release and the
// link in it resolved or checked in the other: a link out of the root to
// the old release's vendor/ (listed through current/vendor) checked
// against the new release's directory, and refused (404, and a warning
// that the operator must list a directory already listed). Releases are
// switched back and forth, each switch found at once, while the path is
// resolved; every resolution must find the file.
func TestOneResolveOneRelease(t *testing.T) {
	_, current := releases(t, map[string]string{"vendor/acme/admin.css": "css %N"}, map[string]string{"public/acme": "../vendor/acme"})
	lookEvery(t, time.Hour) // only the switching goroutine looks
	r := newRouter(t, current, "")
	r.FollowSymlinksOut(false, []string{filepath.Join(current, "vendor")})

	stop := make(chan struct{})
	switched := make(chan int)
	go func() {
		n := 0
		defer func() { switched <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.Symlink("releases/"+[]string{"2", "1"}[n%2], current+".tmp"); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(current+".tmp", current); err != nil {
				t.Error(err)
				return
			}
			r.look(true)
		}
	}()
	deadline := time.Now().Add(time.Second)
	for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
		if rt := r.Resolve("/acme/admin.css"); rt.Kind != Static {
			t.Errorf("resolution %d, while releases switch: %+v", i, rt)
			break
		}
	}
	close(stop)
	if n := <-switched; n < 2 {
		t.Fatalf("releases switched %d times", n)
	}
}

// TestStaticFileOpenedInTheReleaseItWasRoutedIn: a static file is routed
// in one release, then another request finds a deploy before this one
// opens it. Open used whichever root was open by then: the old release's
// hashed asset (app.1.js, still on disk) was looked for in the new release
// (404), and a file a link led out of the root to (releases/1/vendor,
// listed through current/vendor) was checked against the new release's
// SESSIONGATE_FOLLOW_SYMLINKS directories and refused (404).
func TestStaticFileOpenedInTheReleaseItWasRoutedIn(t *testing.T) {
	_, current := releases(t, map[string]string{"public/app.%N.js": "js %N", "vendor/acme/admin.css": "css %N"},
		map[string]string{"public/acme": "../vendor/acme"})
	r := newRouter(t, current, "")
	r.FollowSymlinksOut(false, []string{filepath.Join(current, "vendor")})
	lookEvery(t, 0) // every look at the root may find the switch
	asset, linked := r.Resolve("/app.1.js"), r.Resolve("/acme/admin.css")
	if asset.Kind != Static || linked.Kind != Static {
		t.Fatalf("before the deploy: %+v, %+v", asset, linked)
	}
	deploy(t, current, "2")
	// Another request finds the deploy.
	if rt := r.Resolve("/app.2.js"); rt.Kind != Static {
		t.Fatalf("the request after the deploy: %+v", rt)
	}
	for rt, want := range map[*Route]string{&asset: "js 1", &linked: "css 1"} {
		f, _, err := r.Open(*rt)
		if err != nil {
			t.Errorf("%s, routed in the old release, opened after another request found the deploy: %v", rt.Name, err)
			continue
		}
		b := make([]byte, 16)
		n, _ := f.Read(b)
		f.Close()
		if string(b[:n]) != want {
			t.Errorf("%s: read %q, want the old release's %q", rt.Name, b[:n], want)
		}
	}
}
