package redisstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// A server that answers every connection as Redis does past maxclients
// (the refusal, then close): the store's errors name maxclients, through
// go-redis's connection set-up (which unwraps its error once) as through a
// command, instead of a bare "broken pipe" or "connection reset".
func TestMaxClientsRefusalNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(maxClientsText + "\r\n"))
			c.Close()
		}
	}()
	s := newTestStore(t, ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, err := range map[string]error{
		"Ping": s.Ping(ctx),
		"Load": func() error { _, err := s.Load(ctx, "x"); return err }(),
		"Save": func() error { _, err := s.Save(ctx, "x", 0, []byte("v"), time.Minute); return err }(),
	} {
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "maxclients") {
			t.Errorf("%s against a full Redis: %v, want ErrUnavailable naming maxclients", name, err)
		}
	}
}
