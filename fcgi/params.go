package fcgi

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/sessiongate/sessiongate/internal/proxyheader"
)

// standardParams are the names the transport itself sets. Script.Extra may
// never set one of them (nor any HTTP_* name): a session bridge or config
// mistake must not be able to fake the client address, the script path or a
// request header.
var standardParams = map[string]struct{}{
	"QUERY_STRING": {}, "REQUEST_METHOD": {}, "CONTENT_TYPE": {}, "CONTENT_LENGTH": {},
	"SCRIPT_NAME": {}, "REQUEST_URI": {}, "DOCUMENT_URI": {}, "DOCUMENT_ROOT": {},
	"SERVER_PROTOCOL": {}, "REQUEST_SCHEME": {}, "HTTPS": {}, "GATEWAY_INTERFACE": {},
	"SERVER_SOFTWARE": {}, "REMOTE_ADDR": {}, "REMOTE_PORT": {}, "SERVER_ADDR": {},
	"SERVER_PORT": {}, "SERVER_NAME": {}, "REDIRECT_STATUS": {}, "SCRIPT_FILENAME": {},
	"PATH_INFO": {}, "PATH_TRANSLATED": {}, "REMOTE_USER": {},
}

// ServerSoftware is the SERVER_SOFTWARE param. It names nginx because PHP
// applications read it to learn whether the server sends unmatched URLs to
// the front controller: WordPress offers pretty permalinks (/hello-world/
// rather than /index.php/hello-world/) only when it contains "nginx" (or
// names Apache or IIS), and skips writing an .htaccess the server would
// ignore. The gateway routes like nginx's try_files, so that is the true
// answer; "sessiongate" alone made WordPress fall back to /index.php/ URLs.
const ServerSoftware = "sessiongate (nginx-compatible)"

// reservedParam reports whether an Extra param name is refused.
func reservedParam(name string) bool {
	if _, ok := standardParams[name]; ok {
		return true
	}
	return strings.HasPrefix(name, "HTTP_")
}

// forwardableHeader reports whether a request header becomes an HTTP_*
// param. Only letters, digits and '-' are allowed, like nginx's
// ignore_invalid_headers: '_' would let "X_Session" alias "X-Session" (both
// are HTTP_X_SESSION), '.' and the rest have no safe CGI spelling. Proxy is
// dropped for httpoxy (CVE-2016-5385: HTTP_PROXY is read as a proxy setting
// by CGI programs). Content-Type and Content-Length travel as CONTENT_TYPE
// and CONTENT_LENGTH, whose values the transport controls; Host is sent as
// HTTP_HOST from req.Host.
func forwardableHeader(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	switch {
	case strings.EqualFold(name, "Proxy"),
		strings.EqualFold(name, "Content-Type"),
		strings.EqualFold(name, "Content-Length"),
		strings.EqualFold(name, "Host"):
		return false
	}
	return true
}

// hopByHop reports the headers that describe the client's connection to
// the gateway, not the request (RFC 9110 7.6.1): the standard ones and those
// the client's Connection header names (connNamed, from connectionNamed).
// PHP never sees them, the way net/http/httputil.ReverseProxy drops them
// before any upstream.
func hopByHop(name string, connNamed map[string]bool) bool {
	return hopByHopName(name) || len(connNamed) > 0 && connNamed[strings.ToLower(name)]
}

// connectionNamed returns the lower-cased names of the headers of h that
// its Connection header lists. The tokens are read once per request:
// comparing each header with each token cost headers x tokens, and one
// Connection line under the header size limit holds half a million tokens
// (0.4 s of CPU per request with 98 other headers).
func connectionNamed(h http.Header) map[string]bool {
	conn := h["Connection"]
	if len(conn) == 0 {
		return nil
	}
	named := make(map[string]bool, len(h))
	for name := range h {
		named[strings.ToLower(name)] = false
	}
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.ToLower(strings.TrimSpace(tok))
			if _, ok := named[tok]; ok {
				named[tok] = true
			}
		}
	}
	return named
}

// hopByHopName reports the standard hop-by-hop header names (canonical
// keys, as net/http stores them), in a request or in PHP's response.
func hopByHopName(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// joinPath concatenates a root and a URL path with exactly one '/' between.
func joinPath(root, p string) (string, string) {
	switch {
	case strings.HasSuffix(root, "/") && strings.HasPrefix(p, "/"):
		return root, p[1:]
	case !strings.HasSuffix(root, "/") && !strings.HasPrefix(p, "/") && p != "":
		return root + "/", p
	}
	return root, p
}

// splitHostPortLoose splits "host:port", "[v6]:port", "host" or "[v6]";
// unlike net.SplitHostPort it never fails.
func splitHostPortLoose(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
		return hp[1 : len(hp)-1], ""
	}
	return hp, ""
}

// encodeParams appends the FCGI_PARAMS stream for req and s to e, in nginx's
// fastcgi_params order, then SCRIPT_FILENAME and the PATH_* pair, the
// request headers and finally s.Extra. bodyLen < 0 means the request has no
// body: CONTENT_LENGTH is then empty, as nginx sends it, or "0" when the
// request framed an empty one. dropped is called for every Extra param
// that was refused.
func encodeParams(e *paramEncoder, req *http.Request, s *Script, bodyLen int64, dropped func(name string)) error {
	var err error
	add := func(name, value string) {
		if err == nil {
			err = e.add(name, value)
		}
	}
	add2 := func(name, v1, v2 string) {
		if err == nil {
			err = e.add2(name, v1, v2)
		}
	}

	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var query string
	if req.URL != nil {
		query = req.URL.RawQuery
	}
	add("QUERY_STRING", query)
	add("REQUEST_METHOD", method)
	add("CONTENT_TYPE", req.Header.Get("Content-Type"))
	switch {
	case bodyLen >= 0:
		var lb [20]byte
		add("CONTENT_LENGTH", string(strconv.AppendInt(lb[:0], bodyLen, 10)))
	case len(req.Header["Content-Length"]) > 0 || len(req.TransferEncoding) > 0:
		// An empty body the request framed ("Content-Length: 0", which
		// browsers send with a POST that has no body, or an empty
		// chunked one): "0", as nginx's $content_length is then.
		add("CONTENT_LENGTH", "0")
	default:
		add("CONTENT_LENGTH", "")
	}
	add("SCRIPT_NAME", s.ScriptName)
	switch {
	case s.RequestURI != "":
		add("REQUEST_URI", s.RequestURI)
	case req.RequestURI != "":
		add("REQUEST_URI", req.RequestURI)
	case req.URL != nil:
		add("REQUEST_URI", req.URL.RequestURI())
	default:
		add("REQUEST_URI", "/")
	}
	if s.DocumentURI != "" {
		add("DOCUMENT_URI", s.DocumentURI)
	} else {
		add2("DOCUMENT_URI", s.ScriptName, s.PathInfo)
	}
	docRoot := s.DocumentRoot
	if len(docRoot) > 1 {
		docRoot = strings.TrimRight(docRoot, "/")
		if docRoot == "" {
			docRoot = "/"
		}
	}
	add("DOCUMENT_ROOT", docRoot)
	proto := req.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	add("SERVER_PROTOCOL", proto)
	if s.HTTPS {
		add("REQUEST_SCHEME", "https")
		add("HTTPS", "on")
	} else {
		add("REQUEST_SCHEME", "http")
	}
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_SOFTWARE", ServerSoftware)

	remote := s.RemoteAddr
	if remote == "" {
		remote = req.RemoteAddr
	}
	rhost, rport := splitHostPortLoose(remote)
	add("REMOTE_ADDR", rhost)
	add("REMOTE_PORT", rport)
	if s.RemoteUser != "" {
		// Only a user the gateway checked: nginx's $remote_user is the
		// name in any Authorization header, checked or not.
		add("REMOTE_USER", s.RemoteUser)
	}

	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	serverName, hostPort := splitHostPortLoose(host)
	var serverAddr, serverPort string
	if la, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
		switch a := la.(type) {
		case *net.TCPAddr:
			serverAddr = a.IP.String()
			serverPort = strconv.Itoa(a.Port)
		default:
			serverAddr, serverPort = splitHostPortLoose(la.String())
		}
	}
	if serverPort == "" {
		switch {
		case hostPort != "":
			serverPort = hostPort
		case s.HTTPS:
			serverPort = "443"
		default:
			serverPort = "80"
		}
	}
	if s.ServerName != "" {
		serverName = s.ServerName
	}
	if serverName == "" {
		// No Host (HTTP/1.0) and no configured name to fall back on as
		// nginx does: name the address the client reached.
		serverName = serverAddr
	}
	if strings.Contains(serverName, ":") && !strings.HasPrefix(serverName, "[") {
		// RFC 3875 4.1.14: an IPv6 literal keeps its brackets, so that
		// scripts can put SERVER_NAME in a URL (Apache and nginx's $host
		// do the same).
		serverName = "[" + serverName + "]"
	}
	add("SERVER_ADDR", serverAddr)
	add("SERVER_PORT", serverPort)
	add("SERVER_NAME", serverName)
	add("REDIRECT_STATUS", "200")

	r1, r2 := joinPath(docRoot, s.ScriptName)
	add2("SCRIPT_FILENAME", r1, r2)
	if s.PathInfo != "" {
		add("PATH_INFO", s.PathInfo)
		p1, p2 := joinPath(docRoot, s.PathInfo)
		add2("PATH_TRANSLATED", p1, p2)
	}
	if err != nil {
		return err
	}

	if host != "" {
		if err := e.addHeader("Host", []string{host}, ""); err != nil {
			return err
		}
	}
	connNamed := connectionNamed(req.Header)
	for name, values := range req.Header {
		if len(values) == 0 || !forwardableHeader(name) || hopByHop(name, connNamed) ||
			(!s.ForwardedTrusted && proxyheader.Forwarding(name)) || proxyheader.SendfileControl(name) || proxyheader.URLOverride(name) {
			continue
		}
		sep := ", "
		if strings.EqualFold(name, "Cookie") {
			sep = "; "
		}
		if err := e.addHeader(name, values, sep); err != nil {
			return err
		}
	}

	for _, p := range s.Extra {
		if p.Name == "" || reservedParam(p.Name) {
			if dropped != nil {
				dropped(p.Name)
			}
			continue
		}
		if err := e.add(p.Name, p.Value); err != nil {
			return err
		}
	}
	return nil
}
