package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// healthcheckTimeout bounds the whole probe; a container runtime kills a
// HEALTHCHECK that outlives its own --timeout, so answer well before.
var healthcheckTimeout = 2 * time.Second

// healthcheck probes http://$SESSIONGATE_ADMIN_LISTEN/healthz and exits 0
// on a 200, 1 otherwise, a misconfigured probe included: Docker reserves
// exit code 2 of a HEALTHCHECK ("do not use"). It exists for container images without a shell or
// curl (distroless, scratch): the image's HEALTHCHECK runs the gateway
// binary itself, with the environment the gateway runs with. It reads only
// SESSIONGATE_ADMIN_LISTEN, so a probe never depends on the rest of the
// configuration being loadable from the probe's point of view.
func healthcheck(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "gateway healthcheck: unexpected argument %q\n", args[0])
		return 1
	}
	listen := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "SESSIONGATE_ADMIN_LISTEN="); ok {
			listen = v
		}
	}
	if listen == "" {
		fmt.Fprintln(stderr, "gateway healthcheck: SESSIONGATE_ADMIN_LISTEN is not set: there is no admin listener to probe")
		return 1
	}
	addrs, err := probeAddrs(listen)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: SESSIONGATE_ADMIN_LISTEN=%q: %v\n", listen, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	// Built, not parsed: the zone of a link-local address ([fe80::1%eth0])
	// is written %25 in a URL.
	probeURL := (&url.URL{Scheme: "http", Host: addrs[0], Path: "/healthz"}).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, probeURL, nil)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: %v\n", err)
		return 1
	}
	// No proxy from the environment: the probe talks to this container.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			var errs []error
			for _, a := range addrs {
				c, err := d.DialContext(ctx, network, a)
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		}}}
	res, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: %s: %v\n", probeURL, err)
		return 1
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gateway healthcheck: %s: %s\n", probeURL, res.Status)
		return 1
	}
	fmt.Fprintf(stdout, "ok %s\n", probeURL)
	return 0
}

// probeAddrs turns a listen address into the addresses to dial, in order:
// an empty or wildcard host (":8081", "0.0.0.0:8081", "[::]:8081") means
// this host's loopback. Go serves "[::]" on a dual-stack socket, which
// answers only over IPv4 where IPv6 is disabled, so ::1 falls back to
// 127.0.0.1.
func probeAddrs(listen string) ([]string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("want host:port: %w", err)
	}
	if port == "" || port == "0" {
		return nil, fmt.Errorf("port %q cannot be probed", port)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		return []string{net.JoinHostPort("::1", port), net.JoinHostPort("127.0.0.1", port)}, nil
	}
	return []string{net.JoinHostPort(host, port)}, nil
}
