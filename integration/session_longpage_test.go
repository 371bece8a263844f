package integration

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSessionPageLongerThanItsExpiryKeepsSession: a session is in use
// while a page holds it, however long the page runs. Its load gave the
// Redis record its TTL back, but nothing refreshed it while the page ran
// (the lock's renewals extend only the lock), so the record expired under
// a page longer than the session's expiry: with
// SESSIONGATE_SESSION_LOCK=merge and a 2 s SESSIONGATE_SESSION_IDLE_TIMEOUT
// a 4.5 s read-only page ended the session it used and a 4.5 s page's
// write was dropped as "destroyed concurrently"; in strict mode, under an
// app's 2 s expiry (Django's set_expiry(2), put in the record here), a
// 4.5 s read-only page ended the session. Real php-fpm and redis-server.
func TestSessionPageLongerThanItsExpiryKeepsSession(t *testing.T) {
	t.Parallel()
	const page = 4500 * time.Millisecond // sleep_read.php?ms=4500
	t.Run("merge idle timeout", func(t *testing.T) {
		t.Parallel()
		s := startSessionStack(t, stackOpts{env: []string{
			"SESSIONGATE_SESSION_LOCK=merge",
			"SESSIONGATE_SESSION_IDLE_TIMEOUT=2s",
		}})
		writer, reader := s.newSession(t), s.newSession(t)
		read := make(chan [2]any, 1)
		go func() {
			resp, body, _ := s.gws[1].get(t, "/sleep_read.php?ms=4500", reader)
			read <- [2]any{resp.StatusCode, body}
		}()
		release, done := startMergeWait(t, s.gws[0], writer, url.Values{"k": {"cart"}, "v": {"3"}})
		time.Sleep(page)
		release()
		if r := <-done; r != [2]string{"200", "ok"} {
			t.Errorf("a page longer than the idle timeout that wrote: %v", r)
		}
		if r := <-read; r != [2]any{200, "read ana"} {
			t.Errorf("a read-only page longer than the idle timeout: %v", r)
		}
		if got := sessionData(t, s.gws[1], writer); got["user"] != "ana" || got["cart"] != "3" {
			t.Errorf("the writing page's session after it: %v, want its user and its write (cart 3)", got)
		}
		if got := sessionData(t, s.gws[0], reader); got["user"] != "ana" {
			t.Errorf("the reading page's session after it: %v, want its user", got)
		}
	})
	t.Run("strict app expiry", func(t *testing.T) {
		t.Parallel()
		s := startSessionStack(t, stackOpts{})
		ck := s.newSession(t)
		ctx := context.Background()
		key := "sessiongate:{" + s.gws[0].dump(t, ck).ID + "}"
		d, err := s.redis.HGet(ctx, key, "d").Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.redis.HSet(ctx, key, "d", strings.Replace(d, `,"data":`, `,"expiry":2000,"data":`, 1)).Err(); err != nil {
			t.Fatal(err)
		}
		if got := cookieMaxAge(t, s.gws[0], "/get.php", ck); got != 2 {
			t.Fatalf("the app expiry is not in effect: cookie Max-Age %d, want 2", got)
		}
		resp, body, _ := s.gws[1].get(t, "/sleep_read.php?ms=4500", ck)
		if resp.StatusCode != 200 || body != "read ana" {
			t.Errorf("a read-only page longer than the app's expiry: %d %q", resp.StatusCode, body)
		}
		if got := sessionData(t, s.gws[0], ck); got["user"] != "ana" {
			t.Errorf("the session after a read-only page longer than its app expiry: %v, want its user", got)
		}
	})
}
