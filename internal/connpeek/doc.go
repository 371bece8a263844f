// Package connpeek tells whether an idle kept-alive connection was closed by
// its peer, without blocking: the FastCGI pool (fcgi/) and the Django
// transport (wsgi/) both check before they reuse one.
package connpeek
