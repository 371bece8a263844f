package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDjangoResponseCutShortLogged: a Django response that breaks off
// mid-body (gunicorn's worker killed by its --timeout or the OOM killer
// while streaming an export) is an aborted response for the client and a
// 502 in the access log and the metrics, as on the PHP path, whether the
// body was read ahead of the client or not: never a 200.
func TestDjangoResponseCutShortLogged(t *testing.T) {
	t.Parallel()
	for _, buffering := range []string{"on", "off"} {
		t.Run("buffering "+buffering, func(t *testing.T) {
			for _, length := range []bool{false, true} {
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if length {
						w.Header().Set("Content-Length", strconv.Itoa(2<<20))
					}
					w.Write(make([]byte, 1<<20))
					w.(http.Flusher).Flush()
					time.Sleep(100 * time.Millisecond)
					panic(http.ErrAbortHandler) // the worker dies
				}))
				gw := startDjangoGateway(t, up.URL, "SESSIONGATE_RESPONSE_BUFFERING="+buffering)
				res, err := http.Get(gw.URL + "/dj/export/")
				if err != nil {
					up.Close()
					t.Fatal(err)
				}
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
				up.Close()
				if err == nil {
					t.Fatalf("length %v: the client got a clean end", length)
				}
				time.Sleep(100 * time.Millisecond)
				var status any
				for _, line := range strings.Split(gw.Logs.String(), "\n") {
					var m map[string]any
					if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["path"] == "/dj/export/" {
						status = m["status"]
						t.Log(line)
					}
				}
				if status != float64(502) {
					t.Errorf("length %v: access log status %v, want 502", length, status)
				}
			}
			// A client that leaves is still a 499, not an upstream failure.
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < 50 && r.Context().Err() == nil; i++ {
					w.Write(make([]byte, 64<<10))
					w.(http.Flusher).Flush()
					time.Sleep(50 * time.Millisecond)
				}
			}))
			defer up.Close()
			gw := startDjangoGateway(t, up.URL, "SESSIONGATE_RESPONSE_BUFFERING="+buffering)
			res, err := http.Get(gw.URL + "/dj/gone/")
			if err != nil {
				t.Fatal(err)
			}
			io.ReadFull(res.Body, make([]byte, 1000))
			res.Body.Close()
			// The access line (this stand-in for Django marks nothing, so a
			// line about a missing middleware names the path first).
			poll(5*time.Second, func() bool {
				return strings.Contains(gw.Logs.String(), `"msg":"request","method":"GET","path":"/dj/gone/"`)
			})
			if logs := gw.Logs.String(); !strings.Contains(logs, `"path":"/dj/gone/","status":499`) || !strings.Contains(logs, "the client left") || strings.Contains(logs, "i/o timeout") {
				t.Errorf("client gone: want 499 saying the client left, not blaming Django: %s", logs)
			}
		})
	}
}
