package server

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStaticTruncatedWhileSentIsLogged: a static file that shrinks while
// it is being sent (a deploy rewriting it in place) reaches the client cut
// short; the access log must say why, not show a clean 200.
func TestStaticTruncatedWhileSentIsLogged(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe))
	p := filepath.Join(e.root, "big.bin")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 64<<20); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	c := rawGet(t, srv, "/big.bin")
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, c) // the server closes the connection after the cut
	var got []observed
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 {
		t.Fatalf("observations %+v", got)
	}
	log := e.lastLog(t)
	if log["level"] != "WARN" || !strings.Contains(toString(log["error"]), "shrank") {
		t.Errorf("log of a download cut by a truncated file: %v", log)
	}
}

func toString(v any) string { s, _ := v.(string); return s }
