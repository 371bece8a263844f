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

// NginxDjangoOptions configure an nginx proxying to a Django server the way
// Django's and gunicorn's deployment guides set it up.
type NginxDjangoOptions struct {
	// Upstream is the gunicorn address, "127.0.0.1:port".
	Upstream string
	// Location is the prefix proxied to Upstream ("/" by default); every
	// other path gets nginx's 404.
	Location string
	// RealIPFrom, when set, trusts that CIDR's X-Forwarded-For
	// (set_real_ip_from, real_ip_header X-Forwarded-For, real_ip_recursive
	// on): nginx's SESSIONGATE_TRUSTED_PROXIES.
	RealIPFrom string
	// ReadTimeout is proxy_read_timeout (nginx's default 60s when zero).
	ReadTimeout time.Duration
	// Host is the Host nginx sends: "$http_host" (the default, the
	// client's field as sent, gunicorn's documentation) or "$host" (lower
	// case, without the port, from an absolute-form target first).
	Host string
}

// NginxDjango is a running nginx started by StartNginxDjango.
type NginxDjango struct {
	// Addr is "127.0.0.1:port"; URL is "http://" + Addr.
	Addr, URL string
	// ErrorLog and AccessLog are nginx's logs; each access line is
	// "$status $request_uri".
	ErrorLog, AccessLog string

	server
	bin, conf, dir string
}

// StartNginxDjango runs Debian's nginx (nginx-light) in front of o.Upstream
// with the proxy settings a Django site runs behind nginx: Host (o.Host),
// X-Forwarded-For appended to, X-Forwarded-Proto from the scheme, HTTP/1.1
// with kept-alive upstream connections. It runs in the foreground, its
// workers as the current user (so its temp files can live in
// t.TempDir()), and waits until it accepts; t.Cleanup stops it. A missing
// nginx fails the test (Require).
func StartNginxDjango(t testing.TB, o NginxDjangoOptions) *NginxDjango {
	t.Helper()
	bin := Bin(t, "nginx")
	if o.Upstream == "" {
		t.Fatal("harness: NginxDjangoOptions.Upstream is empty")
	}
	if o.Location == "" {
		o.Location = "/"
	}
	if o.Host == "" {
		o.Host = "$http_host"
	}
	dir := t.TempDir()
	n := &NginxDjango{
		ErrorLog:  filepath.Join(dir, "error.log"),
		AccessLog: filepath.Join(dir, "access.log"),
		server:    server{t: t},
		bin:       bin,
		conf:      filepath.Join(dir, "nginx.conf"),
		dir:       dir,
	}
	n.launch = n.launchProc
	t.Cleanup(n.Stop)
	err := retryPortRace(func() error {
		n.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		n.URL = "http://" + n.Addr
		if err := os.WriteFile(n.conf, []byte(n.config(o)), 0o644); err != nil {
			return err
		}
		return n.start()
	}, n.ErrorLog)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return n
}

// config is nginx.conf for o on n.Addr.
func (n *NginxDjango) config(o NginxDjangoOptions) string {
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot enter t.TempDir()
		// (0700) for the temp files of large bodies.
		user = "user root;\n"
	}
	realIP := ""
	if o.RealIPFrom != "" {
		realIP = fmt.Sprintf("    set_real_ip_from %s;\n    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n", o.RealIPFrom)
	}
	timeout := ""
	if o.ReadTimeout > 0 {
		timeout = fmt.Sprintf("            proxy_read_timeout %dms;\n", o.ReadTimeout.Milliseconds())
	}
	d := n.dir
	return user + `worker_processes 1;
daemon off;
pid ` + d + `/nginx.pid;
error_log ` + d + `/error.log info;
events { worker_connections 256; }
http {
    log_format st '$status $request_uri';
    access_log ` + d + `/access.log st;
    client_body_temp_path ` + d + `/body;
    proxy_temp_path ` + d + `/proxy;
    fastcgi_temp_path ` + d + `/fastcgi;
    uwsgi_temp_path ` + d + `/uwsgi;
    scgi_temp_path ` + d + `/scgi;
    client_max_body_size 64m;
` + realIP + `
    upstream django {
        server ` + o.Upstream + `;
        keepalive 8;
    }

    server {
        listen ` + n.Addr + `;

        location ` + o.Location + ` {
            proxy_pass http://django;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host ` + o.Host + `;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
` + timeout + `        }

        location / { return 404; }
    }
}
`
}

// launchProc runs nginx and waits until it accepts on n.Addr.
func (n *NginxDjango) launchProc() (*proc, error) {
	cmd := exec.Command(n.bin, "-p", n.dir, "-c", n.conf, "-e", n.ErrorLog)
	p, err := startProc("nginx "+n.Addr, cmd, n.ErrorLog+".stderr")
	if err != nil {
		return nil, err
	}
	if err := waitAccept(n.Addr, 10*time.Second, p); err != nil {
		p.stop(3 * time.Second)
		return nil, fmt.Errorf("nginx did not start: %w\n%s", err, tailLogs(4096, n.ErrorLog+".stderr", n.ErrorLog))
	}
	return p, nil
}

// AccessLines returns nginx's access log so far, one "$status $request_uri"
// per request.
func (n *NginxDjango) AccessLines() []string {
	b, err := os.ReadFile(n.AccessLog)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
