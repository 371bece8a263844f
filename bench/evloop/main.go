// Command evloop is a measuring instrument, not a front to deploy: a
// FastCGI front written the way nginx is, to learn what Go costs per
// hello-world request when it works that way. One OS thread runs one
// level-triggered epoll loop over nonblocking sockets: no goroutine per
// connection, no net/http, no deadlines, no allocation per request once
// warm. Each request costs a read, a stat, a write to php-fpm, a read of
// its answer and a write to the client, as nginx's does.
//
// It reads the gateway's variables (SESSIONGATE_LISTEN, SESSIONGATE_PHP_FPM,
// SESSIONGATE_DOCUMENT_ROOT, SESSIONGATE_PHP_MAX_CONNS), so bench/run.sh
// runs it in the gateway's place:
//
//	go build -o /tmp/evloop ./bench/evloop
//	GATEWAY_BIN=/tmp/evloop BENCH_SCENARIOS=hello BENCH_FRONTS="gateway nginx" bench/run.sh
//
// What it leaves out, on purpose: request bodies (a request with one is
// refused), TLS, HTTP/2, timeouts, logs, PATH_INFO, the front controller
// and every check the gateway makes. docs/design.md ("Measured and left
// out") has what it measured.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

const (
	fcgiBeginRequest = 1
	fcgiEndRequest   = 3
	fcgiParams       = 4
	fcgiStdin        = 5
	fcgiStdout       = 6
	fcgiStderr       = 7
)

type client struct {
	fd     int
	in     []byte
	out    []byte // what a full socket buffer left unsent
	busy   bool   // its request is at php-fpm
	queued bool   // waiting for a free php-fpm connection
	closed bool
	keep   bool // the request in flight keeps the connection
}

type upstream struct {
	fd     int
	in     []byte
	stdout []byte
	owner  *client
}

type front struct {
	ep       int
	listenFD int
	fpm      string
	docroot  string
	clients  map[int]*client
	ups      map[int]*upstream
	idle     []*upstream
	waiting  []*client
	request  []byte // scratch: the FastCGI request being built
	params   []byte // scratch: its PARAMS content
	response []byte // scratch: the HTTP response being built
	stat     syscall.Stat_t
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "evloop:", err)
		os.Exit(1)
	}
}

func run() error {
	// The loop and its epoll descriptor stay on one thread, as an nginx
	// worker does; the Go scheduler never parks anything.
	runtime.LockOSThread()
	conns, err := strconv.Atoi(cmp(os.Getenv("SESSIONGATE_PHP_MAX_CONNS"), "8"))
	if err != nil || conns < 1 {
		return fmt.Errorf("SESSIONGATE_PHP_MAX_CONNS: want a positive number")
	}
	f := &front{
		fpm:      os.Getenv("SESSIONGATE_PHP_FPM"),
		docroot:  strings.TrimSuffix(os.Getenv("SESSIONGATE_DOCUMENT_ROOT"), "/"),
		clients:  map[int]*client{},
		ups:      map[int]*upstream{},
		request:  make([]byte, 0, 8192),
		params:   make([]byte, 0, 8192),
		response: make([]byte, 0, 64<<10),
	}
	if f.fpm == "" || f.docroot == "" {
		return errors.New("SESSIONGATE_PHP_FPM and SESSIONGATE_DOCUMENT_ROOT must be set")
	}
	if f.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	for range conns {
		if err := f.dialUpstream(); err != nil {
			return err
		}
	}
	if err := f.listen(cmp(os.Getenv("SESSIONGATE_LISTEN"), "127.0.0.1:8080")); err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(f.ep, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == f.listenFD:
				f.accept()
			case f.ups[fd] != nil:
				if err := f.readUpstream(f.ups[fd]); err != nil {
					return err
				}
			case f.clients[fd] != nil:
				f.clientEvent(f.clients[fd], ev.Events)
			}
		}
	}
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (f *front) listen(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return fmt.Errorf("SESSIONGATE_LISTEN: want an IPv4 address and port: %q", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := syscall.Listen(fd, 1024); err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	f.listenFD = fd
	return syscall.EpollCtl(f.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

// dialUpstream adds one kept-alive connection to php-fpm to the idle list.
func (f *front) dialUpstream() error {
	var fd int
	var err error
	var sa syscall.Sockaddr
	if path, ok := strings.CutPrefix(f.fpm, "unix:"); ok {
		fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		sa = &syscall.SockaddrUnix{Name: path}
	} else {
		ap, perr := netip.ParseAddrPort(f.fpm)
		if perr != nil || !ap.Addr().Is4() {
			return fmt.Errorf("SESSIONGATE_PHP_FPM: want one IPv4 host:port or unix:/path: %q", f.fpm)
		}
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	// A blocking connect: only at start and after php-fpm closed one.
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("connect %s: %w", f.fpm, err)
	}
	if _, ok := sa.(*syscall.SockaddrInet4); ok {
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("nonblock: %w", err)
	}
	u := &upstream{fd: fd, in: make([]byte, 0, 64<<10), stdout: make([]byte, 0, 64<<10)}
	f.ups[fd] = u
	f.idle = append(f.idle, u)
	return syscall.EpollCtl(f.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

func (f *front) accept() {
	for {
		fd, _, err := syscall.Accept4(f.listenFD, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: all taken; anything else: the next event retries
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		f.clients[fd] = &client{fd: fd, in: make([]byte, 0, 8192)}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
		if syscall.EpollCtl(f.ep, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
			f.closeClient(f.clients[fd])
		}
	}
}

func (f *front) closeClient(c *client) {
	if c.closed {
		return
	}
	c.closed = true
	syscall.Close(c.fd) // also leaves the epoll set
	delete(f.clients, c.fd)
}

func (f *front) clientEvent(c *client, events uint32) {
	if events&syscall.EPOLLOUT != 0 {
		f.flush(c)
		if c.closed || len(c.out) > 0 {
			return
		}
	}
	if c.busy || len(c.out) > 0 {
		// Level-triggered: a next request waits in the socket until
		// this answer is out. Only a hang-up is acted on.
		if events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			f.closeClient(c)
		}
		return
	}
	if len(c.in) == cap(c.in) {
		f.closeClient(c) // a header larger than the buffer
		return
	}
	n, err := syscall.Read(c.fd, c.in[len(c.in):cap(c.in)])
	if err == syscall.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		f.closeClient(c)
		return
	}
	c.in = c.in[:len(c.in)+n]
	f.start(c)
}

// start sends c's buffered request to php-fpm, or queues c for a free
// connection, once its header is complete.
func (f *front) start(c *client) {
	if c.busy || c.queued || c.closed || !bytes.Contains(c.in, []byte("\r\n\r\n")) {
		return
	}
	if len(f.idle) == 0 {
		c.queued = true
		f.waiting = append(f.waiting, c)
		return
	}
	u := f.idle[len(f.idle)-1]
	f.idle = f.idle[:len(f.idle)-1]
	if !f.send(c, u) {
		// Answered here: the connection goes back, and a request
		// pipelined behind the refused one is next.
		f.idle = append(f.idle, u)
		if !c.closed && len(c.out) == 0 {
			f.start(c)
		}
	}
}

// send parses c's request header and writes its FastCGI request on u. It
// answers the client itself, and reports false, when php-fpm is not asked.
func (f *front) send(c *client, u *upstream) bool {
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	head := c.in[:end]
	line, fields, _ := bytes.Cut(head, []byte("\r\n"))
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	uri, proto, ok2 := bytes.Cut(rest, []byte(" "))
	c.keep = bytes.Equal(proto, []byte("HTTP/1.1"))
	if !ok1 || !ok2 || len(uri) == 0 || uri[0] != '/' || bytes.Contains(uri, []byte("..")) {
		c.keep = false
		f.answer(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return false
	}
	path, query, _ := bytes.Cut(uri, []byte("?"))
	p := f.params[:0]
	for line := range bytes.SplitSeq(fields, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			c.keep = false
			f.answer(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return false
		}
		value = bytes.TrimSpace(value)
		if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Transfer-Encoding")) {
			c.keep = false
			f.answer(c, "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return false
		}
		if bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")) {
			c.keep = false
		}
		if bytes.IndexByte(name, '_') >= 0 || bytes.EqualFold(name, []byte("Proxy")) {
			continue
		}
		p = appendHeaderParam(p, name, value)
	}
	script := f.docroot + string(path)
	if !strings.HasSuffix(script, ".php") || syscall.Stat(script, &f.stat) != nil || f.stat.Mode&syscall.S_IFMT != syscall.S_IFREG {
		f.params = p
		f.answer(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		return false
	}
	// nginx's fastcgi_params, as Debian ships them, plus SCRIPT_FILENAME.
	p = appendParam(p, "SCRIPT_FILENAME", script)
	p = appendParam(p, "QUERY_STRING", string(query))
	p = appendParam(p, "REQUEST_METHOD", string(method))
	p = appendParam(p, "CONTENT_TYPE", "")
	p = appendParam(p, "CONTENT_LENGTH", "")
	p = appendParam(p, "SCRIPT_NAME", string(path))
	p = appendParam(p, "REQUEST_URI", string(uri))
	p = appendParam(p, "DOCUMENT_URI", string(path))
	p = appendParam(p, "DOCUMENT_ROOT", f.docroot)
	p = appendParam(p, "SERVER_PROTOCOL", string(proto))
	p = appendParam(p, "REQUEST_SCHEME", "http")
	p = appendParam(p, "GATEWAY_INTERFACE", "CGI/1.1")
	p = appendParam(p, "SERVER_SOFTWARE", "evloop")
	p = appendParam(p, "REMOTE_ADDR", "127.0.0.1")
	p = appendParam(p, "REMOTE_PORT", "0")
	p = appendParam(p, "SERVER_ADDR", "127.0.0.1")
	p = appendParam(p, "SERVER_PORT", "80")
	p = appendParam(p, "SERVER_NAME", "localhost")
	p = appendParam(p, "REDIRECT_STATUS", "200")
	f.params = p
	r := f.request[:0]
	r = appendRecord(r, fcgiBeginRequest, []byte{0, 1, 1, 0, 0, 0, 0, 0}) // responder, keep the connection
	for len(p) > 0 {
		chunk := p[:min(len(p), 65535)]
		r = appendRecord(r, fcgiParams, chunk)
		p = p[len(chunk):]
	}
	r = appendRecord(r, fcgiParams, nil)
	r = appendRecord(r, fcgiStdin, nil)
	f.request = r
	c.in = c.in[:copy(c.in, c.in[end+4:])]
	// The connection is idle and the request a few hundred bytes: the
	// socket buffer takes it whole, or php-fpm is gone.
	if n, err := syscall.Write(u.fd, r); err != nil || n != len(r) {
		c.keep = false
		f.answer(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return false
	}
	u.owner = c
	u.stdout = u.stdout[:0]
	c.busy = true
	return true
}

func appendParam(b []byte, name, value string) []byte {
	b = appendLength(b, len(name))
	b = appendLength(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

// appendHeaderParam appends a request header as HTTP_NAME, upper-cased with
// '-' as '_', the CGI way.
func appendHeaderParam(b []byte, name, value []byte) []byte {
	b = appendLength(b, len("HTTP_")+len(name))
	b = appendLength(b, len(value))
	b = append(b, "HTTP_"...)
	for _, ch := range name {
		switch {
		case ch == '-':
			ch = '_'
		case 'a' <= ch && ch <= 'z':
			ch -= 'a' - 'A'
		}
		b = append(b, ch)
	}
	return append(b, value...)
}

func appendLength(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

func appendRecord(b []byte, typ byte, content []byte) []byte {
	pad := -len(content) & 7
	b = append(b, 1, typ, 0, 1, byte(len(content)>>8), byte(len(content)), byte(pad), 0)
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

// readUpstream reads what php-fpm sent on u and answers u's client once
// the request has ended. A connection php-fpm closed (pm.max_requests, a
// restart) is replaced.
func (f *front) readUpstream(u *upstream) error {
	if len(u.in) == cap(u.in) {
		u.in = append(u.in, 0)[:len(u.in)] // grow: a record is up to 64 KiB
	}
	n, err := syscall.Read(u.fd, u.in[len(u.in):cap(u.in)])
	if err == syscall.EAGAIN {
		return nil
	}
	if err != nil || n == 0 {
		syscall.Close(u.fd)
		delete(f.ups, u.fd)
		if c := u.owner; c != nil && !c.closed {
			c.busy, c.keep = false, false
			f.answer(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		} else {
			for i, idle := range f.idle {
				if idle == u {
					f.idle = append(f.idle[:i], f.idle[i+1:]...)
					break
				}
			}
		}
		if err := f.dialUpstream(); err != nil {
			return err
		}
		f.startWaiting()
		return nil
	}
	u.in = u.in[:len(u.in)+n]
	for len(u.in) >= 8 {
		contentLen := int(u.in[4])<<8 | int(u.in[5])
		total := 8 + contentLen + int(u.in[6])
		if len(u.in) < total {
			break
		}
		typ, content := u.in[1], u.in[8:8+contentLen]
		switch typ {
		case fcgiStdout:
			u.stdout = append(u.stdout, content...)
		case fcgiStderr:
			os.Stderr.Write(content)
		case fcgiEndRequest:
			f.finish(u)
		}
		u.in = u.in[:copy(u.in, u.in[total:])]
	}
	return nil
}

// finish turns u's CGI answer into an HTTP response for its client and
// gives u to the next waiting request.
func (f *front) finish(u *upstream) {
	c := u.owner
	u.owner = nil
	f.idle = append(f.idle, u)
	if c != nil && !c.closed {
		c.busy = false
		headers, body, ok := bytes.Cut(u.stdout, []byte("\r\n\r\n"))
		if !ok {
			c.keep = false
			f.answer(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		} else {
			r := append(f.response[:0], "HTTP/1.1 "...)
			status := "200 OK"
			if i := bytes.Index(headers, []byte("Status: ")); i >= 0 && (i == 0 || headers[i-1] == '\n') {
				s, _, _ := bytes.Cut(headers[i+8:], []byte("\r\n"))
				status = string(s)
			}
			r = append(r, status...)
			r = append(r, "\r\nServer: evloop\r\n"...)
			r = append(r, headers...)
			r = append(r, "\r\nContent-Length: "...)
			r = strconv.AppendInt(r, int64(len(body)), 10)
			if !c.keep {
				r = append(r, "\r\nConnection: close"...)
			}
			r = append(r, "\r\n\r\n"...)
			r = append(r, body...)
			f.response = r
			f.write(c, r)
		}
	}
	f.startWaiting()
	if c != nil && !c.closed && len(c.out) == 0 {
		f.start(c) // a request pipelined behind the answered one
	}
}

func (f *front) startWaiting() {
	for len(f.waiting) > 0 && len(f.idle) > 0 {
		c := f.waiting[0]
		f.waiting = f.waiting[1:]
		c.queued = false
		f.start(c)
	}
}

// answer sends a response of the front's own, not php-fpm's.
func (f *front) answer(c *client, response string) {
	if end := bytes.Index(c.in, []byte("\r\n\r\n")); end >= 0 {
		c.in = c.in[:copy(c.in, c.in[end+4:])]
	}
	f.write(c, []byte(response))
}

// write sends b, keeping what a full socket buffer refused for EPOLLOUT.
func (f *front) write(c *client, b []byte) {
	for len(b) > 0 {
		n, err := syscall.Write(c.fd, b)
		if err == syscall.EAGAIN {
			c.out = append(c.out[:0], b...)
			ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLOUT, Fd: int32(c.fd)}
			if syscall.EpollCtl(f.ep, syscall.EPOLL_CTL_MOD, c.fd, &ev) != nil {
				f.closeClient(c)
			}
			return
		}
		if err != nil {
			f.closeClient(c)
			return
		}
		b = b[n:]
	}
	if !c.keep {
		f.closeClient(c)
	}
}

// flush sends what write left for EPOLLOUT, then stops asking for it.
func (f *front) flush(c *client) {
	out := c.out
	c.out = c.out[:0]
	f.write(c, out)
	if !c.closed && len(c.out) == 0 {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
		if syscall.EpollCtl(f.ep, syscall.EPOLL_CTL_MOD, c.fd, &ev) != nil {
			f.closeClient(c)
		}
	}
}
