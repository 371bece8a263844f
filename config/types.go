package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a size in bytes written like nginx sizes: a plain number, or a
// number followed by k, m or g (powers of 1024, either case).
type ByteSize int64

// String formats the size with the largest exact unit ("1m", "512k", "7").
func (b ByteSize) String() string {
	n := int64(b)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"g", 30}, {"m", 20}, {"k", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// The messages below never contain the value: parse adds it for variables
// that are not secret.
var (
	errByteSize = errors.New("not a size: use a number with an optional unit k, m or g (e.g. 512k, 1m, 2g)")
	// errByteSizeTooLarge: 8 EiB and more do not fit in a byte count.
	errByteSizeTooLarge = errors.New("too large: a size must stay below 8589934592g (8 EiB)")
	errDuration         = errors.New("not a duration: use a number with a unit (e.g. 500ms, 60s, 2m) or 0")
	errNegative         = errors.New("must not be negative")
	errInt              = errors.New("not an integer")
	errBool             = errors.New("must be on or off (or true/false, yes/no, 1/0)")
	errEmptyEnt         = errors.New("has an empty entry in its comma-separated list")
	errPrefix           = errors.New("each entry must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8")
	errMappedPrefix     = errors.New("an IPv4-mapped CIDR needs /96 or more (::ffff:10.0.0.0/104 is 10.0.0.0/8); write the IPv4 CIDR")
)

func parseByteSize(s string) (any, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errByteSize
	}
	shift := uint(0)
	switch s[len(s)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	}
	if shift > 0 {
		s = s[:len(s)-1]
	}
	// Digits only: no sign, no spaces, no 0x.
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return nil, errByteSize
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		// Digits only, so the number is too big: say that, not "not a size".
		return nil, errByteSizeTooLarge
	}
	return ByteSize(n << shift), nil
}

// durationRange is what a duration variable that refuses 0 accepts. Its
// parse errors say it as its range check does (durationMessage), so one
// correction is enough: "or 0" for such a variable led to a second error.
type durationRange struct {
	ok   func(time.Duration) bool
	text string // what the value must be
	why  string // after the range, in the messages for a value out of it
}

func positive(d time.Duration) bool      { return d > 0 }
func atLeastSecond(d time.Duration) bool { return d >= time.Second }

// A check waits up to 2 s for its answer; one every few milliseconds is a
// typo (ms for s), not a wish.
func checkIntervalOK(d time.Duration) bool { return d == 0 || d >= time.Second }

var durationRanges = map[string]durationRange{
	"SESSIONGATE_PHP_DIAL_TIMEOUT":     {positive, "more than 0", ""},
	"SESSIONGATE_READ_HEADER_TIMEOUT":  {positive, "more than 0", ": without it a client can hold a connection open forever by sending headers slowly"},
	"SESSIONGATE_SESSION_IDLE_TIMEOUT": {atLeastSecond, "at least 1s", ""},
	"SESSIONGATE_SESSION_MAX_AGE":      {atLeastSecond, "at least 1s", ""},
	"SESSIONGATE_SESSION_LOCK_TIMEOUT": {positive, "more than 0", ""},
	"SESSIONGATE_SESSION_LOCK_LEASE":   {atLeastSecond, "at least 1s", ""},
	// A request that needs the session waits this long for Redis; beyond
	// a minute it is a typo (and the start-up probe's 5x would overflow).
	"SESSIONGATE_REDIS_TIMEOUT":         {func(d time.Duration) bool { return d > 0 && d <= time.Minute }, "more than 0 and at most 1m", ""},
	"SESSIONGATE_DJANGO_TIMEOUT":        {positive, "more than 0", ""},
	"SESSIONGATE_DJANGO_DIAL_TIMEOUT":   {positive, "more than 0", ""},
	"SESSIONGATE_PHP_CHECK_INTERVAL":    {checkIntervalOK, "at least 1s, or 0 (off)", ""},
	"SESSIONGATE_DJANGO_CHECK_INTERVAL": {checkIntervalOK, "at least 1s, or 0 (off)", ""},
}

// durationMessage is the message for err, the parse error of variable
// name: for a variable with a range, one that names it.
func durationMessage(name string, err error) string {
	r, ok := durationRanges[name]
	switch {
	case !ok:
		return err.Error()
	case errors.Is(err, errNegative):
		return "must be " + r.text + r.why
	case errors.As(err, new(durationInDays)):
		return err.Error()
	case errors.Is(err, errDuration):
		return "not a duration: use a number with a unit (e.g. 500ms, 60s, 2m), " + r.text
	}
	return err.Error()
}

// checkDuration checks a variable of durationRanges.
func checkDuration(check func(name string, ok bool, format string, args ...any), name string, d time.Duration) {
	r := durationRanges[name]
	check(name, r.ok(d), "must be %s%s", r.text, r.why)
}

// durationInDays is the parse error of a value written in days (30d, as
// nginx's expires writes it), which Go's durations cannot say: it names the
// hours meant, so that one correction is enough.
type durationInDays struct{ days int64 }

func (e durationInDays) Error() string {
	return fmt.Sprintf("not a duration: there is no d unit: write %dh for %dd", e.days*24, e.days)
}

// Is lets the range messages of durationMessage treat it as errDuration.
func (e durationInDays) Is(target error) bool { return target == errDuration }

// maxDays is the most days a time.Duration holds.
const maxDays = int64(math.MaxInt64 / int64(24*time.Hour))

func parseDuration(s string) (any, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && strings.TrimLeft(n, "0123456789") == "" {
			if days, err := strconv.ParseInt(n, 10, 64); err == nil && days >= 1 && days <= maxDays {
				return nil, durationInDays{days}
			}
		}
		return nil, errDuration
	}
	if d < 0 {
		return nil, errNegative
	}
	return d, nil
}

func parseInt(s string) (any, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return nil, errInt
	}
	return n, nil
}

func parseBool(s string) (any, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return nil, errBool
}

// splitList splits a comma-separated value, trimming spaces around entries.
func splitList(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			return nil, errEmptyEnt
		}
	}
	return parts, nil
}

// parsed returns the entries of a list variable that parse, for the
// accessors Load's checks stand behind (an entry that does not parse has
// already stopped the start with its message).
func parsed[T any](specs []string, parse func(string) (T, error)) []T {
	var out []T
	for _, e := range specs {
		if v, err := parse(e); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func parseStrings(s string) (any, error) {
	return splitList(s)
}

// Lines is a list written one entry per line (a YAML block, $'...\n...'),
// for entries that hold commas themselves. Blank lines and the spaces
// around entries are dropped; a CR before a newline too.
type Lines []string

func parseLines(s string) (any, error) {
	var out Lines
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}

func parsePrefixes(s string) (any, error) {
	parts, err := splitList(s)
	if err != nil {
		return nil, err
	}
	out := make(Prefixes, 0, len(parts))
	for _, p := range parts {
		if strings.Contains(p, "/") {
			pf, err := parseCIDR(p)
			if err != nil {
				return nil, err
			}
			out = append(out, pf.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil || a.Zone() != "" {
			return nil, errPrefix
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseCIDR reads one CIDR, an IPv4-mapped one as IPv4, host bits kept.
func parseCIDR(p string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(p)
	if err != nil {
		return netip.Prefix{}, errPrefix
	}
	if pf.Addr().Is4In6() {
		// Shorter than /96, an IPv4-mapped CIDR also covers
		// addresses that are not IPv4: taken as IPv4 it became
		// 0.0.0.0/0 (::ffff:10.0.0.0/8 trusted every IPv4
		// client), so it is refused.
		if pf.Bits() < 96 {
			return netip.Prefix{}, errMappedPrefix
		}
		pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-96)
	}
	return pf, nil
}

// hostBitsWarnings names the CIDRs among entries (IPs or CIDRs, as
// written) that have host bits set, with the network they are taken as:
// 10.0.0.5/24, the proxy's address as `ip addr` shows it, covers all of
// 10.0.0.0/24, which nginx warns about too ("low address bits ... are
// meaningless").
func hostBitsWarnings(name string, entries []string) []string {
	var out []string
	for _, e := range entries {
		if !strings.Contains(e, "/") {
			continue
		}
		if pf, err := parseCIDR(e); err == nil && pf != pf.Masked() {
			out = append(out, fmt.Sprintf("%s: %s is taken as %s, every address of that network, since its host bits are ignored; write %s/%d for the one address",
				name, e, pf.Masked(), pf.Addr(), pf.Addr().BitLen()))
		}
	}
	return out
}

// parsers holds a parser for every non-string field type used in Config. A
// type missing here would fall back to caarlos0/env's own parser, whose
// error echoes the value; TestEveryFieldTypeHasParser guards it.
var parsers = map[reflect.Type]func(string) (any, error){
	reflect.TypeFor[ByteSize]():      parseByteSize,
	reflect.TypeFor[time.Duration](): parseDuration,
	reflect.TypeFor[int]():           parseInt,
	reflect.TypeFor[bool]():          parseBool,
	reflect.TypeFor[[]string]():      parseStrings,
	reflect.TypeFor[Prefixes]():      parsePrefixes,
	reflect.TypeFor[Lines]():         parseLines,
}
