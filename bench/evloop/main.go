// Command evloop is a measuring instrument, not a front to deploy: a
// front written the way nginx is, to learn what Go costs per request when
// it works that way. One OS thread runs one
// level-triggered epoll loop over nonblocking sockets: no goroutine per
// connection, no net/http, no deadlines, no allocation per request once
// warm. Each request costs a read, a stat, a write to php-fpm, a read of
// its answer and a write to the client, as nginx's does.
//
// Paths under SESSIONGATE_DJANGO_PATHS go to SESSIONGATE_DJANGO_URL the way
// nginx's proxy_pass does: HTTP/1.1 on kept-alive connections, the client's
// headers less the hop-by-hop ones, X-Forwarded-For/Proto/Host added, the
// answer's head rebuilt and its body relayed once complete.
//
// It reads the gateway's variables (SESSIONGATE_LISTEN, SESSIONGATE_PHP_FPM,
// SESSIONGATE_DOCUMENT_ROOT, SESSIONGATE_PHP_MAX_CONNS, SESSIONGATE_DJANGO_URL,
// SESSIONGATE_DJANGO_PATHS), so bench/run.sh runs it in the gateway's place:
//
//	go build -o /tmp/evloop ./bench/evloop
//	GATEWAY_BIN=/tmp/evloop BENCH_SESSION_CHECK=0 BENCH_SCENARIOS="hello django" bench/run.sh
//
// (BENCH_SESSION_CHECK=0: it keeps no sessions, which the django scenario
// otherwise checks the gateway does.)
//
// What it leaves out, on purpose: request bodies (a request with one is
// refused), TLS, HTTP/2, timeouts, logs, PATH_INFO, the front controller,
// sessions (its Django requests carry no session headers) and every check
// the gateway makes. docs/design.md ("Measured and left out") has what it
// measured.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
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
	django bool // HTTP to gunicorn, not FastCGI to php-fpm
	in     []byte
	stdout []byte
	owner  *client
	// sent is the Django request on the wire, to send once more on a new
	// connection when gunicorn closed this one before answering.
	sent    []byte
	retried bool
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
	// fpmConns counts the open php-fpm connections, idle or not, up to
	// fpmMax (SESSIONGATE_PHP_MAX_CONNS).
	fpmConns, fpmMax int
	// The Django side: its own idle connections, dialled as needed.
	djangoAddr  string
	djangoPaths []string
	djangoIdle  []*upstream
	request     []byte // scratch: the FastCGI request being built
	params      []byte // scratch: its PARAMS content
	response    []byte // scratch: the HTTP response being built
	stat        syscall.Stat_t
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
	conns, err := strconv.Atoi(orDefault(os.Getenv("SESSIONGATE_PHP_MAX_CONNS"), "8"))
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
	if u := os.Getenv("SESSIONGATE_DJANGO_URL"); u != "" {
		addr, ok := strings.CutPrefix(u, "http://")
		if !ok || strings.ContainsAny(addr, "/,") {
			return fmt.Errorf("SESSIONGATE_DJANGO_URL: want one http://host:port: %q", u)
		}
		f.djangoAddr = addr
		for p := range strings.SplitSeq(os.Getenv("SESSIONGATE_DJANGO_PATHS"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.djangoPaths = append(f.djangoPaths, p)
			}
		}
	}
	if f.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	f.fpmMax = conns
	for range conns {
		u, err := f.dial(f.fpm, false)
		if err != nil {
			return fmt.Errorf("SESSIONGATE_PHP_FPM: %w", err)
		}
		f.fpmConns++
		f.idle = append(f.idle, u)
	}
	if err := f.listen(orDefault(os.Getenv("SESSIONGATE_LISTEN"), "127.0.0.1:8080")); err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := epollWait(f.ep, events)
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
			case f.ups[fd] != nil && f.ups[fd].django:
				f.readDjango(f.ups[fd])
			case f.ups[fd] != nil:
				f.readUpstream(f.ups[fd])
			case f.clients[fd] != nil:
				f.clientEvent(f.clients[fd], ev.Events)
			}
		}
	}
}

// epollWait waits up to 10 ms as a raw system call. Through the runtime's
// system call path (syscall.EpollWait), every wait that blocks has Go's
// monitor thread watching the stuck processor: at the Django page's 2.5k
// requests a second that cost 1.2 nanosleep and 0.6 futex calls and 3.3
// context switches per request, against 0.2, 0.2 and 2.0 this way. The
// bound keeps a garbage collection's stop of the world, which has to wait
// for a raw call to return, short.
func epollWait(ep int, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 10, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func orDefault(v, def string) string {
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

// dial opens a connection to php-fpm or gunicorn at addr and watches it.
func (f *front) dial(addr string, django bool) (*upstream, error) {
	var fd int
	var err error
	var sa syscall.Sockaddr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		sa = &syscall.SockaddrUnix{Name: path}
	} else {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil || !ap.Addr().Is4() {
			return nil, fmt.Errorf("want one IPv4 host:port or unix:/path: %q", addr)
		}
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// A blocking connect: on loopback it returns at once; it happens at
	// start, after an upstream closed one, and for a Django connection
	// more than the idle ones.
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	if _, ok := sa.(*syscall.SockaddrInet4); ok {
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("nonblock: %w", err)
	}
	if err := syscall.EpollCtl(f.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	u := &upstream{fd: fd, django: django, in: make([]byte, 0, 64<<10)}
	if !django {
		u.stdout = make([]byte, 0, 64<<10)
	}
	f.ups[fd] = u
	return u, nil
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
		if c.closed {
			return
		}
		if len(c.out) == 0 {
			f.start(c) // a request pipelined behind the one just answered
		}
	}
	if events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
		return
	}
	// Level-triggered: whatever the client sent is read now, even while
	// its previous request is out, or epoll would report it again at once.
	// A pipelined request waits in c.in for its turn.
	if len(c.in) == cap(c.in) {
		f.closeClient(c) // a head, or pipelined heads, larger than the buffer
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
	if len(c.out) == 0 {
		f.start(c)
	}
}

// start sends c's buffered request to php-fpm, or queues c for a free
// connection, once its header is complete.
func (f *front) start(c *client) {
	if c.busy || c.queued || c.closed || !bytes.Contains(c.in, []byte("\r\n\r\n")) {
		return
	}
	if f.isDjango(c.in) {
		f.sendDjango(c)
		return
	}
	if len(f.idle) == 0 && f.fpmConns < f.fpmMax {
		// One that php-fpm closed (a restart, pm.max_requests) is
		// replaced when it is needed, not while php-fpm may be down.
		u, err := f.dial(f.fpm, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, "evloop: SESSIONGATE_PHP_FPM:", err)
			f.refuse(c, "502 Bad Gateway")
			return
		}
		f.fpmConns++
		f.idle = append(f.idle, u)
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

// head is the request at the start of c.in: its line's three parts, its
// fields, and where its blank line starts.
type head struct {
	method, uri, proto, fields []byte
	end                        int
}

// parseLine splits the request at the start of c.in, which start has seen
// complete, and refuses it (400) when its line is not three parts.
func (f *front) parseLine(c *client) (head, bool) {
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	line, fields, _ := bytes.Cut(c.in[:end], []byte("\r\n"))
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	uri, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		f.refuse(c, "400 Bad Request")
		return head{}, false
	}
	c.keep = bytes.Equal(proto, []byte("HTTP/1.1"))
	return head{method: method, uri: uri, proto: proto, fields: fields, end: end}, true
}

// eachField hands visit every field of a request, with its value trimmed,
// after the checks both upstreams need: a field without a name is refused
// (400), one that announces a body too (501: the front takes none), and
// "Connection: close" ends the connection after the answer. It reports
// false once it has refused the request.
func (f *front) eachField(c *client, fields []byte, visit func(name, value, field []byte)) bool {
	for field := range bytes.SplitSeq(fields, []byte("\r\n")) {
		name, value, ok := bytes.Cut(field, []byte(":"))
		if !ok || len(name) == 0 {
			f.refuse(c, "400 Bad Request")
			return false
		}
		value = bytes.TrimSpace(value)
		if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Transfer-Encoding")) {
			f.refuse(c, "501 Not Implemented")
			return false
		}
		if bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")) {
			c.keep = false
		}
		visit(name, value, field)
	}
	return true
}

// send parses c's request header and writes its FastCGI request on u. It
// answers the client itself, and reports false, when php-fpm is not asked.
func (f *front) send(c *client, u *upstream) bool {
	h, ok := f.parseLine(c)
	if !ok {
		return false
	}
	method, uri, proto := h.method, h.uri, h.proto
	if len(uri) == 0 || uri[0] != '/' || bytes.Contains(uri, []byte("..")) {
		f.refuse(c, "400 Bad Request")
		return false
	}
	path, query, _ := bytes.Cut(uri, []byte("?"))
	p := f.params[:0]
	ok = f.eachField(c, h.fields, func(name, value, _ []byte) {
		if bytes.IndexByte(name, '_') < 0 && !bytes.EqualFold(name, []byte("Proxy")) {
			p = appendHeaderParam(p, name, value)
		}
	})
	if !ok {
		return false
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
	c.in = c.in[:copy(c.in, c.in[h.end+4:])]
	// The connection is idle and the request a few hundred bytes: the
	// socket buffer takes it whole, or php-fpm is gone.
	if n, err := syscall.Write(u.fd, r); err != nil || n != len(r) {
		f.refuse(c, "502 Bad Gateway")
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

// fill appends what u's peer sent to u.in, grown when full (a FastCGI
// record is up to 64 KiB, a Django answer any size). gone: the peer closed
// the connection or reading it failed.
func fill(u *upstream) (read, gone bool) {
	if len(u.in) == cap(u.in) {
		u.in = append(u.in, 0)[:len(u.in)]
	}
	n, err := syscall.Read(u.fd, u.in[len(u.in):cap(u.in)])
	if err == syscall.EAGAIN {
		return false, false
	}
	if err != nil || n == 0 {
		return false, true
	}
	u.in = u.in[:len(u.in)+n]
	return true, false
}

// readUpstream reads what php-fpm sent on u and answers u's client once
// the request has ended.
func (f *front) readUpstream(u *upstream) {
	if _, gone := fill(u); gone {
		syscall.Close(u.fd)
		delete(f.ups, u.fd)
		if c := u.owner; c != nil && !c.closed {
			c.busy = false
			f.refuse(c, "502 Bad Gateway")
		} else if i := slices.Index(f.idle, u); i >= 0 {
			f.idle = slices.Delete(f.idle, i, i+1)
		}
		f.fpmConns--
		f.startWaiting()
		return
	}
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
			f.refuse(c, "502 Bad Gateway")
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
	for len(f.waiting) > 0 && (len(f.idle) > 0 || f.fpmConns < f.fpmMax) {
		c := f.waiting[0]
		f.waiting = f.waiting[1:]
		c.queued = false
		f.start(c)
	}
}

// refuse answers with status and no body, and closes the connection after
// it, as for every request the front does not carry through.
func (f *front) refuse(c *client, status string) {
	c.keep = false
	f.answer(c, "HTTP/1.1 "+status+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
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

// isDjango reports whether the request at the head of in is for a path
// under SESSIONGATE_DJANGO_PATHS.
func (f *front) isDjango(in []byte) bool {
	if f.djangoAddr == "" {
		return false
	}
	_, rest, _ := bytes.Cut(in, []byte(" "))
	target, _, _ := bytes.Cut(rest, []byte(" "))
	for _, p := range f.djangoPaths {
		if bytes.HasPrefix(target, []byte(p)) {
			return true
		}
	}
	return false
}

// hopByHop names the request and response fields a proxy does not pass on,
// and the forwarding fields it sets itself.
func hopByHop(name []byte) bool {
	for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "Transfer-Encoding", "Content-Length", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"} {
		if bytes.EqualFold(name, []byte(h)) {
			return true
		}
	}
	return false
}

// sendDjango writes c's request to gunicorn on an idle connection, or a new
// one.
func (f *front) sendDjango(c *client) {
	h, ok := f.parseLine(c)
	if !ok {
		return
	}
	r := append(f.request[:0], h.method...)
	r = append(r, ' ')
	r = append(r, h.uri...)
	r = append(r, " HTTP/1.1\r\n"...)
	var host []byte
	ok = f.eachField(c, h.fields, func(name, value, field []byte) {
		if bytes.EqualFold(name, []byte("Host")) {
			host = value
		} else if hopByHop(name) {
			return
		}
		r = append(r, field...)
		r = append(r, "\r\n"...)
	})
	if !ok {
		return
	}
	r = append(r, "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
	r = append(r, host...)
	r = append(r, "\r\n\r\n"...)
	f.request = r
	c.in = c.in[:copy(c.in, c.in[h.end+4:])]
	var u *upstream
	if n := len(f.djangoIdle); n > 0 {
		u = f.djangoIdle[n-1]
		f.djangoIdle = f.djangoIdle[:n-1]
	}
	f.forward(c, u, r, false)
}

// forward writes request on u (a new connection when u is nil) for c.
func (f *front) forward(c *client, u *upstream, request []byte, retried bool) {
	if u == nil {
		var err error
		if u, err = f.dial(f.djangoAddr, true); err != nil {
			fmt.Fprintln(os.Stderr, "evloop: SESSIONGATE_DJANGO_URL:", err)
			f.refuse(c, "502 Bad Gateway")
			return
		}
	}
	u.sent = append(u.sent[:0], request...)
	u.retried = retried
	u.in = u.in[:0]
	u.owner = c
	c.busy = true
	if n, err := syscall.Write(u.fd, u.sent); err != nil || n != len(u.sent) {
		f.djangoLost(u)
	}
}

// djangoLost closes u, which gunicorn closed or broke. Its request, if it
// had one and no answer began, goes once more on a new connection: a
// kept-alive connection that gunicorn's keep-alive timeout closed as the
// request went out.
func (f *front) djangoLost(u *upstream) {
	syscall.Close(u.fd)
	delete(f.ups, u.fd)
	c := u.owner
	u.owner = nil
	if c == nil {
		if i := slices.Index(f.djangoIdle, u); i >= 0 {
			f.djangoIdle = slices.Delete(f.djangoIdle, i, i+1)
		}
		return
	}
	c.busy = false
	if c.closed {
		return
	}
	if len(u.in) == 0 && !u.retried {
		f.forward(c, nil, u.sent, true)
		return
	}
	f.refuse(c, "502 Bad Gateway")
}

// readDjango reads gunicorn's answer on u and relays it once complete.
func (f *front) readDjango(u *upstream) {
	read, gone := fill(u)
	if gone {
		f.djangoLost(u)
		return
	}
	if !read {
		return
	}
	if u.owner == nil {
		f.djangoLost(u) // bytes nobody asked for
		return
	}
	headEnd := bytes.Index(u.in, []byte("\r\n\r\n"))
	if headEnd < 0 {
		return
	}
	statusLine, fields, _ := bytes.Cut(u.in[:headEnd], []byte("\r\n"))
	body := u.in[headEnd+4:]
	bodyLen, upstreamCloses := -1, false
	for field := range bytes.SplitSeq(fields, []byte("\r\n")) {
		name, value, _ := bytes.Cut(field, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			bodyLen, _ = strconv.Atoi(string(value))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")) && bytes.EqualFold(value, []byte("chunked")):
			bodyLen = chunkedLength(body)
			if bodyLen == -1 {
				return // not all there yet
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			upstreamCloses = true
		}
	}
	_, status, _ := bytes.Cut(statusLine, []byte(" "))
	if bytes.HasPrefix(status, []byte("204")) || bytes.HasPrefix(status, []byte("304")) || bytes.HasPrefix(u.sent, []byte("HEAD ")) {
		bodyLen = 0
	}
	if bodyLen < 0 {
		// A broken chunk, or a body that ends with the connection: not
		// what gunicorn sends.
		u.retried = true
		u.in = u.in[:0]
		f.djangoLost(u)
		return
	}
	if len(body) < bodyLen {
		return
	}
	c := u.owner
	u.owner = nil
	c.busy = false
	if !c.closed {
		r := append(f.response[:0], "HTTP/1.1 "...)
		r = append(r, status...)
		r = append(r, "\r\n"...)
		for field := range bytes.SplitSeq(fields, []byte("\r\n")) {
			name, _, _ := bytes.Cut(field, []byte(":"))
			if bytes.EqualFold(name, []byte("Connection")) || bytes.EqualFold(name, []byte("Keep-Alive")) {
				continue
			}
			r = append(r, field...)
			r = append(r, "\r\n"...)
		}
		if !c.keep {
			r = append(r, "Connection: close\r\n"...)
		}
		r = append(r, "\r\n"...)
		r = append(r, body[:bodyLen]...)
		f.response = r
		f.write(c, r)
	}
	u.in = u.in[:0]
	if upstreamCloses {
		syscall.Close(u.fd)
		delete(f.ups, u.fd)
	} else {
		f.djangoIdle = append(f.djangoIdle, u)
	}
	if !c.closed && len(c.out) == 0 {
		f.start(c)
	}
}

// chunkedLength returns the length of the chunked body at the start of b,
// its last chunk and an empty trailer included, -1 while it is not all in
// b, or -2 for a chunk size that is not one.
func chunkedLength(b []byte) int {
	at := 0
	for {
		line := bytes.Index(b[at:], []byte("\r\n"))
		if line < 0 {
			return -1
		}
		sizeText, _, _ := bytes.Cut(b[at:at+line], []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 32)
		if err != nil || size < 0 {
			return -2
		}
		at += line + 2
		if size == 0 {
			if bytes.HasPrefix(b[at:], []byte("\r\n")) {
				return at + 2
			}
			return -1
		}
		at += int(size) + 2
		if at > len(b) {
			return -1
		}
	}
}
