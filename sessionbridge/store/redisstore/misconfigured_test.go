package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/sessiongate/sessiongate/internal/testtls"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// reply is a Redis error reply as go-redis returns it.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

// Only the replies that name the client's settings stop a start for good
// (ErrMisconfigured, exit 78): a Redis loading its data set, busy, out of
// memory or between failovers recovers, and a gateway that exited 78 on
// one would not be restarted after it did. Either way the failure is still
// store.ErrUnavailable for /readyz, and its message is unchanged.
func TestPingMisconfiguredOnlyForSettings(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{reply("WRONGPASS invalid username-password pair or user is disabled."), true},
		{reply("NOAUTH Authentication required."), true},
		{reply("ERR DB index is out of range"), true},
		{reply("NOPERM this user has no permissions to run the 'evalsha' command"), true},
		{reply("ERR The user executing the script can't publish to the channel mentioned in the command script: 2f, on @user_script:11."), true},
		{reply("ERR Unknown Redis command called from script script: 2f, on @user_script:11."), true},
		{reply("ERR unknown command 'publish', with args beginning with: "), true},
		{reply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"), true},
		{wrongKind("the server is a Redis Sentinel: use a redis-sentinel://host:26379/0?master=NAME URL"), true},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "redis.example"}}, true},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, true},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Cert: &x509.Certificate{}, Reason: x509.Expired}}, false},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: internal error")}, false},
		{reply("LOADING Redis is loading the dataset in memory"), false},
		{reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT."), false},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), false},
		{reply("READONLY You can't write against a read only replica."), false},
		{reply("OOM command not allowed when used memory > 'maxmemory'."), false},
		{reply("CLUSTERDOWN The cluster is down"), false},
		{context.DeadlineExceeded, false},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
	} {
		for _, err := range []error{refusedCommand(tc.err), unavailable("ping", tc.err)} {
			err = fmt.Errorf("session store: %w", pingResult(err))
			if got := errors.Is(err, ErrMisconfigured); got != tc.want {
				t.Errorf("%v: ErrMisconfigured %v, want %v", err, got, tc.want)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%v: not store.ErrUnavailable any more", err)
			}
		}
	}
}

// A rediss:// URL that cannot work as the gateway is set up stops the
// start for good (exit 78), as a wrong password does: the port answers
// without TLS, or its certificate comes from an authority the gateway does not
// trust. Each exited 1 and was restarted for ever. With the authority
// trusted, the same server passes.
func TestPingMisconfiguredForTLSTheGatewayCannotUse(t *testing.T) {
	certFile, keyFile := testtls.Pair(t)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	overTLS, err := miniredis.RunTLS(&tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(overTLS.Close)
	// A plain server that answers what it cannot parse (redis-server
	// itself waits for a line end that a ClientHello rarely holds, and the
	// start then fails on its timeout instead; app words that case).
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 512))
			_, _ = c.Write([]byte("-ERR Protocol error: invalid multibulk length\r\n"))
			c.Close()
		}
	}()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	ping := func(url string, opts ...ClientOption) error {
		c, err := OpenClient(url, append(opts, WithTimeouts(5*time.Second, 5*time.Second, 5*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(c, Options{Prefix: "tls:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(); _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return s.Ping(ctx)
	}
	port := overTLS.Addr()[strings.LastIndex(overTLS.Addr(), ":"):]
	for _, tc := range []struct{ name, url, want string }{
		{"PlainPort", "rediss://" + plain.Addr().String() + "/0", "does not look like a TLS handshake"},
		{"UnknownAuthority", "rediss://localhost" + port + "/0", "unknown authority"},
	} {
		err := ping(tc.url)
		if !errors.Is(err, ErrMisconfigured) || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: %v, want ErrMisconfigured saying %q", tc.name, err, tc.want)
		}
	}
	if err := ping("rediss://localhost"+port+"/0", WithTLSConfig(&tls.Config{RootCAs: roots})); err != nil {
		t.Errorf("the same server with its authority trusted: %v", err)
	}
}

// A redis-sentinel:// URL naming a Redis server, not a Sentinel, is said
// to be that: go-redis reports it as every Sentinel unreachable, which the
// message for Sentinels that are down repeated.
func TestSentinelURLNamingARedisSaysSo(t *testing.T) {
	for _, c := range []struct {
		err  string
		want string
	}{
		{"redis: all sentinels specified in configuration are unreachable: ERR unknown command 'sentinel', with args beginning with: 'get-master-addr-by-name' 'mymaster' ", "answers as a Redis server, not a Sentinel"},
		{"redis: all sentinels specified in configuration are unreachable: dial tcp 127.0.0.1:26379: connect: connection refused", "no Sentinel reachable"},
		{"dial tcp 127.0.0.1:6379: connect: connection refused", "connection refused"},
	} {
		err := unavailable("ping", errors.New(c.err))
		if !strings.Contains(err.Error(), c.want) || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: %v, want it to say %q", c.err, err, c.want)
		}
		if c.want != "no Sentinel reachable" && strings.Contains(err.Error(), "no Sentinel reachable") {
			t.Errorf("%s: %v", c.err, err)
		}
	}
}
