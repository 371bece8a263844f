package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server started by StartRedis (or one node of a
// RedisCluster): no persistence, loopback only, so Restart loses all data,
// as a crash of a cache-only Redis does. Start and Restart call t.Fatal and
// must run on the test's goroutine.
type Redis struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// LogPath is the server's log file.
	LogPath string

	server
	bin     string
	dir     string
	port    int
	cluster bool
	busPort int // cluster bus port, when cluster
}

// StartRedis starts a standalone redis-server on a free loopback port with
// persistence off (save "" and appendonly no) and its working directory in
// t.TempDir(). t.Cleanup stops it.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := newRedis(t, false)
	r.firstStart()
	return r
}

// newRedis prepares (but does not start) a server and registers its Stop
// with t.Cleanup.
func newRedis(t testing.TB, cluster bool) *Redis {
	t.Helper()
	dir := t.TempDir()
	r := &Redis{
		LogPath: filepath.Join(dir, "redis.log"),
		server:  server{t: t},
		bin:     Bin(t, "redis-server"),
		dir:     dir,
		cluster: cluster,
	}
	r.launch = r.launchProc
	t.Cleanup(r.Stop)
	return r
}

// firstStart picks the ports and starts the server, picking new ports when
// the chosen ones were taken before redis-server could bind them.
func (r *Redis) firstStart() {
	r.t.Helper()
	err := retryPortRace(func() error {
		r.port = FreePort(r.t)
		r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
		if r.cluster {
			// The bus defaults to port+10000, which may be taken or > 65535.
			r.busPort = FreePort(r.t)
		}
		return r.start()
	}, r.LogPath+".stderr", r.LogPath)
	if err != nil {
		r.t.Fatalf("harness: %v", err)
	}
}

// argv is the redis-server command line for the current ports.
func (r *Redis) argv() []string {
	args := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", r.dir,
		"--logfile", r.LogPath,
		// A replica's first sync otherwise waits 5 s (Redis 7's default)
		// for more replicas to share one diskless transfer: every
		// Sentinel, Cluster and replication test paid it once per replica
		// before it could begin.
		"--repl-diskless-sync-delay", "0",
	}
	if r.cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(r.dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(r.busPort),
			"--cluster-node-timeout", "2000",
		)
	}
	return args
}

// URL returns the go-redis URL of the server, database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// launchProc runs redis-server and waits until it answers PING as our
// server.
func (r *Redis) launchProc() (*proc, error) {
	p, err := startProc("redis-server "+r.Addr, exec.Command(r.bin, r.argv()...), r.LogPath+".stderr")
	if err != nil {
		return nil, err
	}
	// A listening socket is not enough: redis answers -LOADING at first.
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := redisDo(r.Addr, "PING")
		if err == nil && reply == "PONG" {
			// Make sure it is our server answering, not another one that
			// took the port first: each has its own dir.
			if dir, err := redisDo(r.Addr, "CONFIG", "GET", "dir"); err != nil || dir != "dir\n"+r.dir {
				p.stop(time.Second)
				return nil, fmt.Errorf("redis-server %s: another server answers on this port (dir %q)\n%s",
					r.Addr, dir, tailLogs(4096, r.LogPath+".stderr", r.LogPath))
			}
			return p, nil
		}
		if p.exited() || time.Now().After(deadline) {
			p.stop(time.Second)
			return nil, fmt.Errorf("redis-server %s did not start (last PING: %q, %v)\n%s",
				r.Addr, reply, err, tailLogs(4096, r.LogPath+".stderr", r.LogPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Do sends one command over a fresh connection and returns the reply as a
// string (status, integer, bulk, or array elements joined by newlines; a nil
// reply is ""); a Redis error reply is returned as an error. For harness
// checks and simple test assertions; tests that need more use go-redis.
func (r *Redis) Do(args ...string) (string, error) { return redisDo(r.Addr, args...) }

// RedisCluster is a 3-master Redis Cluster (no replicas) created with
// `redis-cli --cluster create`.
type RedisCluster struct {
	// Addrs are the nodes, "127.0.0.1:port" each.
	Addrs []string
	// Nodes give access to each server (Stop/Start a node to test failures;
	// a restarted node rejoins from its nodes.conf).
	Nodes []*Redis
}

// StartRedisCluster starts three cluster-enabled redis-servers (cluster bus on
// its own free port, since port+10000 may be taken), joins them with
// redis-cli --cluster create, and waits until every node reports
// cluster_state:ok. t.Cleanup stops them.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	cli := Bin(t, "redis-cli")
	c := &RedisCluster{}
	for range 3 {
		n := newRedis(t, true)
		n.firstStart()
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("harness: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitOK(t, 30*time.Second)
	return c
}

// AddReplica starts one more cluster node and makes it a replica of the
// master at masterAddr (one of Addrs), then waits until the master reports
// it in sync. The replica is appended to Nodes, not to Addrs (the seeds).
func (c *RedisCluster) AddReplica(t testing.TB, masterAddr string) *Redis {
	t.Helper()
	id, err := redisDo(masterAddr, "CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("harness: CLUSTER MYID on %s: %v", masterAddr, err)
	}
	n := newRedis(t, true)
	n.firstStart()
	args := []string{"--cluster", "add-node", n.Addr, masterAddr, "--cluster-slave", "--cluster-master-id", id}
	if out, err := exec.Command(Bin(t, "redis-cli"), args...).CombinedOutput(); err != nil {
		t.Fatalf("harness: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.Nodes = append(c.Nodes, n)
	replicaID, err := redisDo(n.Addr, "CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("harness: CLUSTER MYID on %s: %v", n.Addr, err)
	}
	// In sync is not enough for a CLUSTER FAILOVER sent next: the
	// masters vote for the replica only once gossip has told them that
	// it is a replica of that master, and its own master ignores its
	// request until then; the failover then never happens. Every node
	// must know it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := redisDo(masterAddr, "INFO", "replication")
		unaware := "(not asked: the replica is not in sync)"
		if err == nil && strings.Contains(info, "state=online") {
			if unaware = c.unawareOf(n, replicaID, id); unaware == "" {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: cluster replica %s of %s not in sync or not known to every node: %q %v\n%s", n.Addr, masterAddr, info, err, unaware)
		}
	}
}

// unawareOf returns the CLUSTER NODES listing of the first node other than
// replica that does not list it as a replica of masterID, "" when none.
func (c *RedisCluster) unawareOf(replica *Redis, replicaID, masterID string) string {
	for _, other := range c.Nodes {
		if other == replica {
			continue
		}
		nodes, err := redisDo(other.Addr, "CLUSTER", "NODES")
		if err != nil || !knowsReplica(nodes, replicaID, masterID) {
			return fmt.Sprintf("%s: %v\n%s", other.Addr, err, nodes)
		}
	}
	return ""
}

// knowsReplica reports whether a CLUSTER NODES listing shows node
// replicaID as a replica of masterID.
func knowsReplica(nodes, replicaID, masterID string) bool {
	for _, line := range strings.Split(nodes, "\n") {
		// <id> <ip:port@bus> <flags> <master> ...
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == replicaID && strings.Contains(f[2], "slave") && f[3] == masterID {
			return true
		}
	}
	return false
}

// URL returns the go-redis ParseClusterURL form:
// "redis://first?addr=second&addr=third".
func (c *RedisCluster) URL() string {
	u := "redis://" + c.Addrs[0]
	for i, a := range c.Addrs[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + a
	}
	return u
}

// WaitOK waits until every node reports cluster_state:ok and agrees on all
// 16384 slots being assigned, failing the test after d.
func (c *RedisCluster) WaitOK(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var bad string
		for _, a := range c.Addrs {
			info, err := redisDo(a, "CLUSTER", "INFO")
			if err != nil {
				bad = fmt.Sprintf("%s: %v", a, err)
				break
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				bad = fmt.Sprintf("%s: %s", a, strings.ReplaceAll(strings.TrimSpace(info), "\r\n", " "))
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: redis cluster not ok after %v: %s", d, bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartRedisSentinel starts a redis-sentinel (redis-server --sentinel) on
// a free loopback port, monitoring master ("host:port") as "mymaster", and
// returns its address. t.Cleanup stops it.
func StartRedisSentinel(t testing.TB, master string) string {
	t.Helper()
	host, masterPort, err := net.SplitHostPort(master)
	if err != nil {
		t.Fatalf("harness: sentinel for %q: %v", master, err)
	}
	bin := Bin(t, "redis-server")
	dir := t.TempDir()
	confPath, logPath := filepath.Join(dir, "sentinel.conf"), filepath.Join(dir, "sentinel.log")
	var addr string
	err = retryPortRace(func() error {
		port := FreePort(t)
		addr = "127.0.0.1:" + strconv.Itoa(port)
		// Written for each try: the sentinel rewrites its file with its
		// state.
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster %s %s 1\n", port, dir, host, masterPort)
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			return err
		}
		p, err := startProc("redis-sentinel "+addr, exec.Command(bin, confPath, "--sentinel"), logPath)
		if err != nil {
			return err
		}
		// Ready when its own log says it runs on the port, which redis
		// writes once it has bound it; another listener there proves
		// nothing (waitAccept).
		running := []byte(fmt.Sprintf("Running mode=sentinel, port=%d.", port))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			gone := p.exited() // before the read: the log is complete then
			if b, _ := os.ReadFile(logPath); bytes.Contains(b, running) {
				t.Cleanup(func() { p.stop(time.Second) })
				return nil
			}
			if gone || time.Now().After(deadline) {
				p.stop(time.Second)
				return fmt.Errorf("redis sentinel %s did not start\n%s", addr, tailLogs(4096, logPath))
			}
		}
	}, logPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return addr
}

// redisDo speaks just enough RESP2 for the harness: one command, one reply.
func redisDo(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", fmt.Errorf("redis %s: write: %w", addr, err)
	}
	return readReply(bufio.NewReader(c))
}

// readReply reads one RESP2 value. Errors come back as a Go error.
func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis: read reply: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("redis: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redis: bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", fmt.Errorf("redis: read bulk: %w", err)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redis: bad array length %q", line)
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			s, err := readReply(br)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}
