package main

import (
	"os"
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
