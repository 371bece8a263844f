package sessionbridge

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/internal/logtext"
)

// manyKeys is n session keys of some 100 bytes each, as an app keying its
// session by what clients send (product slugs, form ids) has.
func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = strings.Repeat("k", 100) + strconv.Itoa(i)
	}
	return keys
}

// TestConflictWarningIsBounded: a PHP write in merge mode that overrode
// the concurrent change of 200 keys of 100 bytes each is warned of on one
// line that a log pipeline takes whole (Docker's json-file driver splits
// at 16 KiB), with how many keys it overrode and as many of their names
// as fit. The warning listed every name, a line of over 20 KiB.
func TestConflictWarningIsBounded(t *testing.T) {
	m := newTestManager(t, LockMerge, nil)
	logs := captureLog(m)
	keys := manyKeys(200)
	serialized := func(v string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "a:%d:{", len(keys))
		for _, k := range keys {
			fmt.Fprintf(&b, "s:%d:\"%s\";s:1:\"%s\";", len(k), k, v)
		}
		b.WriteString("}")
		return b.String()
	}
	stored := map[string]string{}
	for _, k := range keys {
		stored[k] = "A"
	}
	data, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	id := createSession(t, m, string(data))
	first := newFramingBridge(t, m, id, "n1")
	second := newFramingBridge(t, m, id, "n2")
	if err := first.apply(message{Op: "write", ID: id, Payload: []byte(serialized("B"))}); err != nil {
		t.Fatal(err)
	}
	if err := second.apply(message{Op: "write", ID: id, Payload: []byte(serialized("C"))}); err != nil {
		t.Fatal(err)
	}
	var warning string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "overrode concurrent changes") {
			warning = l
		}
	}
	if warning == "" {
		t.Fatalf("no conflict warning:\n%s", logs.String())
	}
	if len(warning) > logtext.MaxValue+1024 || !strings.Contains(warning, "conflicts.count=200 ") || !strings.Contains(warning, keys[0]) {
		t.Errorf("conflict warning of %d bytes, want one within %d naming the count (200) and the first keys: %.300s", len(warning), logtext.MaxValue+1024, warning)
	}
}

// TestConflictKeysInJSON: ConflictKeys written by the JSON handler, the
// gateway's default log format: the count and the names that fit.
func TestConflictKeysInJSON(t *testing.T) {
	keys := manyKeys(200)
	var line strings.Builder
	slog.New(slog.NewJSONHandler(&line, nil)).Warn("w", "conflicts", ConflictKeys(keys))
	var got struct {
		Conflicts struct {
			Count int      `json:"count"`
			Keys  []string `json:"keys"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(line.String()), &got); err != nil {
		t.Fatalf("%v: %s", err, line.String())
	}
	if line.Len() > logtext.MaxValue+200 || got.Conflicts.Count != 200 || len(got.Conflicts.Keys) == 0 || len(got.Conflicts.Keys) >= 200 || got.Conflicts.Keys[0] != keys[0] {
		t.Errorf("a line of %d bytes, count %d, %d keys: %.300s", line.Len(), got.Conflicts.Count, len(got.Conflicts.Keys), line.String())
	}
}
