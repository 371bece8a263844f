// Package tempfile creates the gateway's spool files (large request bodies,
// responses read ahead of slow clients).
package tempfile

import "os"

// Unlinked creates a temp file in dir ("" = os.TempDir()) and removes its
// name at once: the open descriptor keeps the data, and nothing is left
// behind whatever happens to the request or the process.
func Unlinked(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}
