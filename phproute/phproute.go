// Package phproute decides what a request path means on a PHP site: a static
// file the gateway serves itself, a PHP script (with its PATH_INFO), a
// redirect to a directory's canonical URL, or a refusal.
//
// The rules are nginx's usual PHP setup,
//
//	location / { try_files $uri $uri/ /index.php?$args; }
//	location ~ [^/]\.php(/|$) { fastcgi_split_path_info ^(.+?\.php)(/.*)$;
//	                            try_files $fastcgi_script_name =404; ... }
//
// made safe by construction rather than by configuration:
//
//   - The path is decoded once and checked before anything touches the
//     filesystem: control characters (NUL, CR, LF: the CVE-2019-11043 family
//     relies on a newline in the path), bad percent-encoding and ".." that
//     would climb above the root are 400; a segment starting with "." is 404
//     (.env, .git/, .htaccess), except the leading /.well-known/ (RFC 8615:
//     ACME HTTP-01 challenges and security.txt live there, and refusing it
//     breaks certificate issuance).
//   - Every filesystem look-up goes through an os.Root opened on the static
//     root, so neither ".." nor a symlink can reach outside it, even if the
//     tree changes between the check and the open.
//   - Only a regular file whose name ends in ".php" (case-sensitive ASCII,
//     like nginx's `\.php$` and php-fpm's default security.limit_extensions)
//     is ever named as a script. /uploads/x.jpg/x.php never makes php-fpm run
//     x.jpg: a PATH_INFO split happens only at a ".php/" whose prefix is a
//     regular file.
//   - Files whose name ends in ".php" in another case (".PHP", ".Php") are
//     neither run (php-fpm would refuse them) nor served (they are most
//     likely PHP source): 404.
package phproute

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/internal/monoclock"
)

// Kind is what a path resolves to.
type Kind int

const (
	NotFound   Kind = iota // 404
	BadRequest             // 400: malformed or hostile path
	Forbidden              // 403: the file exists but the gateway may not read it
	Redirect               // 301 to Route.Location (a directory without its slash)
	Static                 // a regular file served by the gateway
	PHP                    // a script run by php-fpm
	// Failed (500): the lookup failed for a reason of the system's (no
	// file descriptor left, an I/O error), not the path's; Reason says
	// which.
	Failed
)

func (k Kind) String() string {
	switch k {
	case NotFound:
		return "not_found"
	case BadRequest:
		return "bad_request"
	case Forbidden:
		return "forbidden"
	case Redirect:
		return "redirect"
	case Static:
		return "static"
	case PHP:
		return "php"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Route is the routing decision for one path.
type Route struct {
	Kind Kind
	// File is, for Static, the file relative to the static root
	// ("css/site.css"), to be opened with Router.Open.
	File string
	// Name is, for Static, the file's name as the URL gives it ("site.css";
	// "index.html" for a directory's index). Its extension, not File's,
	// decides the Content-Type, as with nginx: File is an absolute
	// symlink's target when the URL names one (report.pdf ->
	// /srv/www/files/blob), and the target's name may have another
	// extension or none.
	Name string
	// ScriptName is, for PHP, the script's URL path ("/index.php"); it always
	// ends in ".php". PathInfo is what follows it ("/extra") or "".
	ScriptName string
	PathInfo   string
	// Root is, for PHP, the static root with its symlinks resolved, as the
	// router had it open when it found the script: the release the
	// request was routed in (see RealPath), which its DOCUMENT_ROOT must
	// name even if another request's look at the root finds a deploy
	// before this one's params are built (a WordPress REST body read
	// lies in between).
	Root string
	// in is, for Static, the open root File was found in: Open opens it
	// there, in the release the request was routed in, though another
	// request's look at the root may have found a deploy since.
	in *opened
	// Location is, for Redirect, the escaped path to redirect to (the query
	// string is the caller's to append).
	Location string
	// Reason says, for refusals, why; for logs and tests, never for clients.
	Reason string
	// Warn marks a refusal the operator must hear of because nginx would
	// have served the path: a symlink leading out of the root (Laravel's
	// storage:link) or a symlink loop. Clients cannot make symlinks, so it
	// is no noise from probes; the server logs Reason as a warning.
	Warn bool
}

// Router resolves paths against one static root.
type Router struct {
	path  string // the static root as configured, maybe through symlinks
	index string // front controller URL path, "" when off

	// open is the directory path named when last checked, and checked when
	// that was (a monoclock reading); see current.
	open    atomic.Pointer[opened]
	checked atomic.Int64

	// noPHP are URL directories ("/uploads/") where no script runs.
	noPHP []string

	// outAnywhere and outWant say where a symlink inside the root may lead
	// besides the root itself (FollowSymlinksOut); opened.outDirs holds
	// outWant resolved.
	outAnywhere bool
	outWant     []string
}

// opened is the open root, its path with symlinks resolved (see RealPath)
// and the FollowSymlinksOut directories resolved when it was opened, kept
// together so that no request sees one release's root with another's
// paths.
type opened struct {
	root    *os.Root
	real    string
	outDirs []string
}

// recheckRoot is how often the router looks whether its root path names
// another directory than the one it has open.
var recheckRoot = time.Second

// New opens staticRoot for routing. index is the front controller as a URL
// path ("/index.php") or "" to answer 404 when no file matches.
func New(staticRoot, index string) (*Router, error) {
	if index != "" && (!strings.HasPrefix(index, "/") || !strings.HasSuffix(index, ".php")) {
		return nil, fmt.Errorf("phproute: front controller %q must be a URL path ending in .php", index)
	}
	root, err := os.OpenRoot(staticRoot)
	if err != nil {
		return nil, fmt.Errorf("phproute: open static root: %w", err)
	}
	r := &Router{path: staticRoot, index: index}
	r.open.Store(&opened{root: root, real: realPath(staticRoot)})
	r.checked.Store(monoclock.Now())
	return r, nil
}

// NoPHPUnder makes every script under the URL directories dirs
// ("/wp-content/uploads/", a trailing slash added when missing) Forbidden,
// as nginx's `location ~ /uploads/.*\.php$ { deny all; }` does: upload
// directories hold what clients sent, and a script one of them planted
// there must not run. Call it before the router is used.
func (r *Router) NoPHPUnder(dirs []string) {
	r.noPHP = r.noPHP[:0]
	for _, d := range dirs {
		r.noPHP = append(r.noPHP, strings.TrimSuffix(d, "/")+"/")
	}
}

// FollowSymlinksOut lets symlinks inside the root lead into dirs
// (absolute), or anywhere, as nginx's default (disable_symlinks off) does.
// Debian's packaged PHP applications link their static files out of their
// root (phpMyAdmin and Roundcube to /usr/share/javascript, Horde and Cacti
// to /etc and /usr/share): without it their pages come without styles and
// scripts. URL rules (dotfiles, SESSIONGATE_NO_PHP_PATHS, .php only) apply
// as before. Call it before the router is used.
func (r *Router) FollowSymlinksOut(anywhere bool, dirs []string) {
	r.outAnywhere = anywhere
	r.outWant = append([]string(nil), dirs...)
	o := *r.open.Load()
	o.outDirs = r.resolveOutDirs()
	r.open.Store(&o)
}

// resolveOutDirs resolves the FollowSymlinksOut directories. A deploy that
// repoints current -> releases/N moves those named through it
// (/srv/app/current/vendor, where Symfony's `assets:install --symlink`
// links lead) along with the root: resolved once, they kept naming the
// first release, and the new release's links all led outside them.
func (r *Router) resolveOutDirs() []string {
	out := make([]string, 0, len(r.outWant))
	for _, d := range r.outWant {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			d = real
		}
		out = append(out, filepath.Clean(d))
	}
	return out
}

// mayLeadTo reports whether a symlink inside o's root may lead to the
// resolved absolute path real.
func (r *Router) mayLeadTo(o *opened, real string) bool {
	if r.outAnywhere {
		return true
	}
	for _, d := range o.outDirs {
		if real == d || strings.HasPrefix(real, d+string(filepath.Separator)) || d == string(filepath.Separator) {
			return true
		}
	}
	return false
}

// Close releases the root directory.
func (r *Router) Close() error { return r.open.Load().root.Close() }

// current returns the open root, first opening the root path again (at most
// once per recheckRoot) when it names another directory than the one open.
// PHP sites are deployed by repointing a symlink (current -> releases/N,
// Capistrano, Deployer, Envoyer) or renaming directories, and old releases
// are deleted later: nginx looks the root up on every request, and php-fpm
// runs the new release's scripts, so a router kept on the directory it
// opened at start would route against a stale tree, then against a deleted
// one (every URL 404) until a restart. If the path cannot be opened (a
// switch in progress) the old root is kept. The old root is not closed
// here, so that requests still resolving in it finish; its finalizer closes
// it once they are done.
func (r *Router) current() *opened { return r.look(false) }

// look is current, looking at the root path now when force is set.
func (r *Router) look(force bool) *opened {
	o := r.open.Load()
	root := o.root
	now := monoclock.Now()
	last := r.checked.Load()
	if force {
		r.checked.Store(now)
	} else if now-last < int64(recheckRoot) || !r.checked.CompareAndSwap(last, now) {
		return o
	}
	want, err := os.Stat(r.path)
	if err != nil {
		return o
	}
	if have, err := root.Stat("."); err == nil && os.SameFile(want, have) {
		return o
	}
	// The path resolved first and the root opened there: opening the
	// path and resolving it again after, a second switch in between (a
	// deploy and its rollback) left the router routing in one release
	// while php-fpm got DOCUMENT_ROOT of the other.
	real := realPath(r.path)
	nr, err := os.OpenRoot(real)
	if err != nil {
		return o
	}
	no := &opened{root: nr, real: real, outDirs: r.resolveOutDirs()}
	r.open.Store(no)
	return no
}

// rootDeleted reports whether o's root directory has been deleted (or can
// no longer be looked at), which a miss is worth checking for.
func rootDeleted(o *opened) bool {
	fi, err := o.root.Stat(".")
	if err != nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

// RealPath returns the static root with its symlinks resolved, as of the
// last look at the root (by Resolve, at most recheckRoot ago), like nginx's
// $realpath_root. Laravel's and Symfony's nginx configurations build
// SCRIPT_FILENAME from it: php-fpm keeps resolved paths in its realpath
// cache (realpath_cache_ttl, 120 s), so a worker given the symlinked path
// after a deploy repointed current -> releases/N would go on running the
// old release, or fail once that release is deleted.
//
// It does not look at the root path itself, but another request's Resolve
// may have found a deploy since this one's: a PHP route's DOCUMENT_ROOT
// comes from its Route.Root, the release it was routed in.
func (r *Router) RealPath() string {
	return r.open.Load().real
}

// realPath resolves p's symlinks, or returns p as it is when that fails
// (the root vanished in the middle of a switch).
func realPath(p string) string {
	if rp, err := filepath.EvalSymlinks(p); err == nil {
		return rp
	}
	return p
}

// Index returns the front controller URL path, or "" when it is off.
func (r *Router) Index() string { return r.index }

// dirIndex lists the files that stand for a directory, in order, like
// nginx's `index index.php index.html`.
var dirIndex = []string{"index.php", "index.html"}

// Resolve routes escapedPath, the path of the request target as the client
// sent it (percent-encoded, e.g. from url.URL.EscapedPath): decoding happens
// here, once, so that every check sees the same bytes the filesystem will.
//
// The whole lookup happens in one release: the root open when it starts,
// with that root's resolved path and FollowSymlinksOut directories, even
// if another request's look at the root finds a deploy meanwhile.
func (r *Router) Resolve(escapedPath string) Route {
	o := r.current()
	rt := r.resolve(o, escapedPath)
	if (rt.Kind == NotFound || rt.Kind == Failed) && rootDeleted(o) {
		// A deploy with keep_releases 1 deletes the release it just
		// switched away from: waiting for the next periodic look, every
		// URL, the front controller's included, was 404 meanwhile.
		rt = r.resolve(r.look(true), escapedPath)
	}
	if rt.Kind == PHP {
		if d := r.noPHPDirOf(rt.ScriptName); d != "" {
			return Route{Kind: Forbidden, Reason: "no PHP runs under " + d + " (SESSIONGATE_NO_PHP_PATHS)"}
		}
	}
	return rt
}

// UnderNoPHPPath reports whether the clean URL path p lies under one of
// the directories given to NoPHPUnder: the directories users upload to.
func (r *Router) UnderNoPHPPath(p string) bool { return r.noPHPDirOf(p) != "" }

// noPHPDirOf returns the NoPHPUnder directory that holds p, or "".
func (r *Router) noPHPDirOf(p string) string {
	for _, d := range r.noPHP {
		if strings.HasPrefix(p, d) {
			return d
		}
	}
	return ""
}

func (r *Router) resolve(o *opened, escapedPath string) Route {
	segs, trailing, bad := cleanPath(escapedPath)
	if bad != nil {
		return *bad
	}
	clean := "/" + strings.Join(segs, "/")
	rel := strings.Join(segs, "/")
	if rel == "" {
		rel = "."
		trailing = true // "/" is the root directory itself
	}

	rt := r.resolveIn(o, segs, clean, rel, trailing)
	switch rt.Kind {
	case PHP:
		rt.Root = o.real
	case Static:
		rt.in = o
	}
	return rt
}

// resolveIn is resolve in one open root: segs, clean and rel are the
// cleaned path's segments, its URL form and its form relative to the root.
// Every look-up below goes through o, never r.open: a deploy found by
// another request meanwhile must not have a link looked up in one release
// checked against the other's directories.
func (r *Router) resolveIn(o *opened, segs []string, clean, rel string, trailing bool) Route {
	fi, rel, err := r.stat(o, rel)
	switch {
	case err == nil && fi.Mode().IsRegular() && !trailing:
		return r.file(rel, clean)
	case err == nil && fi.IsDir():
		if !trailing {
			return Route{Kind: Redirect, Location: escape(clean + "/")}
		}
		return r.directory(o, rel, clean)
	case err != nil && errors.Is(err, fs.ErrPermission):
		return Route{Kind: Forbidden, Reason: "permission denied"}
	case systemFailure(err):
		return failed(err)
	case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ENAMETOOLONG):
		// A symlink leading out of the root ("path escapes from parent"),
		// a symlink loop, or anything unexpected: refuse, never fall back
		// to the front controller, so the answer does not depend on what
		// lies outside the root. A name too long for the filesystem (a
		// token or a long slug in a pretty URL) names no file, as for
		// nginx's try_files.
		return r.unresolvable(o, rel, err)
	}

	// Not an existing file: maybe /script.php/path/info.
	full := clean
	if trailing && clean != "/" {
		full += "/"
	}
	if rt, ok := r.splitPathInfo(o, full); ok {
		return rt
	}
	// A path that names a PHP script that is not there is 404, as with
	// nginx's `try_files $fastcgi_script_name =404`: the front controller
	// is for pretty URLs, not for hiding missing scripts.
	for _, s := range segs {
		if strings.HasSuffix(s, ".php") {
			return Route{Kind: NotFound, Reason: "no such PHP script"}
		}
	}
	return r.frontController(o)
}

// unresolvable is the route of a path os.Root refused: a symlink leading
// out of the root, a loop, or anything unexpected. nginx would have
// followed it, so the operator hears of it (Warn).
func (r *Router) unresolvable(o *opened, rel string, err error) Route {
	reason := "not resolvable inside SESSIONGATE_STATIC_ROOT (a symlink leading out of it, or a loop; SESSIONGATE_FOLLOW_SYMLINKS lists where links may lead, README: disable_symlinks): " + err.Error()
	// Name where the path leads: that directory, not the URL, is what
	// the operator has to add to SESSIONGATE_FOLLOW_SYMLINKS. (An
	// absolute rel is already out of the root, and its error names
	// where it leads.)
	if !filepath.IsAbs(rel) {
		if real, ok := realOf(o, rel); ok {
			reason += " (leads to " + real + ")"
		}
	}
	return Route{Kind: NotFound, Warn: true, Reason: reason}
}

// file routes an existing regular file.
func (r *Router) file(rel, clean string) Route {
	switch {
	case strings.HasSuffix(clean, ".php"):
		return Route{Kind: PHP, ScriptName: clean}
	case strings.HasSuffix(strings.ToLower(clean), ".php"):
		return Route{Kind: NotFound, Reason: "PHP source with a non-.php extension case"}
	}
	return Route{Kind: Static, File: rel, Name: path.Base(clean)}
}

// directory routes an existing directory requested with its trailing slash.
func (r *Router) directory(o *opened, rel, clean string) Route {
	base := strings.TrimSuffix(clean, "/") + "/"
	for _, name := range dirIndex {
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		fi, p, err := r.stat(o, p)
		if err == nil && fi.Mode().IsRegular() {
			if strings.HasSuffix(name, ".php") {
				return Route{Kind: PHP, ScriptName: base + name}
			}
			return Route{Kind: Static, File: p, Name: name}
		}
		if systemFailure(err) {
			return failed(err)
		}
		if errors.Is(err, fs.ErrPermission) {
			// The directory cannot be entered (no x for the gateway's
			// user): its index cannot be looked at, which is not its
			// absence. Refused as the index asked for by name is, and as
			// nginx's index answers (403).
			return Route{Kind: Forbidden, Reason: "permission denied looking up the index of " + clean + ": " + err.Error()}
		}
		if refused(err) {
			// An index that is a link out of the root (or a loop) is
			// refused as a request for it by name is, not passed over
			// for the next index name or the front controller: nginx
			// would run or send it.
			return r.unresolvable(o, p, err)
		}
	}
	// A directory without an index is never listed; like any other
	// unmatched URL it belongs to the application.
	return r.frontController(o)
}

// splitPathInfo finds the first ".php/" in full whose prefix is a regular
// file and returns it as a script with the rest as PATH_INFO.
func (r *Router) splitPathInfo(o *opened, full string) (Route, bool) {
	from := 0
	for {
		i := strings.Index(full[from:], ".php/")
		if i < 0 {
			return Route{}, false
		}
		end := from + i + len(".php")
		script := full[:end]
		fi, _, err := r.stat(o, strings.TrimPrefix(script, "/"))
		if err == nil && fi.Mode().IsRegular() {
			return Route{Kind: PHP, ScriptName: script, PathInfo: full[end:]}, true
		}
		if systemFailure(err) {
			return failed(err), true
		}
		if err != nil {
			// Missing (or not a directory on the way): no longer prefix
			// exists either. Going on would look up ever longer prefixes,
			// as many as the client put ".php/" in the path, at a cost
			// quadratic in their number.
			return Route{}, false
		}
		from = end
	}
}

func (r *Router) frontController(o *opened) Route {
	if r.index == "" {
		return Route{Kind: NotFound, Reason: "no file matches and the front controller is off"}
	}
	rel := strings.TrimPrefix(r.index, "/")
	fi, _, err := r.stat(o, rel)
	if systemFailure(err) {
		return failed(err)
	}
	if refused(err) {
		// A link out of the root (or a loop): every URL it would answer
		// is refused as the script asked for by name is, with the
		// warning that says why.
		return r.unresolvable(o, rel, err)
	}
	if err != nil || !fi.Mode().IsRegular() {
		return Route{Kind: NotFound, Reason: "front controller " + r.index + " not found"}
	}
	return Route{Kind: PHP, ScriptName: r.index}
}

// stat looks rel up in root and returns its info and the path to open it
// by. os.Root refuses every absolute symlink, even one leading back inside
// the root (ln -s /srv/www/img/logo.png logo.png), which nginx and php-fpm
// follow; such a path is looked up again by its target when that is inside
// the root (the path returned). Anything else os.Root refuses stays
// refused, with its error. rel may also be an absolute path that stat
// returned before for a link out of the root, when a directory's index is
// looked up under it (see statOutside).
func (r *Router) stat(o *opened, rel string) (fs.FileInfo, string, error) {
	if filepath.IsAbs(rel) {
		return r.statOutside(o, rel)
	}
	fi, err := o.root.Stat(rel)
	if !refused(err) {
		return fi, rel, err
	}
	if t, ok := insideTarget(o, rel); ok {
		if fi, err2 := o.root.Stat(t); !refused(err2) {
			return fi, t, err2
		}
	}
	if r.outAnywhere || len(o.outDirs) > 0 {
		// A link out of the root, to where FollowSymlinksOut allows: the
		// path returned is the resolved absolute one, which Open accepts.
		if real, ok := realOf(o, rel); ok && r.mayLeadTo(o, real) {
			fi, err2 := os.Stat(real)
			return fi, real, err2
		}
	}
	return nil, rel, err
}

// statOutside looks up abs, a path under a directory a symlink led out of
// the root to (a linked application directory's index.php, for
// /phpmyadmin/ -> /usr/share/phpmyadmin), with the same rule as the link
// itself: its own symlinks resolved, it must lead where FollowSymlinksOut
// allows, or back inside the root.
func (r *Router) statOutside(o *opened, abs string) (fs.FileInfo, string, error) {
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, abs, err
	}
	if r.mayLeadTo(o, real) {
		fi, err := os.Stat(real)
		return fi, real, err
	}
	if t, err := filepath.Rel(o.real, real); err == nil && t != ".." && !strings.HasPrefix(t, "../") {
		t = filepath.ToSlash(t)
		fi, err := o.root.Stat(t)
		return fi, t, err
	}
	return nil, abs, fmt.Errorf("phproute: %s leads to %s, outside SESSIONGATE_FOLLOW_SYMLINKS", abs, real)
}

// systemFailure reports a lookup that failed for a reason of the system's
// (no file descriptor left, an I/O error, no memory): an errno that says
// nothing about the path. Those are not a missing file, nor a link out of
// the root or a loop (os.Root's refusals carry no errno, ELOOP its own).
func systemFailure(err error) bool {
	var errno syscall.Errno
	if err == nil || !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG, syscall.ELOOP, syscall.EACCES, syscall.EPERM:
		return false
	}
	return true
}

// failed is the route of a lookup that failed with a system error.
func failed(err error) Route {
	return Route{Kind: Failed, Warn: true, Reason: "cannot look the path up under SESSIONGATE_STATIC_ROOT: " + err.Error()}
}

// refused reports whether err is os.Root's refusal (a symlink leading out
// of the root, a loop, ...) rather than a plain answer about the file.
func refused(err error) bool {
	return err != nil && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist) &&
		!errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ENAMETOOLONG)
}

// insideTarget resolves the symlinks of rel's longest existing prefix by
// path and returns rel relative to o's root's real path, or false when
// that prefix leads outside the root (or cannot be resolved).
func insideTarget(o *opened, rel string) (string, bool) {
	real, ok := realOf(o, rel)
	if !ok {
		return "", false
	}
	t, err := filepath.Rel(o.real, real)
	if err != nil || t == ".." || strings.HasPrefix(t, "../") {
		return "", false
	}
	return filepath.ToSlash(t), true
}

// realOf resolves the symlinks of rel's longest existing prefix, from o's
// root's resolved path, and returns the absolute path rel names with them
// resolved; false when no prefix exists or one cannot be resolved.
//
// It walks down from the root one segment at a time, each resolved from
// the prefix already resolved, and stops at the first segment that does
// not exist: the client chooses how many segments follow a link, and
// resolving every prefix from the longest down cost time quadratic in
// them (a 40 KB path took seconds of CPU).
func realOf(o *opened, rel string) (real string, ok bool) {
	// The root's resolved path as of the open root (look keeps the two
	// together), not resolved again on every lookup.
	segs := strings.Split(rel, "/")
	real = o.real
	for i, s := range segs {
		next, err := filepath.EvalSymlinks(filepath.Join(real, s))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if i == 0 {
				return "", false
			}
			return filepath.Join(append([]string{real}, segs[i:]...)...), true
		}
		if err != nil {
			return "", false
		}
		real = next
	}
	return real, true
}

// openFlags open a static file without blocking: open(2) of a FIFO
// waits for a writer, so a file swapped for one after Resolve would hold
// its request (and an OS thread) for ever before the regular-file check
// below could refuse it. Reads of a regular file ignore O_NONBLOCK.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// Open opens a Static route's File inside the root and returns it with its
// info. It refuses anything but a regular file, checked on the open file
// itself, so a file swapped for a directory, device or FIFO after Resolve
// is not served.
//
// The root is the one Resolve found the file in, not looked at again, nor
// the one open now: a deploy found in between, by this request or another,
// would have the old release's asset (still on disk) opened in the new
// release (404), or a file a link led out to checked against the new
// release's FollowSymlinksOut directories. The caller may add to File (a
// precompressed copy's ".br") to open a file beside it in the same root.
// A Route not from Resolve opens in the root open now.
func (r *Router) Open(rt Route) (*os.File, fs.FileInfo, error) {
	o := rt.in
	if o == nil {
		o = r.open.Load()
	}
	rel := rt.File
	var f *os.File
	var err error
	if filepath.IsAbs(rel) {
		f, err = r.openOutside(o, rel)
	} else {
		f, err = o.root.OpenFile(rel, openFlags, 0)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("phproute: open %s: %w", rel, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("phproute: stat %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("phproute: %s: %w", rel, fs.ErrNotExist)
	}
	return f, fi, nil
}

// openOutside opens a file a symlink led out of o's root to (stat gave its
// resolved absolute path), checking again that links may lead there, as
// the link may have changed since Resolve. The file is opened through an
// os.Root on the listed directory that holds it, so a symlink swapped into
// the path between any check and the open cannot lead out of that
// directory; resolving the path first and opening it after left that
// window open.
func (r *Router) openOutside(o *opened, real string) (*os.File, error) {
	if r.outAnywhere {
		return os.OpenFile(real, openFlags, 0)
	}
	for _, d := range o.outDirs {
		rel, err := filepath.Rel(d, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		dir, err := os.OpenRoot(d)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", d, err)
		}
		defer dir.Close()
		return dir.OpenFile(rel, openFlags, 0)
	}
	return nil, fs.ErrNotExist
}

// cleanPath decodes and normalizes an escaped URL path into its segments,
// like nginx's URI normalization (merged slashes, "." and ".." resolved),
// and reports whether it ended with a slash. A non-nil Route is a refusal.
func cleanPath(escaped string) (segs []string, trailing bool, bad *Route) {
	refuse := func(k Kind, why string) ([]string, bool, *Route) {
		return nil, false, &Route{Kind: k, Reason: why}
	}
	if !strings.HasPrefix(escaped, "/") {
		return refuse(BadRequest, "path does not start with /")
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return refuse(BadRequest, "invalid percent-encoding")
	}
	for i := 0; i < len(decoded); i++ {
		if c := decoded[i]; c < 0x20 || c == 0x7f {
			return refuse(BadRequest, "control character in path")
		}
	}
	raw := strings.Split(decoded[1:], "/")
	for _, s := range raw {
		switch s {
		case "", ".":
		case "..":
			if len(segs) == 0 {
				return refuse(BadRequest, "path climbs above the root")
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
		}
	}
	last := raw[len(raw)-1]
	trailing = last == "" || last == "." || last == ".."
	for i, s := range segs {
		if strings.HasPrefix(s, ".") && !(i == 0 && s == ".well-known") {
			return refuse(NotFound, "hidden file or directory")
		}
	}
	return segs, trailing, nil
}

// escape percent-encodes a clean path for a Location header.
func escape(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}
