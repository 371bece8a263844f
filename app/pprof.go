package app

import (
	"net/http"
	"net/http/pprof"

	"github.com/sessiongate/sessiongate/server"
)

// pprofOptions serves Go's profiler on the admin listener
// (SESSIONGATE_ADMIN_PPROF): CPU and allocation profiles of a gateway under
// real load are what tell where a request's time goes. Importing
// net/http/pprof also registers on http.DefaultServeMux, which the gateway
// never serves.
func pprofOptions() []server.Option {
	return []server.Option{
		server.WithAdminHandler("GET /debug/pprof/", http.HandlerFunc(pprof.Index)),
		server.WithAdminHandler("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline)),
		server.WithAdminHandler("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile)),
		server.WithAdminHandler("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol)),
		server.WithAdminHandler("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace)),
	}
}
