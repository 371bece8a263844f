package phproute

import (
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// site builds a document root next to a directory outside it, with the
// files every routing rule needs.
func site(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	files := map[string]string{
		"index.php":                    "<?php echo 'front';",
		"hello.php":                    "<?php echo 'hello';",
		"style.css":                    "body{}",
		"notes.txt":                    "<?php echo 'never run';",
		"X.PHP":                        "<?php echo 'source';",
		"dir/index.php":                "<?php",
		"docs/index.html":              "<h1>docs</h1>",
		"both/index.php":               "<?php",
		"both/index.html":              "html",
		"uploads/x.jpg":                "<?php system('id');",
		"a.php/b.php":                  "<?php",
		"sub/script.php":               "<?php",
		"file with space.txt":          "space",
		"caf\u00e9.txt":                "unicode",
		".env":                         "SECRET=1",
		".git/config":                  "[core]",
		"sub/.htaccess":                "deny",
		".well-known/acme-challenge/t": "token",
		".well-known/.hidden":          "no",
		"../outside/secret.txt":        "secret",
		"../outside/evil.php":          "<?php",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"empty", "a.php/c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-in.css":     "style.css",
		"link-dir":        "docs",
		"out-dir":         outside,
		"out-file.txt":    filepath.Join(outside, "secret.txt"),
		"out-rel.txt":     "../outside/secret.txt",
		"out-evil.php":    filepath.Join(outside, "evil.php"),
		"sub/up-and-out":  "../../outside",
		"dangling.txt":    "nowhere.txt",
		"uploads/lnk.php": "x.jpg",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestResolve(t *testing.T) {
	root, _ := site(t)
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	php := func(script, info string) Route { return Route{Kind: PHP, ScriptName: script, PathInfo: info} }
	static := func(file string) Route { return Route{Kind: Static, File: file, Name: path.Base(file)} }
	front := php("/index.php", "")
	k := func(kind Kind) Route { return Route{Kind: kind} }
	// A link out of the root, which nginx would follow: 404 with a warning.
	outOfRoot := Route{Kind: NotFound, Warn: true}

	tests := []struct {
		path string
		want Route
	}{
		// Static files: served by the gateway, whatever they contain.
		{"/style.css", static("style.css")},
		{"/notes.txt", static("notes.txt")},
		{"/file%20with%20space.txt", static("file with space.txt")},
		{"/caf%C3%A9.txt", static("caf\u00e9.txt")},
		{"//style.css", static("style.css")},
		{"/./style.css", static("style.css")},
		{"/docs/../style.css", static("style.css")},
		{"/link-in.css", static("link-in.css")},
		{"/link-dir/", static("link-dir/index.html")},

		// PHP scripts.
		{"/hello.php", php("/hello.php", "")},
		{"/sub/script.php", php("/sub/script.php", "")},
		{"/index.php", front},
		{"/hell%6F.php", php("/hello.php", "")},

		// Directories: redirect without slash, index files with it.
		{"/", front},
		{"/dir", Route{Kind: Redirect, Location: "/dir/"}},
		{"/dir/", php("/dir/index.php", "")},
		{"/docs/", static("docs/index.html")},
		{"/both/", php("/both/index.php", "")},
		{"/empty/", front},
		{"/dir/.", php("/dir/index.php", "")},
		{"/caf%C3%A9", front},

		// PATH_INFO only after a real script.
		{"/hello.php/extra", php("/hello.php", "/extra")},
		{"/hello.php/a/b/", php("/hello.php", "/a/b/")},
		{"/hello.php/", php("/hello.php", "/")},
		{"/hello.php/x.php", php("/hello.php", "/x.php")},
		{"/hello.php/a%20b", php("/hello.php", "/a b")},
		{"/a.php/b.php/more", php("/a.php/b.php", "/more")}, // a.php is a directory
		{"/a.php/c/x", k(NotFound)},                         // names a .php that is no script
		{"/style.css/x", front},
		// Like nginx's fastcgi_split_path_info ^(.+?\.php)(/.*)$: a script
		// name is cut only before a "/", so a longer name that merely
		// starts like a script does not run it.
		{"/hello.phpx", front},
		{"/hello.php.bak/x", front},

		// Front controller for everything else, REQUEST_URI kept by the caller.
		{"/blog/2024/hello-world", front},
		{"/missing.html", front},
		{"/uploads/x.jpg/whatever", front},
		// A segment longer than a file name can be (a token or a long
		// slug) names no file: the front controller's, as with try_files.
		{"/" + strings.Repeat("a", 300), front},
		{"/docs/" + strings.Repeat("%C3%A9", 150), front},
		{"/dir/" + strings.Repeat("a", 300) + "/x", front},
		{"/" + strings.Repeat("a", 300) + ".php", k(NotFound)},
		{"/hello.php/" + strings.Repeat("a", 300), php("/hello.php", "/"+strings.Repeat("a", 300))},

		// Missing scripts: 404, never the front controller.
		{"/missing.php", k(NotFound)},
		{"/missing.php/info", k(NotFound)},
		{"/sub/missing.php", k(NotFound)},
		{"/uploads/x.jpg/x.php", k(NotFound)},
		{"/uploads/x.jpg/x.php/y", k(NotFound)},
		{"/uploads/x.jpg%00.php", k(BadRequest)},
		{"/uploads/lnk.php", php("/uploads/lnk.php", "")}, // in-root symlink named .php: php-fpm runs it, like nginx

		// Case: .PHP is neither run nor served.
		{"/X.PHP", k(NotFound)},
		{"/X.PHP/info", front},

		// Dotfiles.
		{"/.env", k(NotFound)},
		{"/.git/config", k(NotFound)},
		{"/.git/", k(NotFound)},
		{"/sub/.htaccess", k(NotFound)},
		{"/%2eenv", k(NotFound)}, // %2e decodes to "."
		{"/.well-known/acme-challenge/t", static(".well-known/acme-challenge/t")},
		{"/.well-known/.hidden", k(NotFound)},
		{"/sub/.well-known/x", k(NotFound)},

		// Traversal: never above the root.
		{"/..", k(BadRequest)},
		{"/../outside/secret.txt", k(BadRequest)},
		{"/%2e%2e/outside/secret.txt", k(BadRequest)},
		{"/%2E%2E%2Foutside/secret.txt", k(BadRequest)},
		{"/docs/../../outside/secret.txt", k(BadRequest)},
		{"/..%2f..%2fetc/passwd", k(BadRequest)},

		// Symlinks leaving the root: 404, and the operator is told.
		{"/out-file.txt", outOfRoot},
		{"/out-rel.txt", outOfRoot},
		{"/out-dir/secret.txt", outOfRoot},
		{"/out-dir/", outOfRoot},
		{"/out-dir", outOfRoot},
		{"/out-evil.php", outOfRoot},
		{"/out-evil.php/x", outOfRoot},
		{"/sub/up-and-out/secret.txt", outOfRoot},
		{"/dangling.txt", front},

		// Hostile encodings: 400.
		{"/hello.php%0a", k(BadRequest)},
		{"/hello.php/%0a", k(BadRequest)},
		{"/index.php%0ainfo.php", k(BadRequest)},
		{"/a%0d%0aSet-Cookie:x", k(BadRequest)},
		{"/style.css%00.php", k(BadRequest)},
		{"/x%7f", k(BadRequest)},
		{"/x%zz", k(BadRequest)},
		{"/x%", k(BadRequest)},
		{"", k(BadRequest)},
		{"*", k(BadRequest)},
		{"style.css", k(BadRequest)},
	}
	for _, tt := range tests {
		got := r.Resolve(tt.path)
		got.Reason = ""
		if got = routed(t, r, got); got != tt.want {
			t.Errorf("Resolve(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
		if got.Kind == PHP && !hasPHPSuffix(got.ScriptName) {
			t.Errorf("Resolve(%q) names non-.php script %q", tt.path, got.ScriptName)
		}
	}
}

func hasPHPSuffix(s string) bool { return len(s) > 4 && s[len(s)-4:] == ".php" }

func TestResolveIndexOff(t *testing.T) {
	root, _ := site(t)
	r, err := New(root, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range []string{"/blog/post", "/empty/", "/missing.html"} {
		if got := r.Resolve(p); got.Kind != NotFound {
			t.Errorf("Resolve(%q) with INDEX=off = %+v, want NotFound", p, got)
		}
	}
	if got := r.Resolve("/hello.php"); got.Kind != PHP {
		t.Errorf("explicit script with INDEX=off = %+v, want PHP", got)
	}
	// A directory index is not the front controller: still served.
	if got := r.Resolve("/"); got.Kind != PHP || got.ScriptName != "/index.php" {
		t.Errorf("/ with INDEX=off = %+v, want the directory index /index.php", got)
	}
}

// TestNoPHPUnder: upload directories hold what clients sent, so a script
// there must not run (nginx: location ~ /uploads/.*\.php$ { deny all; }),
// however the URL names it, and its source is not served either. The
// rest of the directory, the front controller for what is missing there,
// and a sibling directory whose name only starts the same are unchanged.
func TestNoPHPUnder(t *testing.T) {
	root, _ := site(t)
	for name, body := range map[string]string{
		"uploads/shell.php":      "<?php",
		"uploads/sub/index.php":  "<?php",
		"uploads/deep/a.php":     "<?php",
		"uploads-old/kept.php":   "<?php",
		"uploads/deep/photo.png": "png",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.NoPHPUnder([]string{"/uploads"})
	for _, p := range []string{"/uploads/shell.php", "/uploads//shell.php", "/x/../uploads/shell.php", "/uploads/shell%2ephp",
		"/uploads/sub/", "/uploads/deep/a.php/extra", "/uploads/lnk.php"} {
		if got := r.Resolve(p); got.Kind != Forbidden {
			t.Errorf("Resolve(%q) = %+v, want Forbidden", p, got)
		}
	}
	for p, want := range map[string]Route{
		"/uploads/deep/photo.png": {Kind: Static, File: "uploads/deep/photo.png", Name: "photo.png"},
		"/uploads/missing.jpg":    {Kind: PHP, ScriptName: "/index.php"},
		"/uploads-old/kept.php":   {Kind: PHP, ScriptName: "/uploads-old/kept.php"},
		"/hello.php":              {Kind: PHP, ScriptName: "/hello.php"},
	} {
		got := r.Resolve(p)
		if got = routed(t, r, got); got != want {
			t.Errorf("Resolve(%q) = %+v, want %+v", p, got, want)
		}
	}
}

func TestResolveMissingFrontController(t *testing.T) {
	root := t.TempDir()
	r, err := New(root, "/app.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Resolve("/anything"); got.Kind != NotFound {
		t.Errorf("missing front controller: %+v, want NotFound", got)
	}
}

func TestNewRejectsBadIndex(t *testing.T) {
	for _, idx := range []string{"index.php", "/index.html", "/x.PHP"} {
		if _, err := New(t.TempDir(), idx); err == nil {
			t.Errorf("New(index=%q) accepted", idx)
		}
	}
	if _, err := New(filepath.Join(t.TempDir(), "nope"), "/index.php"); err == nil {
		t.Error("New on a missing root accepted")
	}
}

func TestOpen(t *testing.T) {
	root, _ := site(t)
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, fi, err := r.Open(Route{File: "style.css"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "body{}" || fi.Size() != 6 {
		t.Errorf("Open(style.css) = %q size %d", b, fi.Size())
	}
	for _, rel := range []string{"docs", "out-file.txt", "../outside/secret.txt", "out-dir/secret.txt", "nope"} {
		if f, _, err := r.Open(Route{File: rel}); err == nil {
			f.Close()
			t.Errorf("Open(%q) succeeded", rel)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "/hello.php/x", "/%2e%2e/x", "/a/../../b", "/.well-known/x", "/x.jpg/y.php"} {
		f.Add(s)
	}
	root := f.TempDir()
	for _, name := range []string{"index.php", "a/b.php", "c.txt"} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	r, err := New(root, "/index.php")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := r.Resolve(p)
		switch got.Kind {
		case PHP:
			if !hasPHPSuffix(got.ScriptName) || got.ScriptName[0] != '/' {
				t.Fatalf("%q: script %q", p, got.ScriptName)
			}
			fi, err := os.Stat(filepath.Join(root, got.ScriptName))
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%q: script %q is not a regular file in the root", p, got.ScriptName)
			}
		case Static:
			if filepath.IsAbs(got.File) || !filepath.IsLocal(got.File) {
				t.Fatalf("%q: static file %q not local", p, got.File)
			}
		}
	})
}

// Debian's packaged PHP applications (phpMyAdmin, Roundcube, Horde, Cacti)
// link their static files out of their root (to /usr/share/javascript,
// /etc/<app>): FollowSymlinksOut lets an operator allow that, into listed
// directories or anywhere, as nginx's default does.
func TestFollowSymlinksOut(t *testing.T) {
	root, outside := site(t)
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	// A linked application directory (/phpmyadmin -> /usr/share/phpmyadmin)
	// is asked for by its directory URL, which runs its own index.
	for name, body := range map[string]string{"app/index.php": "<?php", "docs/index.html": "secret"} {
		p := filepath.Join(outside, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		anywhere bool
		dirs     []string
		allowed  bool
	}{
		{"into a listed directory", false, []string{outside}, true},
		{"into a parent of a listed directory", false, []string{filepath.Dir(outside)}, true},
		{"anywhere", true, nil, true},
		{"into another directory", false, []string{t.TempDir()}, false},
		{"root only", false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(root, "/index.php")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			r.FollowSymlinksOut(tc.anywhere, tc.dirs)
			for path, want := range map[string]Route{
				"/out-file.txt":              {Kind: Static, File: filepath.Join(realOutside, "secret.txt"), Name: "out-file.txt"},
				"/out-rel.txt":               {Kind: Static, File: filepath.Join(realOutside, "secret.txt"), Name: "out-rel.txt"},
				"/out-dir/secret.txt":        {Kind: Static, File: filepath.Join(realOutside, "secret.txt"), Name: "secret.txt"},
				"/sub/up-and-out/secret.txt": {Kind: Static, File: filepath.Join(realOutside, "secret.txt"), Name: "secret.txt"},
				"/out-evil.php":              {Kind: PHP, ScriptName: "/out-evil.php"},
				"/out-dir/evil.php/x":        {Kind: PHP, ScriptName: "/out-dir/evil.php", PathInfo: "/x"},
				"/out-dir/app/":              {Kind: PHP, ScriptName: "/out-dir/app/index.php"},
				"/out-dir/docs/":             {Kind: Static, File: filepath.Join(realOutside, "docs/index.html"), Name: "index.html"},
			} {
				got := r.Resolve(path)
				got.Reason = ""
				if !tc.allowed {
					want = Route{Kind: NotFound, Warn: true}
				}
				if routed(t, r, got) != want {
					t.Errorf("%s: got %+v, want %+v", path, got, want)
				}
				if tc.allowed && want.Kind == Static {
					f, _, err := r.Open(got)
					if err != nil {
						t.Fatalf("Open(%s): %v", got.File, err)
					}
					b, _ := io.ReadAll(f)
					f.Close()
					if string(b) != "secret" {
						t.Errorf("Open(%s) = %q", got.File, b)
					}
				}
			}
			// An absolute path is opened only where links may lead.
			if f, _, err := r.Open(Route{File: filepath.Join(realOutside, "secret.txt")}); (err == nil) != tc.allowed {
				if f != nil {
					f.Close()
				}
				t.Errorf("Open of the absolute target: err %v, allowed %v", err, tc.allowed)
			}
			if f, _, err := r.Open(Route{File: "/etc/passwd"}); err == nil && !tc.anywhere {
				f.Close()
				t.Error("Open(/etc/passwd) succeeded")
			}
		})
	}
}

// TestOutOfRootWarningNamesTarget: the warning for a link out of the root
// is how an operator finds what to add to SESSIONGATE_FOLLOW_SYMLINKS
// (README, Debian's packaged applications), so it names where the path
// leads, not only the path asked for.
func TestOutOfRootWarningNamesTarget(t *testing.T) {
	root, outside := site(t)
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for path, target := range map[string]string{
		"/out-file.txt":       filepath.Join(realOutside, "secret.txt"),
		"/out-dir/secret.txt": filepath.Join(realOutside, "secret.txt"),
	} {
		got := r.Resolve(path)
		if got.Kind != NotFound || !got.Warn || !strings.Contains(got.Reason, target) {
			t.Errorf("%s: got %+v, want a warning naming %s", path, got, target)
		}
	}
}

// TestDeepPathThroughLinkOutOfRootIsCheap guards against a client making
// the gateway spin: a path under a link out of the root (allowed or not)
// is resolved to name where it leads, and a client chooses how many
// segments follow the link. 20,000 of them (a 40 KB request line, well
// under SESSIONGATE_MAX_HEADER_BYTES) took seconds of CPU when every
// prefix was resolved from the longest down.
func TestDeepPathThroughLinkOutOfRootIsCheap(t *testing.T) {
	root, outside := site(t)
	deep := "/out-dir/" + strings.Repeat("a/", 20000)
	for _, tc := range []struct {
		name string
		dirs []string
		want Kind
	}{
		{"root only", nil, NotFound},
		{"into a listed directory", []string{outside}, PHP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(root, "/index.php")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			r.FollowSymlinksOut(false, tc.dirs)
			start := time.Now()
			got := r.Resolve(deep)
			if took := time.Since(start); took > time.Second {
				t.Errorf("Resolve of a %d-byte path under a link took %v", len(deep), took)
			}
			if got.Kind != tc.want {
				t.Errorf("got %+v, want %v", got.Kind, tc.want)
			}
		})
	}
}

// TestLinkSwappedAfterRoutingStaysInListedDirectory guards the re-check at
// open time for a file a link led out of the root to: whoever can write in
// a listed directory (an application's own data directory) swaps a routed
// file for a symlink leading elsewhere between Resolve and Open, in a loop,
// and must never get a file outside SESSIONGATE_FOLLOW_SYMLINKS served.
func TestLinkSwappedAfterRoutingStaysInListedDirectory(t *testing.T) {
	root, outside := site(t)
	allowed := filepath.Join(filepath.Dir(root), "allowed")
	if err := os.Mkdir(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(allowed, filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.FollowSymlinksOut(false, []string{allowed})

	target := filepath.Join(allowed, "file.txt")
	if err := os.WriteFile(target, []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tmpFile, tmpLink := filepath.Join(allowed, "f.tmp"), filepath.Join(allowed, "l.tmp")
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(tmpLink)
			if os.Symlink(filepath.Join(outside, "secret.txt"), tmpLink) == nil {
				os.Rename(tmpLink, target)
			}
			if os.WriteFile(tmpFile, []byte("public"), 0o644) == nil {
				os.Rename(tmpFile, target)
			}
		}
	}()
	defer func() { close(stop); <-done }()

	served := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		rt := r.Resolve("/lib/file.txt")
		if rt.Kind != Static {
			continue
		}
		f, _, err := r.Open(rt)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(f)
		f.Close()
		served++
		if string(b) == "secret" {
			t.Fatalf("after %d files served, %s was served through %s, a link swapped in after routing", served, filepath.Join(outside, "secret.txt"), rt.File)
		}
	}
	if served == 0 {
		t.Error("the file was never served")
	}
}

// TestOpenDoesNotHangOnFIFOSwappedIn guards against a request that hangs
// for ever: a routed file swapped for a FIFO before Open (in the root, or in
// a directory a link led out to) blocked open(2) until a writer came, a
// goroutine and an OS thread held per request, instead of being refused as
// not a regular file.
func TestOpenDoesNotHangOnFIFOSwappedIn(t *testing.T) {
	root, outside := site(t)
	if err := os.WriteFile(filepath.Join(outside, "lib.js"), []byte("js"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.FollowSymlinksOut(false, []string{outside})
	for path, file := range map[string]string{
		"/style.css":      filepath.Join(root, "style.css"),
		"/out-dir/lib.js": filepath.Join(outside, "lib.js"),
	} {
		rt := r.Resolve(path)
		if rt.Kind != Static {
			t.Fatalf("%s: %+v", path, rt)
		}
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(file, 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			f, _, err := r.Open(rt)
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: a FIFO was opened as a static file", path)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: Open of a file swapped for a FIFO after routing still blocks after 2s", path)
			// Let the blocked open return so the test can end.
			if w, err := os.OpenFile(file, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
		}
	}
}

// A client chooses how many ".php/" a path holds. Each made the PATH_INFO
// search look up a longer prefix, so the work grew with the square of
// their number (a 96 KB path took 5 s of CPU, 384 KB over three minutes,
// both under the default header limit), with no symlink needed. Once a
// prefix does not exist, no longer one can.
func TestManyPHPSegmentsAreCheap(t *testing.T) {
	root, _ := site(t)
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range []string{
		strings.Repeat("/x.php", 16000) + "/",
		"/hello.php" + strings.Repeat("/x.php", 16000),
		"/a.php" + strings.Repeat("/x.php", 16000),
	} {
		start := time.Now()
		got := r.Resolve(p)
		if took := time.Since(start); took > time.Second {
			t.Errorf("Resolve of a %d-byte path of .php segments took %v", len(p), took)
		}
		if got.Kind != NotFound && got.Kind != PHP {
			t.Errorf("%.20s...: %+v", p, got)
		}
	}
	// The search still finds a script behind a directory named like one.
	if got := r.Resolve("/a.php/b.php/extra"); got.Kind != PHP || got.ScriptName != "/a.php/b.php" || got.PathInfo != "/extra" {
		t.Errorf("/a.php/b.php/extra: %+v", got)
	}
}

// TestIndexLinkOutOfRoot: a directory whose index file is a link out of
// the root (app/index.php -> /usr/share/app/index.php, the way Debian's
// packaged applications are linked in) is refused like a request for
// that index itself: 404 with the warning naming where it leads, which
// tells the operator what SESSIONGATE_FOLLOW_SYMLINKS needs. nginx's index
// follows the link and runs it. The gateway fell through to the next
// index name or the front controller instead, without a word: "/app/"
// answered with the site's home page (or index.html) while "/app/index.php"
// was refused.
func TestIndexLinkOutOfRoot(t *testing.T) {
	root, outside := site(t)
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"app", "app2"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "evil.php"), filepath.Join(root, "app/index.php")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "app/index.html"), []byte("<p>stale</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "app2/index.html")); err != nil {
		t.Fatal(err)
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for path, target := range map[string]string{
		"/app/index.php":   filepath.Join(realOutside, "evil.php"),
		"/app/":            filepath.Join(realOutside, "evil.php"),
		"/app2/":           filepath.Join(realOutside, "secret.txt"),
		"/app2/index.html": filepath.Join(realOutside, "secret.txt"),
	} {
		got := r.Resolve(path)
		if got.Kind != NotFound || !got.Warn || !strings.Contains(got.Reason, target) {
			t.Errorf("%s: got %+v, want 404 with a warning naming %s", path, got, target)
		}
	}
}

// TestFrontControllerLinkOutOfRoot: a front controller that is a link out
// of the root is refused with the warning naming where it leads, as the
// script asked for by name is; a URL for the front controller got a bare
// "front controller not found" 404 with no warning, so with the link made
// by a deploy after start every pretty URL of the site was a silent 404.
func TestFrontControllerLinkOutOfRoot(t *testing.T) {
	root, outside := site(t)
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "index.php")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "evil.php"), filepath.Join(root, "index.php")); err != nil {
		t.Fatal(err)
	}
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := filepath.Join(realOutside, "evil.php")
	for _, path := range []string{"/index.php", "/pretty/url", "/empty/"} {
		got := r.Resolve(path)
		if got.Kind != NotFound || !got.Warn || !strings.Contains(got.Reason, want) {
			t.Errorf("%s: got %+v, want 404 with a warning naming %s", path, got, want)
		}
	}
}

// routed checks that a route names the release it was found in (the
// router's only one in these tests: Root for PHP, the open root for
// Static) and returns it without, so that tables of expected routes need
// not repeat the temporary directory.
func routed(t *testing.T, r *Router, rt Route) Route {
	t.Helper()
	if rt.Kind == PHP && rt.Root != r.RealPath() || rt.Kind != PHP && rt.Root != "" {
		t.Errorf("%+v: Root %q, want %q on PHP routes only", rt, rt.Root, r.RealPath())
	}
	if rt.Kind == Static && rt.in != r.open.Load() || rt.Kind != Static && rt.in != nil {
		t.Errorf("%+v: found in %p, want the open root %p on static routes only", rt, rt.in, r.open.Load())
	}
	rt.Root, rt.in = "", nil
	return rt
}
