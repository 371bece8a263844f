package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testtls"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// rediss:// against a real redis-server with TLS: the store connects,
// locks and waits over TLS when the CA is trusted, and refuses a server
// whose certificate it cannot verify.
func TestStoreRedisTLS(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	cert, key := testtls.Pair(t)
	port := harness.FreePort(t)
	for _, kv := range [][2]string{{"tls-cert-file", cert}, {"tls-key-file", key}, {"tls-auth-clients", "no"}, {"tls-port", strconv.Itoa(port)}} {
		if out, err := r.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Skipf("CONFIG SET %s: %v %s (redis-server without TLS?)", kv[0], err, out)
		}
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	open := func(url string, cfg *tls.Config) (*redisstore.Store, error) {
		c, err := redisstore.OpenClient(url, redisstore.WithTimeouts(time.Second, time.Second, time.Second), redisstore.WithTLSConfig(cfg))
		if err != nil {
			return nil, err
		}
		s, err := redisstore.New(c, redisstore.Options{Prefix: "tls:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(); _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s, s.Ping(ctx)
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		url := "rediss://" + host + ":" + strconv.Itoa(port) + "/0"
		s, err := open(url, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		ctx := context.Background()
		l, _, err := s.Lock(ctx, "a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		start := time.Now()
		go func() {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			l2, _, err := s.Lock(lctx, "a", time.Minute)
			if err == nil {
				_, err = l2.Unlock(ctx, store.Mutation{Kind: store.Keep})
			}
			got <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: second lock after %v", host, time.Since(start))
	}
	// Untrusted CA (the system's roots).
	_, err = open("rediss://localhost:"+strconv.Itoa(port)+"/0", nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: want a certificate error, got %v", err)
	}
}

// TestStoreRedisTLSIdleConnectionClosed: Redis closes idle client
// connections (timeout 1 in redis.conf; managed Redis services and proxies
// do the same after some minutes). Over plain TCP go-redis notices a
// closed pooled connection before using it; over TLS it did not check, so
// the first session request after an idle spell failed with EOF (503),
// and a lock script is never sent twice. Each lock and load after the
// server closed the pool's connections must work.
func TestStoreRedisTLSIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	cert, key := testtls.Pair(t)
	port := harness.FreePort(t)
	for _, kv := range [][2]string{{"tls-cert-file", cert}, {"tls-key-file", key}, {"tls-auth-clients", "no"}, {"tls-port", strconv.Itoa(port)}, {"timeout", "1"}} {
		if out, err := r.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Skipf("CONFIG SET %s: %v %s (redis-server without TLS?)", kv[0], err, out)
		}
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := redisstore.OpenClient("rediss://localhost:"+strconv.Itoa(port)+"/0", redisstore.WithTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisstore.New(c, redisstore.Options{Prefix: "tlsidle:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(); _ = c.Close() })
	ctx := context.Background()
	for i := range 3 {
		if i > 0 {
			// Redis checks idle clients about every 100 ms: 1 s
			// idle, then closed.
			time.Sleep(2500 * time.Millisecond)
		}
		l, _, err := s.Lock(ctx, "s", time.Minute)
		if err != nil {
			t.Fatalf("lock %d: %v", i, err)
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v"), TTL: time.Minute}); err != nil {
			t.Fatalf("unlock %d: %v", i, err)
		}
		if _, err := s.Load(ctx, "s"); err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
	}
}
