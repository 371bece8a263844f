// Package proxyheader holds the header rules the PHP (fcgi) and Django
// (wsgi) paths share, so that both upstreams see and return the same thing
// for the same request, as they did behind nginx.
package proxyheader

import "strings"

// Forwarding reports the headers a proxy sets to describe the client:
// Forwarded, the whole X-Forwarded-* family and X-Real-IP, in any case.
// Not only -For, -Host and -Proto: frameworks that trust their proxy also
// read -Port and -Prefix (Symfony, Laravel, Django's USE_X_FORWARDED_PORT)
// or -Ssl and build URLs from them, so a client's own copy is an open
// redirect unless a trusted proxy sent it. X-Real-IP is the client
// address nginx configurations set (proxy_set_header X-Real-IP
// $remote_addr), which apps that lived behind them take as proven
// (django-ipware, WordPress security plugins, rate limiters): a client's
// own copy would choose the address they ban or let in.
func Forwarding(name string) bool {
	const prefix = "X-Forwarded-"
	return strings.EqualFold(name, "Forwarded") || strings.EqualFold(name, "X-Real-Ip") ||
		len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
}

// SendfileControl reports the request headers with which the server in
// front tells an app how to hand it a file (Rack::Sendfile's convention,
// which Symfony's and Laravel's BinaryFileResponse follow): X-Sendfile-Type
// names the response header to use, X-Accel-Mapping the internal URL of a
// directory. An app that trusts them takes them from the server: nginx
// configurations set them with fastcgi_param, which hides the client's own,
// and behind the gateway they come from the php-fpm pool (env[]). A
// client's copy never reaches an app: "X-Sendfile-Type: X-Sendfile" would
// have the file's path on disk sent back to it, and its own mapping could
// point the redirect at another internal directory.
func SendfileControl(name string) bool {
	return strings.EqualFold(name, "X-Sendfile-Type") || strings.EqualFold(name, "X-Accel-Mapping")
}

// URLOverride reports the request headers with which IIS's rewrite modules
// hand an app the URL the client asked for: X-Original-Url (Microsoft's URL
// Rewrite) and X-Rewrite-Url (ISAPI_Rewrite). Yii 2 (and Symfony and Zend
// Framework releases before CVE-2018-14773) take the URL from them before
// REQUEST_URI, so a client's own copy would route a URL the gateway's
// access rules let in (/blog/x) to one they keep out (X-Rewrite-Url:
// /admin/users). No server in front of the
// gateway sets them: a client's copy never reaches an app.
func URLOverride(name string) bool {
	return strings.EqualFold(name, "X-Original-Url") || strings.EqualFold(name, "X-Rewrite-Url")
}

// AccelRedirect is the response header with which an app asks the server in
// front to send a file in place of its body. The transports pass it on in
// the response headers, and the server acts on it (server/accel.go), so
// that it never reaches a client.
const AccelRedirect = "X-Accel-Redirect"

// NginxControl reports the response headers (canonical names) an app sends
// to instruct nginx, which nginx acts on and hides from the client by
// default (fastcgi_hide_header, proxy_hide_header): X-Accel-Redirect names
// an internal path (see AccelRedirect), the others tune nginx's buffering
// and caching, which the gateway does its own way.
func NginxControl(name string) bool {
	switch name {
	case "X-Accel-Redirect", "X-Accel-Expires", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset":
		return true
	}
	return false
}
