package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InternalLocation is one SESSIONGATE_INTERNAL_PATHS entry: a URL
// directory clients cannot request and X-Accel-Redirect can.
type InternalLocation struct {
	// Prefix is the URL directory, ending in "/".
	Prefix string
	// Dir is the directory its files come from (an alias of Prefix), or ""
	// for files under SESSIONGATE_STATIC_ROOT at their URL.
	Dir string
}

// InternalLocations parses SESSIONGATE_INTERNAL_PATHS (after Load has
// checked it).
func (c *Config) InternalLocations() []InternalLocation {
	var out []InternalLocation
	for _, e := range c.InternalPaths {
		prefix, dir, _ := strings.Cut(e, "=")
		out = append(out, InternalLocation{Prefix: dirPrefix(prefix), Dir: dir})
	}
	return out
}

func (c *Config) checkInternalPaths(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_INTERNAL_PATHS"
	seen := map[string]bool{}
	for _, e := range c.InternalPaths {
		prefix, dir, alias := strings.Cut(e, "=")
		if !urlPrefixOK(prefix) {
			check(name, false, urlPrefixRule("directory", "/protected/ or /protected/=/srv/private"), prefix)
			continue
		}
		p := dirPrefix(prefix)
		check(name, p != "/", "\"/\" would hide the whole site from its visitors")
		check(name, !seen[p], "%q is listed twice", prefix)
		seen[p] = true
		if idx := c.IndexScript(); idx != "" && p != "/" {
			check(name, !strings.HasPrefix(idx, p), "%q holds the front controller %s (SESSIONGATE_INDEX), which clients could then never reach", prefix, idx)
		}
		// Clients get 404 under it before the Django mounts are looked
		// at, and an X-Accel-Redirect into it sends a file, never a page.
		// A Django prefix without its slash (/admin) covers its directory
		// (/admin/...) too.
		for _, d := range c.Django.Paths {
			check(name, p == "/" || !strings.HasPrefix(dirPrefix(d), p), "%q holds %s of SESSIONGATE_DJANGO_PATHS, which clients could then never reach", prefix, d)
		}
		if !alias {
			continue
		}
		switch fi, err := os.Stat(dir); {
		case !filepath.IsAbs(dir):
			check(name, false, "%q: the directory after = must be an absolute path, e.g. /protected/=/srv/private", e)
		case err != nil:
			check(name, false, "%q: %s", e, describeFSError(err))
		case !fi.IsDir():
			check(name, false, "%q: %s is not a directory", e, dir)
		default:
			if why := openableDir(dir); why != "" {
				check(name, false, "%q: %s %s", e, dir, why)
			}
		}
	}
}

// internalPathWarnings names the alias directories that lie inside the
// static root: their files are then also public at their own URL, which
// is most likely not what an internal location was set up for.
func (c *Config) internalPathWarnings() []string {
	var out []string
	root := resolved(c.StaticRoot)
	locations := c.InternalLocations()
	for _, l := range locations {
		if l.Dir == "" {
			continue
		}
		rel, err := filepath.Rel(root, resolved(l.Dir))
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		url := "/"
		if rel != "." {
			url += filepath.ToSlash(rel) + "/"
		}
		if !internalURL(locations, url) {
			out = append(out, fmt.Sprintf("SESSIONGATE_INTERNAL_PATHS: %s (for %s) is inside SESSIONGATE_STATIC_ROOT, so clients also get its files at %s; list that URL directory too", l.Dir, l.Prefix, url))
		}
	}
	return out
}

func internalURL(ls []InternalLocation, url string) bool {
	for _, l := range ls {
		if strings.HasPrefix(url, l.Prefix) {
			return true
		}
	}
	return false
}

// dirPrefix is a URL directory as its list entries are matched: with one
// trailing slash, so that /up and /up/ both mean everything under /up/.
func dirPrefix(p string) string { return strings.TrimSuffix(p, "/") + "/" }

// resolved is p with its symlinks resolved, or p when that fails.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
