package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestStoreRedisSentinelMasterUnreachable: the Sentinel answers but the
// master it names does not (a master behind NAT or in a container, which
// announces an address the gateway cannot reach, or one that is down with
// no replica to promote). The start-up check says that the address is the
// one the Sentinel gave, not one of the URL's: the operator otherwise saw
// only "dial tcp ADDR: connection refused" for an address written nowhere
// in the configuration.
func TestStoreRedisSentinelMasterUnreachable(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	sentinel := harness.StartRedisSentinel(t, r.Addr)
	r.Stop()
	s := newStore(t, "redis-sentinel://"+sentinel+"/0?master=mymaster", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Ping(ctx)
	if err == nil {
		t.Fatal("Ping passed with the master down")
	}
	t.Log(err)
	if msg := err.Error(); !strings.Contains(msg, "the master the Sentinel names") || !strings.Contains(msg, r.Addr) {
		t.Errorf("Ping: %v\nwant it to say the Sentinel named the unreachable master at %s", err, r.Addr)
	}
}

// TestSessionEverySentinelDown: with every Sentinel down and the master up,
// the connections the gateway has open go on working, but a new one cannot
// be made (go-redis asks a Sentinel for the master's address at each), so
// a request that needs one gets 503. Its log line must say that no
// Sentinel answers, the cause to fix, and the readiness probe must too.
func TestSessionEverySentinelDown(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{sentinel: true})
	ck := s.newSession(t)
	if _, err := redisDoOnce(s.sentinel, "SHUTDOWN", "NOSAVE"); err == nil {
		t.Log("the Sentinel answered SHUTDOWN")
	}
	if !poll(10*time.Second, func() bool { _, err := redisDoOnce(s.sentinel, "PING"); return err != nil }) {
		t.Fatal("the Sentinel still answers")
	}
	// New connections from now on: the gateways' open ones are cut.
	if _, err := s.red.Do("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"); err != nil {
		t.Fatal(err)
	}
	resp, body, _ := s.gws[0].get(t, "/counter.php", ck)
	if resp.StatusCode != 503 {
		t.Fatalf("a request needing a new connection with no Sentinel up: %d %q, want 503", resp.StatusCode, body)
	}
	line, ok := logLine(s.gws[0].Logs, `"status":503`)
	if !ok {
		t.Fatal("no 503 logged")
	}
	t.Log(line)
	if !strings.Contains(line, "no Sentinel reachable") {
		t.Errorf("the 503 with every Sentinel down logged as %s; want \"no Sentinel reachable\"", line)
	}
	res, err := http.Get(s.gws[0].Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	t.Logf("readyz: %d %s", res.StatusCode, b)
	if res.StatusCode != 503 || !strings.Contains(string(b), "no Sentinel reachable") {
		t.Errorf("/readyz with every Sentinel down: %d %s, want 503 naming the cause", res.StatusCode, b)
	}
}

// redisDoOnce sends one command on a connection of its own (a Sentinel
// knows no HELLO or CLIENT SETINFO, which a go-redis client sends first).
func redisDoOnce(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "-") {
		return "", errors.New(strings.TrimSpace(line[1:]))
	}
	return strings.TrimSpace(line), nil
}
