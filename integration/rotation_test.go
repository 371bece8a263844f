package integration

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// rotationNewKey is the key rotated in; sessionTestKey is the old one.
const rotationNewKey = "integration-rotated-key-fedcba9876543210fedcba"

// rotationState is one moment of a rolling key rotation: what each of two
// gateways behind one load balancer and the Django app have in their
// SESSIONGATE_SESSION_KEYS at that moment.
type rotationState struct {
	name   string
	gws    [2]string
	django string
	// retire: cookies signed with this key are no longer expected to work
	// (the README says to drop the old key only once they have expired).
	retire string
}

// TestKeyRotationRollingUpgrade walks two gateways and Django through the
// key rotation the README documents ("Sessions", rotation), one process at a
// time as a rolling upgrade does, with Django lagging behind the gateways
// and running ahead of them. At every moment every user logged in so far
// must stay logged in on every gateway, for PHP and Django alike, and a
// login through any gateway must be seen through the other.
func TestKeyRotationRollingUpgrade(t *testing.T) {
	t.Parallel()
	site := startDjangoSite(t)

	// One Django (gunicorn) per key list: a restart with the new list.
	djangos := map[string]*harness.Gunicorn{}
	django := func(keys string) *harness.Gunicorn {
		if g := djangos[keys]; g != nil {
			return g
		}
		g := harness.StartGunicorn(t, harness.GunicornOptions{
			Dir: site.project, App: "sgdemo.wsgi:application", Workers: 1, Threads: 4,
			Env: append([]string{"SESSIONGATE_SESSION_KEYS=" + keys}, site.env...),
		})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("gunicorn (keys %s) log:\n%s", keys, g.Log())
			}
		})
		djangos[keys] = g
		return g
	}
	var stops []func()
	stopGateways := func() {
		for _, stop := range stops {
			stop()
		}
		stops = nil
	}
	t.Cleanup(stopGateways)
	gateway := func(keys string, dj *harness.Gunicorn) *sessionGW {
		cfg, err := config.Load(site.gatewayEnv(keys, dj.URL(), "SESSIONGATE_PHP_MAX_CONNS=2"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.Build(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(a.Server.Handler())
		// Stopped when the next state replaces it, as in a rolling
		// upgrade: its kept-alive connections pin php-fpm workers.
		stops = append(stops, func() { ts.Close(); a.Close() })
		return &sessionGW{URL: ts.URL}
	}

	old, nw := sessionTestKey, rotationNewKey
	both, newFirst := old+","+nw, nw+","+old
	// README "Sessions": add the new key after the old one everywhere,
	// then put it first everywhere, then drop the old one once cookies
	// signed with it have expired.
	states := []rotationState{
		{name: "before", gws: [2]string{old, old}, django: old},
		{name: "step 1: one gateway has the new key", gws: [2]string{both, old}, django: old},
		{name: "step 1: both gateways, Django lagging", gws: [2]string{both, both}, django: old},
		{name: "step 1: done", gws: [2]string{both, both}, django: both},
		{name: "step 2: one gateway signs with the new key", gws: [2]string{newFirst, both}, django: both},
		{name: "step 2: Django ahead", gws: [2]string{newFirst, both}, django: newFirst},
		{name: "step 2: done", gws: [2]string{newFirst, newFirst}, django: newFirst},
		{name: "step 3: one gateway dropped the old key", gws: [2]string{nw, newFirst}, django: newFirst, retire: old},
		{name: "step 3: Django dropped it too", gws: [2]string{nw, newFirst}, django: nw, retire: old},
		{name: "step 3: done", gws: [2]string{nw, nw}, django: nw, retire: old},
	}

	type login struct {
		j      jar
		signer string // the first key of the gateway that set the cookie
		at     string
	}
	var logins []login
	for _, st := range states {
		stopGateways()
		dj := django(st.django)
		gws := [2]*sessionGW{gateway(st.gws[0], dj), gateway(st.gws[1], dj)}
		loggedIn := func(l login) {
			t.Helper()
			for i, gw := range gws {
				if _, body, _ := gw.get(t, "/whoami.php", l.j["sessionid"]); body != "user:"+site.userID {
					t.Fatalf("%s: user logged in at %q is %q in PHP through gateway %d (keys %d)", st.name, l.at, body, i, strings.Count(st.gws[i], ",")+1)
				}
				if _, body := call(t, gw, l.j, "GET", "/accounts/whoami/", ""); !strings.Contains(strings.ReplaceAll(body, " ", ""), `"user":"demo"`) {
					t.Fatalf("%s: user logged in at %q is %s in Django through gateway %d", st.name, l.at, body, i)
				}
			}
		}
		kept := logins[:0]
		for _, l := range logins {
			if l.signer != st.retire {
				kept = append(kept, l)
			}
		}
		logins = kept
		for _, l := range logins {
			loggedIn(l)
		}
		for i, gw := range gws {
			j := jar{}
			adminLogin(t, gw, j)
			l := login{j: j, signer: strings.Split(st.gws[i], ",")[0], at: st.name + ", gateway " + strconv.Itoa(i)}
			loggedIn(l)
			logins = append(logins, l)
		}
	}
}
