//go:build tools

// Package tools pins dependencies that packages adopt one by one, so that
// parallel work does not race on go.mod.
package tools

import (
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/caarlos0/env/v11"
	_ "github.com/gorilla/securecookie"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
)
