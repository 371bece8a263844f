package app

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
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

// A Redis that takes the connection and answers nothing (Redis 7.0 still
// loading a large data set at start holds new connections so) is told
// apart from one that is not there: the message says so and what to do.
func TestBuildRedisThatAnswersNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:1",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=app-test-key-0123456789abcdef0123456789",
		"SESSIONGATE_REDIS_URL=redis://" + ln.Addr().String() + "/0",
		"SESSIONGATE_REDIS_TIMEOUT=100ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		a.Close()
		t.Fatal("started with a Redis that answers nothing")
	}
	msg := err.Error()
	for _, frag := range []string{"SESSIONGATE_REDIS_URL", "accepted the connection but answered nothing", "loading", "SESSIONGATE_REDIS_TIMEOUT"} {
		if !strings.Contains(msg, frag) {
			t.Errorf("message lacks %q: %s", frag, msg)
		}
	}
	if strings.Contains(msg, "apt-get install redis-server") {
		t.Errorf("a Redis that is there is told to be installed: %s", msg)
	}
}

// A Redis that answers -LOADING while it loads its data set at start is
// told apart in the same way.
func TestBuildRedisLoading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
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
			}()
		}
	}()
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:1",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=app-test-key-0123456789abcdef0123456789",
		"SESSIONGATE_REDIS_URL=redis://" + ln.Addr().String() + "/0",
		"SESSIONGATE_REDIS_TIMEOUT=100ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		a.Close()
		t.Fatal("started with a Redis that is loading")
	}
	msg := err.Error()
	for _, frag := range []string{"SESSIONGATE_REDIS_URL", "still loading", "LOADING"} {
		if !strings.Contains(msg, frag) {
			t.Errorf("message lacks %q: %s", frag, msg)
		}
	}
	if strings.Contains(msg, "apt-get install redis-server") {
		t.Errorf("a Redis that is there is told to be installed: %s", msg)
	}
}
