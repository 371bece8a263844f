package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RestrictedPath is one SESSIONGATE_RESTRICTED_PATHS entry.
type RestrictedPath struct {
	// Path is a URL path, matched exactly, or a directory ending in "/",
	// matched as a prefix.
	Path string
	// Allow are the client networks let in; none for "none".
	Allow Prefixes
	// Spec is the entry as written, for logs.
	Spec string
}

// RestrictedPaths parses SESSIONGATE_RESTRICTED_PATHS (after Load has
// checked it).
func (c *Config) RestrictedPaths() []RestrictedPath {
	return parsed(c.RestrictedPathSpecs, parseRestrictedPath)
}

// parseRestrictedPath reads "PATH ADDRESS..." (IP addresses or CIDRs) or
// "PATH none": nginx's allow lines followed by deny all, or deny all alone.
func parseRestrictedPath(e string) (RestrictedPath, error) {
	f := strings.Fields(e)
	if len(f) < 2 {
		return RestrictedPath{}, fmt.Errorf("%q: each entry is PATH then the addresses let in (IPs or CIDRs), or PATH none, e.g. /phpmyadmin/ 10.0.0.0/8 192.168.1.7", e)
	}
	rp := RestrictedPath{Path: f[0], Spec: strings.Join(f, " ")}
	if err := accessPathError(e, rp.Path); err != nil {
		return RestrictedPath{}, err
	}
	if len(f) == 2 && f[1] == "none" {
		return rp, nil
	}
	for _, a := range f[1:] {
		switch {
		case a == "none":
			return RestrictedPath{}, fmt.Errorf("%q: none stands alone: it lets no address in", e)
		case a == "all":
			return RestrictedPath{}, fmt.Errorf("%q: to let every address in, leave the path out; 0.0.0.0/0 and ::/0 say so explicitly", e)
		}
		p, err := parsePrefixes(a)
		if err != nil {
			return RestrictedPath{}, fmt.Errorf("%q: %q: %w", e, a, err)
		}
		rp.Allow = append(rp.Allow, p.(Prefixes)...)
	}
	return rp, nil
}

func (c *Config) checkRestrictedPaths(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_RESTRICTED_PATHS"
	seen := map[string]bool{}
	for _, e := range c.RestrictedPathSpecs {
		rp, err := parseRestrictedPath(e)
		if err != nil {
			check(name, false, "%s", err.Error())
			continue
		}
		check(name, !seen[rp.Path], "%q is listed twice", rp.Path)
		seen[rp.Path] = true
		check(name, rp.Path != "/" || len(rp.Allow) > 0, "\"/ none\" would refuse the whole site to everyone")
		c.checkExactEntry(check, name, e, rp.Path)
	}
}

// accessPathError checks the path of a SESSIONGATE_RESTRICTED_PATHS or
// SESSIONGATE_BASIC_AUTH entry e.
func accessPathError(e, path string) error {
	if strings.ContainsAny(path, "*~") {
		return fmt.Errorf("%q: paths are matched as they are, not as patterns: /dir/ covers everything under /dir/, /file.php that exact URL", e)
	}
	if !urlPrefixOK(path) {
		return fmt.Errorf(urlPrefixRule("path", "/phpmyadmin/ or /xmlrpc.php"), path)
	}
	return nil
}

// checkExactEntry refuses an entry without a trailing / that names a
// directory of the site: nginx's location /phpmyadmin is a prefix, but
// here that entry would cover the one URL and leave the directory open.
func (c *Config) checkExactEntry(check func(name string, ok bool, format string, args ...any), name, e, path string) {
	if strings.HasSuffix(path, "/") || c.StaticRoot == "" {
		return
	}
	if fi, err := os.Stat(filepath.Join(c.StaticRoot, filepath.FromSlash(path))); err == nil && fi.IsDir() {
		check(name, false, "%q: %s is a directory of SESSIONGATE_STATIC_ROOT, and an entry without a trailing / covers only that exact URL: write %s/", e, path, path)
	}
}
