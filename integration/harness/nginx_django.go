package harness

import (
	"fmt"
	"os"
	"path/filepath"
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
	// MaxBody is client_max_body_size ("64m" when empty).
	MaxBody string
	// LocationExtra are more directives for the proxied location
	// ("proxy_request_buffering off;").
	LocationExtra string
}

// NginxDjango is a running nginx started by StartNginxDjango.
type NginxDjango struct {
	*Nginx
	// Addr is "127.0.0.1:port"; URL is "http://" + Addr.
	Addr, URL string
	// AccessLog is nginx's access log: "$status $request_uri" per request.
	AccessLog string
}

// StartNginxDjango runs Debian's nginx (nginx-light, StartNginx) in front
// of o.Upstream with the proxy settings a Django site runs behind nginx:
// Host (o.Host), X-Forwarded-For appended to, X-Forwarded-Proto from the
// scheme, HTTP/1.1 with kept-alive upstream connections. A missing nginx
// fails the test (Require).
func StartNginxDjango(t testing.TB, o NginxDjangoOptions) *NginxDjango {
	t.Helper()
	if o.Upstream == "" {
		t.Fatal("harness: NginxDjangoOptions.Upstream is empty")
	}
	if o.Location == "" {
		o.Location = "/"
	}
	if o.Host == "" {
		o.Host = "$http_host"
	}
	accessLog := filepath.Join(t.TempDir(), "access.log")
	n := StartNginx(t, 1, func(addrs []string) string { return nginxDjangoServer(o, addrs[0], accessLog) })
	return &NginxDjango{Nginx: n, Addr: n.Addrs[0], URL: "http://" + n.Addrs[0], AccessLog: accessLog}
}

// nginxDjangoServer is the http context's content for o on addr: the
// upstream pool and the server block proxying o.Location to it.
func nginxDjangoServer(o NginxDjangoOptions, addr, accessLog string) string {
	realIP := ""
	if o.RealIPFrom != "" {
		realIP = fmt.Sprintf("    set_real_ip_from %s;\n    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n", o.RealIPFrom)
	}
	timeout := ""
	if o.ReadTimeout > 0 {
		timeout = fmt.Sprintf("            proxy_read_timeout %dms;\n", o.ReadTimeout.Milliseconds())
	}
	maxBody := o.MaxBody
	if maxBody == "" {
		maxBody = "64m"
	}
	return `    log_format st '$status $request_uri';
    client_max_body_size ` + maxBody + `;
` + realIP + `
    upstream django {
        server ` + o.Upstream + `;
        keepalive 8;
    }

    server {
        listen ` + addr + `;
        access_log ` + accessLog + ` st;

        location ` + o.Location + ` {
            proxy_pass http://django;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host ` + o.Host + `;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
` + timeout + `            ` + o.LocationExtra + `
        }

        location / { return 404; }
    }
`
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
