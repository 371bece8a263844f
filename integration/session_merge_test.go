package integration

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// startMergeWait runs merge_wait.php with params on gw in the background and
// returns once PHP holds the session; the request finishes after release is
// called, and its status and body come on the channel.
func startMergeWait(t *testing.T, gw *sessionGW, ck string, params url.Values) (release func(), done <-chan [2]string) {
	t.Helper()
	return startPaused(t, gw, ck, "merge_wait.php", "started", params)
}

// startPaused runs script with params on gw in the background and returns
// once the script has created the file its parameter mark names (it
// reached its pause); it goes on once release is called (the file its
// parameter go names appears), and its status and body come on the channel.
func startPaused(t *testing.T, gw *sessionGW, ck, script, mark string, params url.Values) (release func(), done <-chan [2]string) {
	t.Helper()
	dir := harness.PHPTempDir(t)
	reached, goFile := filepath.Join(dir, mark), filepath.Join(dir, "go")
	params.Set(mark, reached)
	params.Set("go", goFile)
	ch := make(chan [2]string, 1)
	go func() {
		resp, body, _ := gw.get(t, "/"+script+"?"+params.Encode(), ck)
		ch <- [2]string{strconv.Itoa(resp.StatusCode), body}
	}()
	waitForFile(t, reached, script)
	return func() { os.WriteFile(goFile, nil, 0o644) }, ch
}

// TestSessionMergeReopenKeepsOtherRequestsChanges: a script that closes its
// session and starts it again works on its own copy; its second write must
// still keep what another request stored before its first write (README:
// "Its later write keeps their changes to other keys").
func TestSessionMergeReopenKeepsOtherRequestsChanges(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	if resp, _, _ := s.gws[0].get(t, "/set.php?k=gone&v=1", ck); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	release, done := startMergeWait(t, s.gws[0], ck, url.Values{"k": {"mine"}, "v": {"1"}, "k2": {"mine2"}, "v2": {"2"}})
	// Meanwhile another request adds a key and deletes one.
	if resp, _, _ := s.gws[1].get(t, "/set.php?k=added&v=yes", ck); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if resp, _, _ := s.gws[1].get(t, "/unset.php?k=gone", ck); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	release()
	if r := <-done; r != [2]string{"200", "ok"} {
		t.Fatalf("merge_wait.php: %v", r)
	}
	var got map[string]any
	if err := json.Unmarshal(s.gws[1].dump(t, ck).Data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"user": "ana", "mine": "1", "mine2": "2", "added": "yes"}
	if len(got) != len(want) {
		t.Fatalf("session %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("session %v, want %v", got, want)
		}
	}
}

// TestSessionMergeOwnKeysLoseNothing: 32 clients through two gateways
// increment their own key of one session at the same time: every key ends
// exact, and no request fails.
func TestSessionMergeOwnKeysLoseNothing(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		o.env = append(o.env, "SESSIONGATE_SESSION_LOCK=merge")
		o.fpm.Children = 32
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		const clients, each = 32, 5
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for i := 1; i <= each; i++ {
					resp, body, _ := s.gws[c%2].get(t, "/incr.php?k=c"+strconv.Itoa(c), ck)
					if resp.StatusCode != 200 || body != strconv.Itoa(i) {
						t.Errorf("client %d increment %d: %d %q", c, i, resp.StatusCode, body)
					}
				}
			}(c)
		}
		wg.Wait()
		var got map[string]any
		if err := json.Unmarshal(s.gws[0].dump(t, ck).Data, &got); err != nil {
			t.Fatal(err)
		}
		for c := 0; c < clients; c++ {
			if v := got["c"+strconv.Itoa(c)]; v != float64(each) {
				t.Errorf("key c%d = %v, want %d", c, v, each)
			}
		}
	})
}

// TestSessionMergeLogoutRacingSlowPage: a logout (session_destroy) while a
// slow page of the same session runs; the slow page's later write must not
// bring the destroyed session back.
func TestSessionMergeLogoutRacingSlowPage(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	release, done := startMergeWait(t, s.gws[0], ck, url.Values{"k": {"late"}, "v": {"1"}})
	if resp, body, set := s.gws[1].get(t, "/destroy.php", ck); resp.StatusCode != 200 || set != "-" {
		t.Fatalf("destroy: %d %q cookie %q", resp.StatusCode, body, set)
	}
	release()
	// Its change cannot be kept: a 503 says so (Django's own sessions
	// answer such a request with SessionInterrupted, a 400).
	if r := <-done; r[0] != "503" {
		t.Errorf("slow page: %v, want 503", r)
	}
	if n, err := s.redis.DBSize(context.Background()).Result(); s.red != nil && (err != nil || n != 0) {
		t.Fatalf("redis holds %d keys (%v) after the logout", n, err)
	}
	// The old cookie names nothing: the page's session_start() gets a new,
	// empty session.
	if d := s.gws[1].dump(t, ck); string(d.Data) != "[]" {
		t.Fatalf("destroyed session came back: %s", d.Data)
	}
}

// TestSessionMergeLoginKeepsAConcurrentWrite: a login page (merge mode,
// session_regenerate_id(true)) loaded the session; another tab then stored
// a key and got its 200. The key must reach the new session as if that tab
// had run first, not vanish with the old ID.
func TestSessionMergeLoginKeepsAConcurrentWrite(t *testing.T) {
	t.Parallel()
	testMergeLoginKeepsAConcurrentWrite(t, false)
}

// TestSessionMergeLoginAfterOutputKeepsAConcurrentWrite: the same with the
// login page's output leaving between session_regenerate_id(true) and its
// write (a page larger than PHP's output buffer): merge mode stores the
// new session empty when its cookie leaves, and the write must still carry
// the other tab's key.
func TestSessionMergeLoginAfterOutputKeepsAConcurrentWrite(t *testing.T) {
	t.Parallel()
	testMergeLoginKeepsAConcurrentWrite(t, true)
}

func testMergeLoginKeepsAConcurrentWrite(t *testing.T, flush bool) {
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	dir := harness.PHPTempDir(t)
	started, goFile := filepath.Join(dir, "started"), filepath.Join(dir, "go")
	q := url.Values{"k": {"logged"}, "v": {"1"}, "regen": {"1"}, "started": {started}, "go": {goFile}}
	if flush {
		q.Set("flush", "1")
	}
	type answer struct {
		status int
		set    string
	}
	ch := make(chan answer, 1)
	go func() {
		resp, _, set := s.gws[0].get(t, "/merge_wait.php?"+q.Encode(), ck)
		ch <- answer{resp.StatusCode, set}
	}()
	waitForFile(t, started, "merge_wait.php")
	if resp, body, _ := s.gws[1].get(t, "/set.php?k=cart&v=3", ck); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("other tab: %d %q", resp.StatusCode, body)
	}
	os.WriteFile(goFile, nil, 0o644)
	a := <-ch
	if a.status != 200 || a.set == "" || a.set == "-" || a.set == ck {
		t.Fatalf("login: %d, cookie %q", a.status, a.set)
	}
	var got map[string]any
	if err := json.Unmarshal(s.gws[1].dump(t, a.set).Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["cart"] != float64(3) || got["logged"] != "1" || got["user"] != "ana" {
		t.Fatalf("the new session holds %v, want user, logged and the other tab's cart", got)
	}
}

// TestSessionMergeStaleReadKeepsTheTombstoneShort: a page that read the
// session before a login retired its ID and changed nothing (PHP's lazy
// write touches the session) must not stretch the old ID's tombstone
// (2 minutes) to the session's idle timeout.
func TestSessionMergeStaleReadKeepsTheTombstoneShort(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	done := make(chan int, 1)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/sleep_read.php?ms=1000", ck)
		done <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // the slow page has read the session
	if resp, body, set := s.gws[1].get(t, "/regenerate.php", ck); resp.StatusCode != 200 || set == "" || set == ck {
		t.Fatalf("login: %d %q cookie %q", resp.StatusCode, body, set)
	}
	if st := <-done; st != 200 {
		t.Fatalf("slow page: %d", st)
	}
	ctx := context.Background()
	keys, err := s.redis.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range keys {
		d, err := s.redis.HGet(ctx, k, "d").Result()
		if err != nil || !strings.Contains(d, `"retired"`) {
			continue
		}
		found = true
		if ttl := s.redis.PTTL(ctx, k).Val(); ttl > 2*time.Minute {
			t.Errorf("the old ID's tombstone lives %v after the slow page's touch, want <= 2m", ttl)
		}
	}
	if !found {
		t.Fatalf("no tombstone among %v", keys)
	}
}

// TestSessionMergeNextToALinkedSession: a page stores one object under two
// keys (PHP links them: the session is kept whole as one opaque member)
// while a slower page of the same session, which loaded it before, sets a
// key. The merge must not put that key next to the linked session: every
// PHP page of the session would then fail with 500.
func TestSessionMergeNextToALinkedSession(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	release, done := startMergeWait(t, s.gws[0], ck, url.Values{"k": {"c"}, "v": {"1"}})
	if resp, body, _ := s.gws[1].get(t, "/shared_object.php", ck); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("shared_object.php: %d %q", resp.StatusCode, body)
	}
	release()
	if r := <-done; r != [2]string{"200", "ok"} {
		t.Fatalf("merge_wait.php: %v", r)
	}
	for _, gw := range s.gws {
		if resp, body, _ := gw.get(t, "/get.php?k=c", ck); resp.StatusCode != 200 {
			t.Fatalf("a PHP page of the session after the merge: %d %q", resp.StatusCode, body)
		}
	}
}

// TestSessionMergeDoubleLogin: two login requests of one browser (a
// double-submitted form) loaded the session, and both call
// session_regenerate_id(true). The first moves the session to a new ID and
// answers with its cookie; the second finds the old ID retired and must not
// answer with a cookie of a session of its own, which would replace the
// first's in the browser: it gets 503 (Retry-After), and nothing of it is
// stored.
func TestSessionMergeDoubleLogin(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	type answer struct {
		status int
		set    string
	}
	login := func(gw *sessionGW, v string) (release func(), done <-chan answer) {
		dir := harness.PHPTempDir(t)
		started, goFile := filepath.Join(dir, "started"), filepath.Join(dir, "go")
		q := url.Values{"k": {"logged"}, "v": {v}, "regen": {"1"}, "started": {started}, "go": {goFile}}
		ch := make(chan answer, 1)
		go func() {
			resp, _, set := gw.get(t, "/merge_wait.php?"+q.Encode(), ck)
			ch <- answer{resp.StatusCode, set}
		}()
		waitForFile(t, started, "merge_wait.php")
		return func() { os.WriteFile(goFile, nil, 0o644) }, ch
	}
	releaseA, doneA := login(s.gws[0], "a")
	releaseB, doneB := login(s.gws[1], "b")
	releaseA()
	a := <-doneA
	if a.status != 200 || a.set == "" || a.set == "-" || a.set == ck {
		t.Fatalf("first login: %d, cookie %q", a.status, a.set)
	}
	releaseB()
	b := <-doneB
	if b.set != "" {
		t.Errorf("second login answers %d with cookie %q, which replaces the first login's", b.status, b.set)
	}
	if b.status != 503 {
		t.Errorf("second login: %d, want 503", b.status)
	}
	var got map[string]any
	if err := json.Unmarshal(s.gws[1].dump(t, a.set).Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["logged"] != "a" {
		t.Fatalf("the first login's session holds %v", got)
	}
	if n, err := s.redis.DBSize(context.Background()).Result(); err != nil || n != 2 {
		t.Errorf("redis holds %d keys (%v), want the first login's session and the old ID's tombstone", n, err)
	}
}

// Merge mode: two requests each delete a key of a session that also holds
// one named "__php__" (an app's own key), leaving only that one. PHP reads
// a session whose only member is "__php__" as a tag, so storing the merge
// made every later page of the session fail (500 "session data
// unreadable"). The second write is refused instead (500), and the session
// stays readable, as the first one left it.
func TestSessionMergeNeverLeavesALoneTagKey(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	for _, kv := range []string{"k=__php__&v=x", "k=b&v=2"} {
		if resp, _, _ := s.gws[0].get(t, "/set.php?"+kv, ck); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
	}
	release, done := startMergeWait(t, s.gws[0], ck, url.Values{"unset": {"user"}})
	if resp, _, _ := s.gws[1].get(t, "/unset.php?k=b", ck); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	release()
	r := <-done
	resp, body, _ := s.gws[1].get(t, "/get.php", ck)
	if resp.StatusCode != 200 {
		t.Fatalf("after the merge (the merging request answered %v) every page of the session fails: %d %q", r, resp.StatusCode, body)
	}
	if r[0] != "500" {
		t.Errorf("the write whose merge PHP could not read answered %v, want 500", r)
	}
	if d := decodeDump(t, body); string(d.Data) != `{"user":"ana","__php__":"x"}` {
		t.Errorf("the session holds %s, want it as the other request left it", d.Data)
	}
}

// TestSessionMergeConflictWarningIsOneLine: two overlapping PHP requests in
// merge mode that both wrote 200 keys of some 100 bytes: the second one's
// write overrides the first's on all of them and is warned of, on a line a
// log pipeline takes whole (Docker's json-file driver splits at 16 KiB),
// with the count and as many names as fit. The warning listed every name,
// a line of over 20 KiB.
func TestSessionMergeConflictWarningIsOneLine(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	params := func(v string) url.Values { return url.Values{"n": {"200"}, "v": {v}} }
	releaseFirst, first := startPaused(t, s.gws[0], ck, "merge_many.php", "started", params("first"))
	releaseSecond, second := startPaused(t, s.gws[1], ck, "merge_many.php", "started", params("second"))
	releaseFirst()
	if r := <-first; r != [2]string{"200", "ok"} {
		t.Fatalf("first writer: %v", r)
	}
	releaseSecond()
	if r := <-second; r != [2]string{"200", "ok"} {
		t.Fatalf("second writer: %v", r)
	}
	var warning string
	for _, l := range strings.Split(s.gws[1].Logs.String(), "\n") {
		if strings.Contains(l, "overrode concurrent changes") {
			warning = l
		}
	}
	var got struct {
		Conflicts struct {
			Count int      `json:"count"`
			Keys  []string `json:"keys"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(warning), &got); err != nil {
		t.Fatalf("conflict warning %.300q: %v", warning, err)
	}
	if len(warning) > 8<<10 || got.Conflicts.Count != 200 || len(got.Conflicts.Keys) == 0 || !strings.HasPrefix(got.Conflicts.Keys[0], strings.Repeat("k", 100)) {
		t.Errorf("conflict warning of %d bytes, count %d, %d names; want at most 8 KiB, 200 and the first names: %.300s", len(warning), got.Conflicts.Count, len(got.Conflicts.Keys), warning)
	}
}
