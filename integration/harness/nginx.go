package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Nginx is a running nginx started by StartNginx: Debian's /usr/sbin/nginx,
// which tests compare the gateway with, request by request.
type Nginx struct {
	// Addrs are the "127.0.0.1:port" addresses of its listeners, in the
	// order StartNginx's servers function got them.
	Addrs []string
	// ConfPath is the generated nginx.conf; ErrorLog its error_log.
	ConfPath string
	ErrorLog string

	server
	bin     string
	dir     string
	main    string
	servers func(addrs []string) string
}

// StartNginx runs nginx in the foreground on a configuration of its own in a
// fresh directory: the main and events contexts, and an http context whose
// content (server blocks, maps, upstreams) is servers(addrs), where addrs
// are listeners free addresses ("127.0.0.1:port") for the server blocks'
// listen directives. It waits until every address accepts. Access logging
// is off; ErrorLog gets the errors. Run as root, the workers run as
// php-fpm's (nobody, see phpWorkerUser): they read the document roots
// StartPHPFPM shares with that account, and nothing more. t.Cleanup stops it.
func StartNginx(t testing.TB, listeners int, servers func(addrs []string) string) *Nginx {
	t.Helper()
	return StartNginxMain(t, "", listeners, servers)
}

// StartNginxMain is StartNginx with main, directives of the main context
// (worker_rlimit_nofile 32;), added to its configuration.
func StartNginxMain(t testing.TB, main string, listeners int, servers func(addrs []string) string) *Nginx {
	t.Helper()
	bin := Bin(t, "nginx")
	dir := t.TempDir()
	// The workers create and use the temp directories below dir.
	ShareWithPHP(t, dir)
	n := &Nginx{
		ConfPath: filepath.Join(dir, "nginx.conf"),
		ErrorLog: filepath.Join(dir, "error.log"),
		server:   server{t: t},
		bin:      bin,
		dir:      dir,
		main:     main,
		servers:  servers,
	}
	n.launch = n.launchProc
	t.Cleanup(n.Stop)
	err := retryPortRace(func() error {
		n.Addrs = n.Addrs[:0]
		for range listeners {
			n.Addrs = append(n.Addrs, "127.0.0.1:"+strconv.Itoa(FreePort(t)))
		}
		conf, err := n.conf()
		if err != nil {
			return err
		}
		if err := os.WriteFile(n.ConfPath, []byte(conf), 0o644); err != nil {
			return fmt.Errorf("write nginx.conf: %w", err)
		}
		return n.start()
	}, n.ErrorLog+".stderr", n.ErrorLog)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return n
}

// conf renders nginx.conf: everything nginx writes stays in n.dir.
func (n *Nginx) conf() (string, error) {
	var b strings.Builder
	w, err := workerAccount()
	if err != nil {
		return "", err
	}
	if w.user != "" {
		fmt.Fprintf(&b, "user %s %s;\n", w.user, w.group)
	}
	fmt.Fprintf(&b, "daemon off;\nmaster_process on;\nworker_processes 1;\npid %s;\nerror_log %s info;\n",
		filepath.Join(n.dir, "nginx.pid"), n.ErrorLog)
	b.WriteString(n.main)
	b.WriteString("events { worker_connections 256; }\n\nhttp {\n    access_log off;\n")
	for _, tmp := range []string{"client_body", "fastcgi", "proxy", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s;\n", tmp, filepath.Join(n.dir, tmp))
	}
	b.WriteString("    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n\n")
	b.WriteString(n.servers(n.Addrs))
	b.WriteString("\n}\n")
	return b.String(), nil
}

// launchProc runs nginx and waits for every listener.
func (n *Nginx) launchProc() (*proc, error) {
	// -e: the error log before the configuration's is open (Debian's
	// default, /var/log/nginx/error.log, may not be writable).
	cmd := exec.Command(n.bin, "-p", n.dir, "-c", n.ConfPath, "-e", n.ErrorLog)
	p, err := startProc("nginx", cmd, n.ErrorLog+".stderr")
	if err != nil {
		return nil, err
	}
	for _, a := range n.Addrs {
		if err := waitAccept(a, 10*time.Second, p); err != nil {
			p.stop(time.Second)
			return nil, fmt.Errorf("nginx did not start: %w\n%s", err, tailLogs(4096, n.ErrorLog+".stderr", n.ErrorLog))
		}
	}
	return p, nil
}

// Log returns nginx's error log so far.
func (n *Nginx) Log() string {
	b, err := os.ReadFile(n.ErrorLog)
	if err != nil {
		return ""
	}
	return string(b)
}
