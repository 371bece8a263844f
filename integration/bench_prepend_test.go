package integration

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

// BenchmarkGatewayHelloPHPPrepend measures the whole gateway handler (in
// process, sessions on in memory, access log off) in front of real
// php-fpm running the prepend, for hello.php without a session cookie:
// the hot path every PHP page takes, the prepend's mark included.
func BenchmarkGatewayHelloPHPPrepend(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.php"), []byte(`<?php echo "Hello, world!";`), 0o644); err != nil {
		b.Fatal(err)
	}
	prepend := filepath.Join(b.TempDir(), "prepend.php")
	if err := os.WriteFile(prepend, sessionbridge.PrependPHP, 0o644); err != nil {
		b.Fatal(err)
	}
	harness.ShareWithPHP(b, prepend)
	fpm := harness.StartPHPFPM(b, harness.PHPFPMOptions{DocRoot: dir, Children: 2})
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + dir,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_PHP_MAX_CONNS=2",
		"SESSIONGATE_ACCESS_LOG=off",
	})
	if err != nil {
		b.Fatal(err)
	}
	a, err := app.Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	h := a.Server.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/hello.php", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		io.Copy(io.Discard, w.Body)
	}
}
