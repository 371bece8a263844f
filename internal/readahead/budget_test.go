package readahead

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// Many bodies whose clients read nothing hold no more than the budget
// between them; each still reaches its client whole once it reads, and the
// budget is all given back.
func TestBudgetBoundsAllBodies(t *testing.T) {
	const bodies, size, limit = 8, 512 << 10, 256 << 10
	var warned atomic.Int32
	budget := NewBudget(limit, func(used, max int64) { warned.Add(1) })
	dir := t.TempDir()
	want := randomBytes(size)
	var bs []*Body
	var us []*upstream
	for range bodies {
		u := newUpstream(0)
		b := New(u, Options{Memory: 16 << 10, TempDir: dir, Budget: budget})
		go u.sendAll(want, func() int { return 8 << 10 }, nil)
		one := make([]byte, 1)
		if _, err := io.ReadFull(b, one); err != nil {
			t.Fatal(err)
		}
		bs, us = append(bs, b), append(us, u)
	}
	time.Sleep(300 * time.Millisecond) // the readers-ahead run as far as they may
	if used := budget.Used(); used > limit {
		t.Fatalf("%d bodies hold %d bytes with a budget of %d", bodies, used, limit)
	}
	var held int64
	for _, b := range bs {
		b.mu.Lock()
		held += b.held()
		b.mu.Unlock()
	}
	// Beyond the budget, each body holds at most the chunk its client
	// has not taken yet (streaming at the client's pace).
	if max := int64(limit + bodies*chunkSize); held > max {
		t.Fatalf("bodies hold %d bytes, more than the budget plus a chunk each (%d)", held, max)
	}
	// Counted once per body that had to wait, however many chunks it
	// then read at its client's pace.
	if r := budget.Refused(); r == 0 || r > bodies || warned.Load() != 1 {
		t.Fatalf("budget refused %d times, warned %d times; want 1 to %d and one warning", r, warned.Load(), bodies)
	}
	for i, b := range bs {
		rest, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(rest, want[1:]) {
			t.Fatalf("body %d: %d bytes, err %v", i, len(rest), err)
		}
		<-us[i].ended
		b.Close()
	}
	if used := budget.Used(); used != 0 {
		t.Fatalf("budget still used: %d", used)
	}
}

// Close gives back what a body held unread.
func TestBudgetGivenBackOnClose(t *testing.T) {
	budget := NewBudget(1<<20, nil)
	u := newUpstream(0)
	b := New(u, Options{Memory: 4 << 10, TempDir: t.TempDir(), Budget: budget})
	go u.sendAll(randomBytes(200<<10), func() int { return 4 << 10 }, nil)
	one := make([]byte, 1)
	if _, err := io.ReadFull(b, one); err != nil {
		t.Fatal(err)
	}
	<-u.ended
	if budget.Used() == 0 {
		t.Fatal("a body holding data read ahead used none of the budget")
	}
	b.Close()
	if used := budget.Used(); used != 0 {
		t.Fatalf("budget still used after Close: %d", used)
	}
}

// A warning is given at most once a minute however often the budget is spent.
func TestBudgetWarnsOncePerMinute(t *testing.T) {
	var warned int
	budget := NewBudget(10, func(used, max int64) { warned++ })
	now := time.Unix(1000, 0)
	budget.now = func() int64 { return now.UnixNano() }
	for range 5 {
		if budget.take(100) {
			t.Fatal("took more than the budget")
		}
		budget.refuse()
	}
	now = now.Add(61 * time.Second)
	budget.refuse()
	if warned != 2 || budget.Refused() != 6 {
		t.Fatalf("warned %d times for 6 refusals (counted %d), want 2", warned, budget.Refused())
	}
}

// A response that goes on at its client's pace is counted once, however
// often the budget has room for a chunk of it between two refusals: the
// counter says how many responses were slowed, and a long download read
// piece by piece against a spent budget would otherwise count as hundreds
// (and two bodies racing for the last chunk flaked TestBudgetBoundsAllBodies).
func TestBudgetCountsEachResponseOnce(t *testing.T) {
	budget := NewBudget(chunkSize, nil)
	u := newUpstream(0)
	b := New(u, Options{Memory: 16 << 10, TempDir: t.TempDir(), Budget: budget})
	want := randomBytes(512 << 10)
	go u.sendAll(want, func() int { return 8 << 10 }, nil)
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	b.Close()
	if r := budget.Refused(); r != 1 {
		t.Fatalf("one response read at its client's pace was counted %d times, want 1", r)
	}
}
