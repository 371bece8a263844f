package config

import (
	"slices"
	"strings"
	"testing"
)

func TestDjangoBothOrNeither(t *testing.T) {
	for _, c := range []struct {
		env  []string
		bad  string
		want string
	}{
		{[]string{"SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000"}, "SESSIONGATE_DJANGO_PATHS", "set both or neither"},
		{[]string{"SESSIONGATE_DJANGO_PATHS=/admin/"}, "SESSIONGATE_DJANGO_URL", "set both or neither"},
	} {
		_, err := Load(append(base(t), c.env...))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{c.bad}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v", c.env, err)
		}
	}
	c, err := Load(base(t))
	if err != nil || c.Django.Enabled() {
		t.Fatalf("no Django by default: %v %+v", err, c.Django)
	}
}

func TestDjangoBadValues(t *testing.T) {
	for _, c := range []struct {
		name, value, want string
	}{
		{"SESSIONGATE_DJANGO_URL", "https://127.0.0.1:8000", "is not http://host:port"},
		{"SESSIONGATE_DJANGO_URL", "http://127.0.0.1", "needs a host and a port"},
		{"SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8000/app", "is not http://host:port"},
		{"SESSIONGATE_DJANGO_URL", "http://u:p@127.0.0.1:8000", "is not http://host:port"},
		{"SESSIONGATE_DJANGO_URL", "127.0.0.1:8000", "is not http://host:port"},
		{"SESSIONGATE_DJANGO_URL", "unix:run/g.sock", "absolute path"},
		{"SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8000,http://127.0.0.1:8000", "listed twice"},
		{"SESSIONGATE_DJANGO_PATHS", "admin/", "starting with /"},
		{"SESSIONGATE_DJANGO_PATHS", "/admin/../x", "no query"},
		{"SESSIONGATE_DJANGO_PATHS", "/a%2f/", "no query"},
		{"SESSIONGATE_DJANGO_PATHS", "/", "whole site"},
		{"SESSIONGATE_DJANGO_PATHS", "/admin/,/admin/", "listed twice"},
		{"SESSIONGATE_DJANGO_PATHS", "/admin/,,/x/", "empty"},
		// Request paths have // merged before matching: such a prefix
		// could never match anything.
		{"SESSIONGATE_DJANGO_PATHS", "/admin//", "no query"},
		{"SESSIONGATE_DJANGO_PATHS", "//admin/", "no query"},
		{"SESSIONGATE_DJANGO_TIMEOUT", "0", "must be more than 0"},
		{"SESSIONGATE_DJANGO_DIAL_TIMEOUT", "-1s", "must be more than 0"},
		{"SESSIONGATE_DJANGO_DIAL_TIMEOUT", "0s", "must be more than 0"},
	} {
		env := append(base(t), "SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000", "SESSIONGATE_DJANGO_PATHS=/admin/")
		env = append(env, c.name+"="+c.value)
		_, err := Load(env)
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{c.name}) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: got %v", c.name, c.value, err)
		}
	}
}

// A refused Django URL is echoed, but never the password it carries.
func TestDjangoURLCredentialsNotEchoed(t *testing.T) {
	for _, v := range []string{
		"http://user:hunter2@127.0.0.1:8000",
		"http://127.0.0.1:8001, http://user:hunter2@127.0.0.1:8000",
		"http://hunter2@127.0.0.1:8000",
		"http://user:hunter2/x@127.0.0.1:8000",
		// Characters that end a quoted value in the messages (a space,
		// quotes) may be in a password too.
		"http://user:hun ter2@127.0.0.1:8000",
		`http://user:hun"ter2@127.0.0.1:8000`,
		"http://user:hun'ter2@127.0.0.1:8000",
		"http://user:hun\tter2@127.0.0.1:8000",
	} {
		_, err := Load(append(base(t), "SESSIONGATE_DJANGO_URL="+v, "SESSIONGATE_DJANGO_PATHS=/admin/"))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_DJANGO_URL"}) {
			t.Errorf("%s: got %v", v, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, "ter2@") {
			t.Errorf("%s: password echoed:\n%v", v, err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:8000") {
			t.Errorf("%s: the rest of the value should still be shown:\n%v", v, err)
		}
	}
}

// An internal directory answers clients 404 before Django's mounts are
// looked at (server.front), and an X-Accel-Redirect into it sends a file,
// never a Django page: a SESSIONGATE_DJANGO_PATHS prefix inside one could
// never be reached. It loaded; it is refused like an internal directory
// that holds the front controller, also when the prefix is written
// without its slash. An internal directory inside a Django
// prefix (Django's /media/, files sent from /media/private/) still loads.
func TestDjangoPathInsideInternalPath(t *testing.T) {
	django := []string{"SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000"}
	for _, c := range []struct{ internal, paths string }{
		{"/private/", "/private/"},
		{"/private", "/private/docs/"},
		{"/private/", "/admin/,/private/reports"},
		{"/admin/", "/admin"}, // /admin covers /admin/... too
	} {
		_, err := Load(append(base(t), append(django, "SESSIONGATE_INTERNAL_PATHS="+c.internal, "SESSIONGATE_DJANGO_PATHS="+c.paths)...))
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{"SESSIONGATE_INTERNAL_PATHS"}) || !strings.Contains(err.Error(), "SESSIONGATE_DJANGO_PATHS") {
			t.Errorf("internal %s, Django %s: got %v, want SESSIONGATE_INTERNAL_PATHS refused", c.internal, c.paths, err)
		}
	}
	for _, c := range []struct{ internal, paths string }{
		{"/media/private/", "/media/"},
		{"/private/", "/privately/,/priv"},
		{"/private/", "/admin/"},
	} {
		if _, err := Load(append(base(t), append(django, "SESSIONGATE_INTERNAL_PATHS="+c.internal, "SESSIONGATE_DJANGO_PATHS="+c.paths)...)); err != nil {
			t.Errorf("internal %s, Django %s: %v", c.internal, c.paths, err)
		}
	}
}

// One backend written two ways is still listed twice: it would be
// balanced as two, with twice the connections (and share of the load) the
// operator meant it to have.
func TestBackendListedTwiceSpeltTwoWays(t *testing.T) {
	for _, c := range []struct {
		name, value string
	}{
		{"SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8000,http://127.0.0.1:8000/"},
		{"SESSIONGATE_DJANGO_URL", "http://gunicorn:8000,http://GUNICORN:8000"},
		{"SESSIONGATE_DJANGO_URL", "http://[::1]:8000,http://[0:0::1]:8000"},
		{"SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8000,http://127.0.0.1:08000"},
		{"SESSIONGATE_DJANGO_URL", "unix:/run/g.sock,unix:/run//g.sock"},
		{"SESSIONGATE_PHP_FPM", "fpm:9000,FPM:9000"},
		{"SESSIONGATE_PHP_FPM", "[::ffff:10.0.0.1]:9000,10.0.0.1:9000"},
		{"SESSIONGATE_PHP_FPM", "10.0.0.1:9000,10.0.0.1:09000"},
		{"SESSIONGATE_PHP_FPM", "unix:/run/php/fpm.sock,unix:/run/php/./fpm.sock"},
	} {
		env := append(base(t), "SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000", "SESSIONGATE_DJANGO_PATHS=/admin/")
		env = append(env, c.name+"="+c.value)
		_, err := Load(env)
		e, ok := err.(*Error)
		if !ok || !slices.Equal(e.Vars(), []string{c.name}) || !strings.Contains(err.Error(), "listed twice") {
			t.Errorf("%s=%s: got %v", c.name, c.value, err)
		}
	}
	// Different backends stay different.
	env := append(base(t), "SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000,http://127.0.0.1:8001,unix:/run/g.sock", "SESSIONGATE_DJANGO_PATHS=/admin/",
		"SESSIONGATE_PHP_FPM=127.0.0.1:9000,127.0.0.2:9000,fpm:9000,unix:/run/php/fpm.sock")
	if _, err := Load(env); err != nil {
		t.Errorf("distinct backends: %v", err)
	}
}

// A backend address that is the gateway's own public listener sends every
// request back to the gateway: a Django request went round until the
// process ran out of connections (one request became about 10,000 in 2 s,
// then 502), and php-fpm's would be answered by an HTTP server. Refused at
// start, naming the variable.
func TestBackendIsTheGatewayItself(t *testing.T) {
	for _, c := range []struct {
		listen, name, value string
		self                bool
	}{
		{"127.0.0.1:8000", "SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8000", true},
		{":8000", "SESSIONGATE_DJANGO_URL", "http://localhost:8000/", true},
		{"0.0.0.0:8000", "SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8001,http://[::1]:8000", true},
		{"localhost:8000", "SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8000", true},
		{":9000", "SESSIONGATE_PHP_FPM", "127.0.0.1:9000", true},
		{":8000", "SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8001", false},
		{":8000", "SESSIONGATE_DJANGO_URL", "http://192.0.2.10:8000", false},
		{"127.0.0.1:8000", "SESSIONGATE_DJANGO_URL", "http://127.0.0.2:8000", false},
		{"127.0.0.1:9000", "SESSIONGATE_PHP_FPM", "192.0.2.10:9000", false},
		// The admin listener answers /healthz, not Django's or PHP's pages.
		{"127.0.0.1:8080", "SESSIONGATE_DJANGO_URL", "http://127.0.0.1:8081", true},
		{"127.0.0.1:8080", "SESSIONGATE_PHP_FPM", "localhost:8081", true},
	} {
		env := append(base(t), "SESSIONGATE_LISTEN="+c.listen, "SESSIONGATE_ADMIN_LISTEN=127.0.0.1:8081", "SESSIONGATE_DJANGO_URL=http://127.0.0.1:8001", "SESSIONGATE_DJANGO_PATHS=/admin/")
		env = append(env, c.name+"="+c.value)
		_, err := Load(env)
		e, ok := err.(*Error)
		switch {
		case c.self && (!ok || !slices.Equal(e.Vars(), []string{c.name}) || !strings.Contains(err.Error(), "LISTEN, the gateway itself")):
			t.Errorf("LISTEN=%s %s=%s: got %v, want it refused as the gateway itself", c.listen, c.name, c.value, err)
		case !c.self && err != nil:
			t.Errorf("LISTEN=%s %s=%s: %v", c.listen, c.name, c.value, err)
		}
	}
}
