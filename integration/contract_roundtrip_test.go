package integration

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// contractSeed is the seed of the randomized contract round trips: the
// SESSIONGATE_CONTRACT_SEED environment variable (to replay a failure), or
// the time, so that every run tries other values. It is logged on failure.
func contractSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano() % 1_000_000_000
	if s := os.Getenv("SESSIONGATE_CONTRACT_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SESSIONGATE_CONTRACT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: replay with SESSIONGATE_CONTRACT_SEED=%d", seed, seed)
		}
	})
	return seed
}

// TestContractRoundTripRandom: pseudo-random values (integers near 2^53
// and at the int64 bounds, -0.0, subnormal and 17-digit floats, INF/NAN,
// strings that are not UTF-8 or hold NUL and U+2028, arrays with holes or
// odd keys, deep nesting, objects, enums, references) go PHP -> Django ->
// PHP and Django -> PHP -> Django through php-fpm, gunicorn and Redis, in
// both lock modes, and come back exactly (docs/protocol.md section 1):
//   - PHP's values are the same for PHP after Django rewrote them, after
//     Django stored them inside a value of its own (which the gateway
//     takes as Django encoded it), and after a Django login moved them to
//     a new ID; also for a script that reads the session in PHP's own
//     "php" format;
//   - Django's values are the same for Django after a PHP write (one that
//     regenerates the ID too) and a login, and so is all of each array but
//     the key a PHP write added inside it, and PHP's copy of each is PHP's model of it (integer keys,
//     lists, integers beyond int64 as floats), also after Django writes
//     all it was given.
//
// Before the enum fix, a case in two keys (PHP's value and Django's copy)
// made the session one opaque member and the login a 500.
func TestContractRoundTripRandom(t *testing.T) {
	t.Parallel()
	const batches, n = 3, 60
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			seed := contractSeed(t)
			s, g := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK="+mode)
			gw := s.gws[0]
			ns := strconv.Itoa(n)
			for b := range int64(batches) {
				seedS := strconv.FormatInt(seed+b, 10)
				q := "seed=" + seedS + "&n=" + ns
				if b == 1 {
					// PHP's own "php" session format, which legacy
					// scripts set (the prepend converts).
					q += "&handler=php"
				}

				// PHP -> Django -> PHP.
				ck := s.newSession(t)
				j := jar{"sessionid": ck}
				if res, body, _ := gw.get(t, "/contract_rt.php?op=gen&"+q, ck); res.StatusCode != 200 || body != "ok" {
					t.Fatalf("seed %s: PHP gen: %d %.500s", seedS, res.StatusCode, body)
				}
				if _, body, _ := gw.get(t, "/contract_rt.php?op=check&"+q, ck); body != "same" {
					t.Fatalf("seed %s: PHP alone:\n%s", seedS, body)
				}
				if res, body := call(t, gw, j, "GET", "/accounts/api/contract-wrap/?n="+ns, ""); res.StatusCode != 200 {
					t.Fatalf("seed %s: Django wrap: %d %.300s\n%s", seedS, res.StatusCode, body, gw.Logs.String())
				}
				if _, body, _ := gw.get(t, "/contract_rt.php?op=check&"+q, j["sessionid"]); body != "same" {
					t.Errorf("seed %s: PHP's values after Django's write:\n%s", seedS, body)
				}
				// A login moves the data to a new ID (cycle_key).
				if res, body := call(t, gw, j, "GET", "/accounts/api/login-as/?u=contract", ""); res.StatusCode != 200 || j["sessionid"] == ck {
					t.Fatalf("seed %s: Django login: %d %.300s", seedS, res.StatusCode, body)
				}
				if _, body, _ := gw.get(t, "/contract_rt.php?op=check&"+q, j["sessionid"]); body != "same" {
					t.Errorf("seed %s: PHP's values after Django's login:\n%s", seedS, body)
				}

				// Django -> PHP -> Django.
				j = jar{"sessionid": s.newSession(t)}
				if res, body := call(t, gw, j, "GET", "/accounts/api/contract-gen/?"+q, ""); res.StatusCode != 200 {
					t.Fatalf("seed %s: Django gen: %d %.300s\n%s\n%s", seedS, res.StatusCode, body, gw.Logs.String(), g.Log())
				}
				copyQ, checkQ := q, q
				switch b {
				case 0: // PHP changes something inside each of Django's arrays
					copyQ += "&poke=1"
					checkQ += "&poked=1"
				case 2:
					copyQ += "&regen=1" // PHP moves the session to a new ID
				}
				res, body, set := gw.get(t, "/contract_rt.php?op=copy&"+copyQ, j["sessionid"])
				if res.StatusCode != 200 || body != "ok "+ns || (b == 2) != (set != "") {
					t.Fatalf("seed %s: PHP copy: %d %.500s, cookie %q", seedS, res.StatusCode, body, set)
				}
				if set != "" {
					j["sessionid"] = set
				}
				before := j["sessionid"]
				if res, body := call(t, gw, j, "GET", "/accounts/api/login-as/?u=contract", ""); res.StatusCode != 200 || j["sessionid"] == before {
					t.Fatalf("seed %s: Django login: %d %.300s", seedS, res.StatusCode, body)
				}
				if _, body := call(t, gw, j, "GET", "/accounts/api/contract-check/?write=1&"+checkQ, ""); body != "same" {
					t.Errorf("seed %s: Django's values after PHP's write:\n%s", seedS, body)
				}
				if _, body := call(t, gw, j, "GET", "/accounts/api/contract-check/?"+checkQ, ""); body != "same" {
					t.Errorf("seed %s: Django's values after its own write:\n%s", seedS, body)
				}
				if _, body, _ := gw.get(t, "/contract_rt.php?op=verify&"+q, j["sessionid"]); body != "same" {
					t.Errorf("seed %s: PHP's copies after Django's write:\n%s", seedS, body)
				}
			}
		})
	}
}
