package config

import (
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
		out = append(out, InternalLocation{Prefix: strings.TrimSuffix(prefix, "/") + "/", Dir: dir})
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
		p := strings.TrimSuffix(prefix, "/") + "/"
		check(name, p != "/", "\"/\" would hide the whole site from its visitors")
		check(name, !seen[p], "%q is listed twice", prefix)
		seen[p] = true
		if idx := c.IndexScript(); idx != "" && p != "/" {
			check(name, !strings.HasPrefix(idx, p), "%q holds the front controller %s (SESSIONGATE_INDEX), which clients could then never reach", prefix, idx)
		}
		if !alias {
			continue
		}
		switch fi, err := os.Stat(dir); {
		case !filepath.IsAbs(dir):
			check(name, false, "%q: the directory after = must be an absolute path, e.g. /protected/=/srv/private", e)
		case err != nil:
			check(name, false, "%q: %s", e, describeFSError(err))
		default:
			check(name, fi.IsDir(), "%q: %s is not a directory", e, dir)
		}
	}
}
