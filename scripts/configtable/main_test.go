package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// TestREADMEUpToDate fails when a variable was added or changed in config/
// without regenerating the README table.
func TestREADMEUpToDate(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Replace(readme, Table(config.Variables()))
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(readme) {
		t.Fatal("README.md's variable table is out of date: run `go run ./scripts/configtable -w` at the repository root")
	}
}

func TestTable(t *testing.T) {
	got := Table([]config.Var{
		{Name: "SESSIONGATE_A", Required: true, Help: "a | b"},
		{Name: "SESSIONGATE_B", HasDefault: true, Default: ":8080", Help: "listen"},
		{Name: "SESSIONGATE_C", Help: "key", Secret: true},
	})
	for _, want := range []string{
		"| `SESSIONGATE_A` | **required** | a \\| b |",
		"| `SESSIONGATE_B` | `:8080` | listen |",
		"| `SESSIONGATE_C` | — | key (secret: never logged) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestReplaceNeedsMarkers(t *testing.T) {
	if _, err := Replace([]byte("no markers"), "x"); err == nil {
		t.Fatal("Replace accepted a README without markers")
	}
	got, err := Replace([]byte("a\n"+Begin+"\nold\n"+End+"\nb\n"), "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + Begin + "\nnew\n" + End + "\nb\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestDocsNameOnlyRealVariables: every SESSIONGATE_* variable the
// documentation and the deploy examples name is one the gateway reads, so a
// user who copies a name from them never sets one the gateway ignores (it
// only warns about unknown names). docs/protocol.md also names the FastCGI
// params of the session bridge, which are no variables.
func TestDocsNameOnlyRealVariables(t *testing.T) {
	known := map[string]bool{}
	for _, v := range config.Variables() {
		known[v.Name] = true
	}
	params := map[string]bool{}
	for _, p := range []string{"SESSIONGATE_NONCE", "SESSIONGATE_FRAME_KEY", "SESSIONGATE_SESSION_ID", "SESSIONGATE_DATA_COUNT", "SESSIONGATE_DATA_0", "SESSIONGATE_DATA_", "SESSIONGATE_LOGIN_REVOKED", "SESSIONGATE_FEATURES"} {
		params[p] = true
	}
	name := regexp.MustCompile(`(^|[^A-Za-z0-9_])(SESSIONGATE_[A-Z0-9_]+)`)
	files := []string{"README.md", "docs/design.md", "docs/protocol.md", "wsgi/django/README.md", "docker-compose.yml", "Dockerfile",
		"deploy/systemd/sessiongate.env", "deploy/systemd/sessiongate.service", "deploy/systemd/sessiongate.socket", "deploy/php-fpm/zz-sessiongate.conf",
		"scripts/demo.sh", "Makefile", "examples/django/README.md"}
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile("../../" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllSubmatch(b, -1) {
			n := string(m[2])
			seen++
			if !known[n] && !(f == "docs/protocol.md" && params[n]) {
				t.Errorf("%s names %s, which the gateway does not read", f, n)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no SESSIONGATE_ names found: the file list is wrong")
	}
}
