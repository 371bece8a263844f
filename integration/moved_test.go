package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestMovedURLs: SESSIONGATE_REDIRECTS on the real php-fpm and gunicorn.
// A moved page or directory is answered before PHP or Django runs (a file
// counts the PHP runs), the rest of a moved directory's path and the query
// follow, and a browser following the redirect lands on the page PHP or
// Django renders.
func TestMovedURLs(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_REDIRECTS=/old.php /new.php?from=old,/legacy/ /catalog/,/old-accounts/ /accounts/api/,/promo /new.php 302")
	gw := s.gws[0]
	ran := filepath.Join(harness.PHPTempDir(t), "ran")
	count := `<?php file_put_contents('` + ran + `', $_SERVER['REQUEST_URI'] . "\n", FILE_APPEND); `
	for name, body := range map[string]string{
		"old.php":            count + `echo 'old';`,
		"new.php":            count + `echo 'new ' . ($_GET['from'] ?? '') . ' ' . ($_GET['id'] ?? '');`,
		"legacy/item.php":    count + `echo 'legacy';`,
		"catalog/item.php":   count + `echo 'catalog ' . $_GET['id'];`,
		"catalog/index.html": "catalog",
	} {
		p := filepath.Join(s.fpm.DocRoot, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noFollow := rawClient()
	for _, tc := range []struct {
		target   string
		status   int
		location string
	}{
		{"/old.php?id=7", 301, "/new.php?from=old&id=7"},
		{"/legacy/item.php?id=3", 301, "/catalog/item.php?id=3"},
		{"/legacy", 301, "/catalog/"},
		{"/old-accounts/whoami/", 301, "/accounts/api/whoami/"},
		{"/promo", 302, "/new.php"},
	} {
		res, err := noFollow.Get(gw.URL + tc.target)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status || res.Header.Get("Location") != tc.location {
			t.Errorf("%s: %d %q, want %d %q", tc.target, res.StatusCode, res.Header.Get("Location"), tc.status, tc.location)
		}
	}
	if b, _ := os.ReadFile(ran); len(b) != 0 {
		t.Errorf("PHP ran for moved URLs: %q", b)
	}
	// A browser follows them to the pages that moved.
	follow := &http.Client{Timeout: 20 * time.Second}
	for target, want := range map[string]string{
		"/old.php?id=7":         "new old 7",
		"/legacy/item.php?id=3": "catalog 3",
		"/legacy/":              "catalog",
		"/old-accounts/whoami/": `"user": null`,
	} {
		res, err := follow.Get(gw.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("following %s: %d %q, want %q", target, res.StatusCode, body, want)
		}
	}
	// The map above is walked in random order, so the runs are compared
	// as a set.
	b, _ := os.ReadFile(ran)
	runs := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(runs)
	if want := []string{"/catalog/item.php?id=3", "/new.php?from=old&id=7"}; !slices.Equal(runs, want) {
		t.Errorf("PHP ran for %q, want the two new URLs once each: %q", runs, want)
	}
}
