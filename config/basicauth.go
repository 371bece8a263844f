package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/sessiongate/sessiongate/internal/htpasswd"
)

// BasicAuth is one SESSIONGATE_BASIC_AUTH entry.
type BasicAuth struct {
	// Path is a URL path, matched exactly, or a directory ending in "/",
	// matched as a prefix.
	Path string
	// File is the password file's absolute path.
	File string
	// Spec is the entry as written, for logs.
	Spec string
}

// BasicAuths parses SESSIONGATE_BASIC_AUTH (after Load has checked it).
func (c *Config) BasicAuths() []BasicAuth { return parsed(c.BasicAuthSpecs, parseBasicAuth) }

// parseBasicAuth reads "PATH FILE": nginx's auth_basic with its
// auth_basic_user_file in a location.
func parseBasicAuth(e string) (BasicAuth, error) {
	f := strings.Fields(e)
	if len(f) != 2 {
		return BasicAuth{}, fmt.Errorf("%q: each entry is PATH then the password file htpasswd writes, e.g. / /etc/sessiongate/staging.htpasswd", e)
	}
	ba := BasicAuth{Path: f[0], File: f[1], Spec: strings.Join(f, " ")}
	if err := accessPathError(e, ba.Path); err != nil {
		return BasicAuth{}, err
	}
	if !filepath.IsAbs(ba.File) {
		return BasicAuth{}, fmt.Errorf("%q: the password file must be an absolute path", e)
	}
	return ba, nil
}

func (c *Config) checkBasicAuth(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_BASIC_AUTH"
	seen := map[string]bool{}
	for _, e := range c.BasicAuthSpecs {
		ba, err := parseBasicAuth(e)
		if err != nil {
			check(name, false, "%s", err.Error())
			continue
		}
		check(name, !seen[ba.Path], "%q is listed twice", ba.Path)
		seen[ba.Path] = true
		c.checkExactEntry(check, name, e, ba.Path)
		// The file is read now, so that a typo or an unsupported hash
		// stops the start instead of locking users out later.
		if _, err := htpasswd.Open(ba.File); err != nil {
			msg := err.Error() // names the file and the line
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				msg = ba.File + ": " + describeFSError(err)
			}
			check(name, false, "%q: %s", e, msg)
		}
	}
}
