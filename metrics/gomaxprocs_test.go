package metrics

import "testing"

// README ("CPU use") promises the current GOMAXPROCS, which the gateway
// changes at run time (internal/procs), as go_sched_gomaxprocs_threads.
func TestGOMAXPROCSIsExported(t *testing.T) {
	m := New(nil)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "go_sched_gomaxprocs_threads" {
			return
		}
	}
	t.Fatal("go_sched_gomaxprocs_threads is not exported")
}
