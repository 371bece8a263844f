package integration

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testh2"
)

// heapKiB is the gateway's live heap after a garbage collection, from its
// admin pprof.
func (a *h2Attack) heapKiB(t *testing.T) int64 {
	t.Helper()
	res, err := http.Get(a.p.Admin + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n >> 10
		}
	}
	t.Fatalf("no HeapAlloc in the heap profile:\n%.500s", b)
	return 0
}

// TestH2StalledBodiesHoldLittleMemory: HTTP/2 POSTs that send their
// HEADERS (content-length 65536) and never a DATA frame hold little
// memory until SESSIONGATE_READ_TIMEOUT. Each took a 64 KiB body buffer
// before its first read: four connections of 250 such streams, some 140
// KB sent, grew the heap by 77 MiB (nginx holds client_body_buffer_size,
// 16 KiB, at most).
func TestH2StalledBodiesHoldLittleMemory(t *testing.T) {
	a := startH2Attack(t, 2)
	// A first request, then two collections: the pools are empty
	// (sync.Pool keeps a victim cache through one), and what the stalled
	// streams take is new heap.
	a.baseline(t)
	a.heapKiB(t)
	a.heapKiB(t)
	heap0 := a.heapKiB(t)
	const conns, streams = 4, 250
	sent := 0
	for range conns {
		hc := testh2.Dial(t, a.addr)
		defer hc.Close()
		var heads [][]byte
		for i := range streams {
			block := testh2.Block([]testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/count.php"},
				{"content-type", "application/octet-stream"}, {"content-length", "65536"}})
			f := testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders, uint32(2*i+1), block)
			sent += len(f)
			heads = append(heads, f)
		}
		if err := hc.Write(heads...); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // every stream's body read begun
	heap1 := a.heapKiB(t)
	t.Logf("%d connections x %d stalled POST streams (%d bytes sent): heap %d -> %d KiB", conns, streams, sent, heap0, heap1)
	if grown := heap1 - heap0; grown > 32<<10 {
		t.Errorf("%d bytes of HEADERS frames, no body byte, grew the gateway's heap by %d MiB, %d KiB a stream", sent, grown>>10, grown/(conns*streams))
	}
}
