package fcgi

import (
	"context"
)

// Param is one FastCGI name/value pair. A slice keeps the order in which the
// pairs go on the wire, which makes captures and tests readable.
type Param struct {
	Name  string
	Value string
}

// Script is what the router decided about a request before it reaches PHP.
// The transport derives every CGI parameter from the *http.Request plus this
// value, so routing (which file runs) and the wire (how it is told) stay in
// separate packages.
type Script struct {
	// DocumentRoot is the site root as php-fpm sees it (DOCUMENT_ROOT).
	DocumentRoot string
	// ScriptName is the URL path of the script, e.g. "/index.php".
	// SCRIPT_FILENAME = DocumentRoot + ScriptName.
	ScriptName string
	// PathInfo is the part of the path after the script ("/extra"), or "".
	// PATH_TRANSLATED is only sent when it is not empty.
	PathInfo string
	// RequestURI is the original request target (path and query) as the
	// client sent it. The router captures it here because an outgoing
	// http.Request (a test's, a proxy's) carries none.
	RequestURI string
	// DocumentURI is the URI the script serves (DOCUMENT_URI), normally
	// ScriptName+PathInfo.
	DocumentURI string
	// HTTPS is true when the client reached us over TLS, directly or through
	// a trusted proxy that said so.
	HTTPS bool
	// RemoteAddr is the client address ("ip:port") after trusted-proxy
	// processing; REMOTE_ADDR and REMOTE_PORT come from it.
	RemoteAddr string
	// ServerName, when set, is SERVER_NAME: the name the site is
	// configured with, as nginx sends its server_name, rather than one
	// taken from the request's Host.
	ServerName string
	// RemoteUser, when set, is REMOTE_USER: the user SESSIONGATE_BASIC_AUTH
	// let in.
	RemoteUser string
	// ForwardedTrusted is true when the request came through a trusted
	// proxy. Only then do its Forwarded and X-Forwarded-* headers reach PHP
	// (as HTTP_X_FORWARDED_FOR, ...): a PHP app that naively believes them
	// cannot be fooled by a client that sets them itself. REMOTE_ADDR and
	// HTTPS already carry the facts, like with nginx.
	ForwardedTrusted bool
	// Extra params appended after the standard set (session bridge data,
	// PHP_VALUE). Names here win over nothing: the transport never lets an
	// Extra param replace a standard one.
	Extra []Param
	// OnStderr, when set, receives every FCGI_STDERR record php-fpm sends for
	// this request, in order with stdout, as soon as it arrives. It may be
	// called from the goroutine reading the response body. It returns the
	// part that is still worth logging (nil: nothing); a hook that frames
	// its own messages can keep a frame split across records and log the
	// text around it.
	OnStderr func(msg []byte) (logRest []byte)
	// OnEnd, when set, runs once when php-fpm's part of the response is
	// over, from whichever goroutine saw it: the whole response arrived
	// (END_REQUEST), or the connection was given up (the response cut short,
	// a timeout, the client gone). PHP can send nothing more for the
	// request, though with Options.ReadAhead the client may still be
	// downloading what arrived. It does not run when RoundTrip fails.
	OnEnd func()
	// OnHeader, when set, runs once the CGI header block has arrived and
	// before any record after it is read, on the goroutine calling
	// RoundTrip: what OnStderr received by then PHP wrote before its output
	// began, and what comes later was written after it. It does not run
	// when RoundTrip fails before the header block is complete.
	OnHeader func(HeaderInfo)
	// Marker, when set, names a response header the transport takes out
	// of PHP's header block (in any case) instead of passing it on;
	// HeaderInfo.Marked says whether it came. A check that runs on every
	// response (the session bridge's: did the prepend run?) costs no
	// allocation that way.
	Marker string
}

// HeaderInfo is what OnHeader learns of PHP's header block.
type HeaderInfo struct {
	// Status is the response's status code as PHP (or php-fpm itself)
	// gave it.
	Status int
	// Marked: the block held the Script.Marker header.
	Marked bool
	// Backend is the php-fpm address that answered, as configured.
	Backend string
}

type scriptKey struct{}

// WithScript attaches the routing decision to a request context.
func WithScript(ctx context.Context, s *Script) context.Context {
	return context.WithValue(ctx, scriptKey{}, s)
}

// ScriptFrom returns the routing decision attached by WithScript, or nil.
func ScriptFrom(ctx context.Context) *Script {
	s, _ := ctx.Value(scriptKey{}).(*Script)
	return s
}
