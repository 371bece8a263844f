package config

import (
	"errors"
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

// maxRateLimit bounds both the rate and the burst: far beyond any client a
// limit is meant for, and it keeps the limiter's burst x interval (int64
// nanoseconds, 6e16 at 1r/m) far from overflowing.
const maxRateLimit = 1_000_000

// overLimit reports whether Atoi's n, err is a number above maxRateLimit,
// one too large for an int included, so that the message can say the
// limit rather than describe the syntax.
func overLimit(n int, err error) bool {
	return errors.Is(err, strconv.ErrRange) && n > 0 || err == nil && n > maxRateLimit
}

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
	if ok && (unit == "s" || unit == "m") && overLimit(count, err) {
		return RateLimit{}, fmt.Errorf("%q: the rate is at most %dr/%s", e, maxRateLimit, unit)
	}
	if !ok || err != nil || count < 1 || (unit != "s" && unit != "m") {
		return RateLimit{}, fmt.Errorf("%q: the rate is requests per second or minute, like nginx's rate=: 10r/s or 30r/m", e)
	}
	rl.PerSecond = float64(count)
	if unit == "m" {
		rl.PerSecond /= 60
	}
	if len(f) == 3 {
		b, ok := strings.CutPrefix(f[2], "burst=")
		burst, err := strconv.Atoi(b)
		if ok && overLimit(burst, err) {
			return RateLimit{}, fmt.Errorf("%q: the burst is at most %d", e, maxRateLimit)
		}
		if !ok || err != nil || burst < 0 {
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
