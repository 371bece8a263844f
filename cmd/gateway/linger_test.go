package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/server"
)

// answerEmpty stands for php-fpm: every script answers 200 with nothing.
type answerEmpty struct{}

func (answerEmpty) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}
func (answerEmpty) Ping(context.Context) error { return nil }
func (answerEmpty) Close() error               { return nil }

// The server lingers after an answer given with the body unread for at most
// 5 s of silence (nginx's lingering_timeout, server/linger.go). Wired as
// serve.go wires it, behind bodyReadTimeout, each linger read went through
// deadlineBody, which moves the read deadline SESSIONGATE_READ_TIMEOUT (60
// s by default) ahead: a client gone silent after its 413 held the handler
// (and delayed a drain) that long. With at most 256 KiB of the declared
// body left (20000 bytes here), net/http reads the rest itself after the
// handler, before it closes the connection, and bodyReadTimeout had moved
// the deadline a whole READ_TIMEOUT ahead again for that read: the
// connection, and a shutdown's wait for it, lasted lingerTimeout +
// READ_TIMEOUT though every request was answered.
func TestLingerBehindBodyReadTimeoutKeepsItsSilenceBound(t *testing.T) {
	for _, declared := range []int{1000000, 20000} {
		t.Run(strconv.Itoa(declared), func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			os.WriteFile(filepath.Join(root, "index.php"), []byte("<?php"), 0o644)
			cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:1", "SESSIONGATE_DOCUMENT_ROOT=/srv/site",
				"SESSIONGATE_STATIC_ROOT=" + root, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_MAX_BODY=1k"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.WithPHPBackend(answerEmpty{}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const readTimeout = 15 * time.Second // SESSIONGATE_READ_TIMEOUT, above the 5 s lingerTimeout
			running := newInflight()
			srv := &http.Server{Handler: bodyReadTimeout(readTimeout, running.track(s.Handler())), BaseContext: running.baseContext,
				ReadHeaderTimeout: 5 * time.Second}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			defer srv.Close()

			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			// A body over SESSIONGATE_MAX_BODY: 413 at once; then the
			// client sends nothing more.
			fmt.Fprintf(c, "POST /index.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nabc", declared)
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			answered := time.Now()
			br.ReadByte() // EOF when the gateway closes
			d := time.Since(answered)
			if res.StatusCode != http.StatusRequestEntityTooLarge || d > 10*time.Second {
				t.Errorf("silent client after a %d: connection held %v, want about lingerTimeout (5s)", res.StatusCode, d.Round(100*time.Millisecond))
			}
			start := time.Now()
			clean := drain(srv, running, 10*time.Second, time.Second, nil, slog.New(slog.DiscardHandler))
			if d := time.Since(start); !clean || d > 3*time.Second {
				t.Errorf("drain with every request answered: %v (clean %v), want at once", d.Round(100*time.Millisecond), clean)
			}
		})
	}
}
