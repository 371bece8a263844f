package app

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// The fail-fast probe: a gateway whose Redis does not answer refuses to
// start, quickly, naming the variable and without echoing its password.
func TestBuildRefusesUnreachableRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:1",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=app-test-key-0123456789abcdef0123456789",
		"SESSIONGATE_REDIS_URL=redis://:hunter2-secret@" + addr + "/0",
		"SESSIONGATE_REDIS_TIMEOUT=200ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		a.Close()
		t.Fatal("started without Redis")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("refusal took %v", took)
	}
	msg := err.Error()
	if !strings.Contains(msg, "SESSIONGATE_REDIS_URL") || strings.Contains(msg, "hunter2") {
		t.Fatalf("error %q: want the variable named and no password", msg)
	}
}

// fakeRedis listens on loopback and hands each connection to serve; it
// returns the redis:// URL.
func fakeRedis(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serve(c)
		}
	}()
	return "redis://" + ln.Addr().String() + "/0"
}

// A Redis that is there but not ready is told apart from one that is not
// there: the start-up check's message says what it is and when to start
// again, not to install redis-server. Redis answers -LOADING while it
// reads its data set back at start, or (Redis 7.0, measured) holds new
// connections without a word.
func TestBuildRedisNotReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		want  []string
	}{
		{"answers nothing", func(net.Conn) {},
			[]string{"accepted the connection but answered nothing", "loading", "SESSIONGATE_REDIS_TIMEOUT"}},
		{"LOADING", func(c net.Conn) {
			// One reply for each command (a line starting with "*").
			lines := bufio.NewScanner(c)
			for lines.Scan() {
				if !strings.HasPrefix(lines.Text(), "*") {
					continue
				}
				if _, err := io.WriteString(c, "-LOADING Redis is loading the dataset in memory\r\n"); err != nil {
					return
				}
			}
		}, []string{"still loading", "LOADING"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load([]string{
				"SESSIONGATE_PHP_FPM=127.0.0.1:1",
				"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
				"SESSIONGATE_SESSION_KEYS=app-test-key-0123456789abcdef0123456789",
				"SESSIONGATE_REDIS_URL=" + fakeRedis(t, tc.serve),
				"SESSIONGATE_REDIS_TIMEOUT=100ms",
			})
			if err != nil {
				t.Fatal(err)
			}
			a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			msg := err.Error()
			for _, frag := range append(tc.want, "SESSIONGATE_REDIS_URL") {
				if !strings.Contains(msg, frag) {
					t.Errorf("message lacks %q: %s", frag, msg)
				}
			}
			if strings.Contains(msg, "apt-get install redis-server") {
				t.Errorf("a Redis that is there is told to be installed: %s", msg)
			}
		})
	}
}
