package readahead

import (
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/monoclock"
)

// Budget bounds the bytes every Body sharing it holds at once, memory and
// temp files together: Options.Max bounds one response, but a few clients
// that open many downloads and read none would otherwise fill the temp
// directory (and then every buffered upload fails too). A body the budget
// refuses stops reading ahead and holds one chunk at a time, so its answer
// goes at the client's pace, as behind nginx once fastcgi_max_temp_file_size
// is reached; the client never sees an error.
type Budget struct {
	max      int64
	used     atomic.Int64
	refused  atomic.Int64
	lastWarn atomic.Int64 // monoclock reading of the last warning
	warn     func(used, max int64)
	// now is monoclock.Now: the wall clock stepped back silenced the
	// warning as long as the step.
	now func() int64
}

// warnEvery spaces the warnings: a budget spent stays spent for a while,
// and one line a minute says so without flooding the log.
const warnEvery = time.Minute

// NewBudget makes a budget of max bytes; warn (may be nil) is called at most
// once a minute when a body finds it spent.
func NewBudget(max int64, warn func(used, max int64)) *Budget {
	return &Budget{max: max, warn: warn, now: monoclock.Now}
}

// Max is the budget's size.
func (g *Budget) Max() int64 { return g.max }

// Used is how many bytes bodies hold under the budget now.
func (g *Budget) Used() int64 { return g.used.Load() }

// Refused counts the times a body found the budget spent and went on at
// its client's pace (a counter, for metrics).
func (g *Budget) Refused() int64 { return g.refused.Load() }

// take reserves n bytes, or reports that it cannot.
func (g *Budget) take(n int64) bool {
	for {
		u := g.used.Load()
		if u+n > g.max {
			return false
		}
		if g.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// refuse counts a body that found the budget spent, and warns at most
// once a minute.
func (g *Budget) refuse() {
	g.refused.Add(1)
	if g.warn != nil {
		now := g.now()
		last := g.lastWarn.Load()
		if (last == 0 || now-last >= int64(warnEvery)) && g.lastWarn.CompareAndSwap(last, now) {
			g.warn(g.used.Load(), g.max)
		}
	}
}

func (g *Budget) give(n int64) {
	if n > 0 {
		g.used.Add(-n)
	}
}
