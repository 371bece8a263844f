package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/ratelimit"
)

// rateRule is one SESSIONGATE_RATE_LIMITS entry: nginx's limit_req in a
// location, against password guessing on a login page and the like.
type rateRule struct {
	path    string // exact, or a directory ending in "/" (prefix)
	folded  string // path lower-cased, for foldedPath readings
	spec    string
	limiter *ratelimit.Limiter
}

// maxRateClients bounds the clients one rule tells apart (about 6 MB),
// like the size of nginx's limit_req_zone.
const maxRateClients = 100_000

// newRateRules orders the rules as nginx picks a location.
func newRateRules(ls []config.RateLimit) []rateRule {
	var out []rateRule
	for _, l := range ls {
		out = append(out, rateRule{path: l.Path, folded: foldCase(l.Path), spec: l.Spec, limiter: ratelimit.New(l.PerSecond, l.Burst, maxRateClients)})
	}
	config.SortLocations(out, func(r rateRule) string { return r.path })
	return out
}

// rateLimitedReadings is rateLimited for each of the request's query
// readings (queryReadings), in turn, dot-segment readings included.
func (s *Server) rateLimitedReadings(w http.ResponseWriter, r *http.Request, readings []string) bool {
	for _, p := range readings {
		if s.rateLimited(w, r, config.CleanPath(p)) || s.rateDotReadings(w, r, p) {
			return true
		}
	}
	return false
}

// rateDotReadings is rateLimited for a path with dot segments as apps
// that route on it without resolving them read it: from each of its
// slashes on, with the segments left in, as restrictedDotReadings reads
// it. /login/../x runs a login view that Django's re_path(r"^login/")
// or a catch-all route under /login/ picks, and counting it only as /x
// would let a client past the login page's limit. Browsers resolve dot
// segments before they send a URL, so only crafted requests are counted
// more than once (each rule counts a request once, whatever the reading).
func (s *Server) rateDotReadings(w http.ResponseWriter, r *http.Request, path string) bool {
	return config.HasRelativeSegment(path) && anyDotReading(path, s.longestFolded, func(reading, folded string) bool {
		return s.rateLimitedFolded(w, r, reading, folded)
	})
}

// rateLimited answers 429 to a request over the limit of the rule for
// path, or of the rule for its folded reading (foldedPath: WordPress
// answers /wp-json/JWT-AUTH/v1/token as /wp-json/jwt-auth/v1/token), and
// reports whether it did. A request is counted once by each rule: when a
// rule has already counted it (for its URL, or its script), another path
// of the same request (the script routing picked, the PATH_INFO after it,
// a folded reading) that falls under the same rule is not counted again.
//
// A directory's name without its slash (/api/bulk for /api/bulk/) is also
// counted by the rule nginx picks for it (/api/), whose location it is
// in: Django and Symfony route it apart from the directory.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, path string) bool {
	return s.rateLimitedFolded(w, r, path, foldedPath(path))
}

// rateLimitedFolded is rateLimited with path's folded reading given.
func (s *Server) rateLimitedFolded(w http.ResponseWriter, r *http.Request, path, folded string) bool {
	i, j := s.rateRules(path, folded)
	k := prefixLocationOf(s.rates, path, func(r *rateRule) string { return r.path })
	return s.overRate(w, r, i) || j != i && s.overRate(w, r, j) || k != i && k != j && s.overRate(w, r, k)
}

// rateRules returns the indexes in s.rates of the rule for path and of
// the rule for folded, its folded reading (foldedPath), each -1 for none.
func (s *Server) rateRules(path, folded string) (rule, foldedRule int) {
	rule = locationOf(s.rates, path, func(r *rateRule) string { return r.path })
	foldedRule = locationOf(s.rates, folded, func(r *rateRule) string { return r.folded })
	return rule, foldedRule
}

// overRate counts the request against the rule s.rates[i] (-1: none)
// unless that rule has counted it already, and answers 429 when it is
// over the limit.
func (s *Server) overRate(w http.ResponseWriter, r *http.Request, i int) bool {
	if i < 0 {
		return false
	}
	rule := &s.rates[i]
	ri := Info(r.Context())
	if slices.Contains(ri.rateCounted, rule) {
		return false
	}
	ri.rateCounted = append(ri.rateCounted, rule)
	client, err := netip.ParseAddrPort(ri.RemoteAddr)
	if err != nil {
		// Not an IP address: nothing to tell clients apart by.
		return false
	}
	ok, retry := rule.limiter.Allow(ratelimit.Key(client.Addr()), time.Now())
	if ok {
		return false
	}
	ri.Err = fmt.Errorf("over SESSIONGATE_RATE_LIMITS %s", rule.spec)
	ri.Upstream = "gateway" // nothing ran, whatever routing picked
	secs := int64((retry + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	s.fail(w, r, http.StatusTooManyRequests)
	return true
}
