// Package connpeek tells, without blocking, whether an idle kept-alive
// connection was closed by its peer: the FastCGI pool (fcgi/) and the
// Django transport (wsgi/) both check before they reuse one. It also tells
// whether a request written on a connection the peer had already closed
// was refused unread (ClosedBeforeItRead), so that the Django transport
// may send it again whatever its method.
package connpeek
