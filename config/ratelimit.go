package config

import (
	"fmt"
	"strconv"
	"strings"
)

// RateLimit is one SESSIONGATE_RATE_LIMITS entry.
type RateLimit struct {
	// Path is a URL path, matched exactly, or a directory ending in "/",
	// matched as a prefix.
	Path string
	// PerSecond is the rate; Burst how many more a client may send at once.
	PerSecond float64
	Burst     int
	// Spec is the entry as written, for logs.
	Spec string
}

// RateLimits parses SESSIONGATE_RATE_LIMITS (after Load has checked it).
func (c *Config) RateLimits() []RateLimit { return parsed(c.RateLimitSpecs, parseRateLimit) }

// parseRateLimit reads "PATH RATE [burst=N]", RATE as nginx writes it:
// 10r/s or 30r/m.
func parseRateLimit(e string) (RateLimit, error) {
	f := strings.Fields(e)
	for _, w := range f[min(len(f), 2):] {
		if w == "nodelay" || strings.HasPrefix(w, "delay=") {
			return RateLimit{}, fmt.Errorf("%q: drop %s: requests over the limit are always refused at once, as with nginx's nodelay; none are queued", e, w)
		}
	}
	if len(f) < 2 || len(f) > 3 {
		return RateLimit{}, fmt.Errorf("%q: each entry is PATH RATE [burst=N], e.g. /wp-login.php 10r/m burst=5", e)
	}
	rl := RateLimit{Path: f[0], Spec: strings.Join(f, " ")}
	if !urlPrefixOK(rl.Path) {
		return RateLimit{}, fmt.Errorf(urlPrefixRule("path", "/wp-login.php or /api/"), rl.Path)
	}
	n, unit, ok := strings.Cut(f[1], "r/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 || count > 1_000_000 || (unit != "s" && unit != "m") {
		return RateLimit{}, fmt.Errorf("%q: the rate is requests per second or minute, like nginx's rate=: 10r/s or 30r/m", e)
	}
	rl.PerSecond = float64(count)
	if unit == "m" {
		rl.PerSecond /= 60
	}
	if len(f) == 3 {
		b, ok := strings.CutPrefix(f[2], "burst=")
		burst, err := strconv.Atoi(b)
		if !ok || err != nil || burst < 0 || burst > 1_000_000 {
			return RateLimit{}, fmt.Errorf("%q: the third word is burst=N, the requests a client may send at once beyond the rate", e)
		}
		rl.Burst = burst
	}
	return rl, nil
}

func (c *Config) checkRateLimits(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_RATE_LIMITS"
	seen := map[string]bool{}
	for _, e := range c.RateLimitSpecs {
		rl, err := parseRateLimit(e)
		if err != nil {
			check(name, false, "%s", err.Error())
			continue
		}
		check(name, !seen[rl.Path], "%q is listed twice", rl.Path)
		seen[rl.Path] = true
	}
}
