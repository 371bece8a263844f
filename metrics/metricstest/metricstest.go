// Package metricstest reads a /metrics endpoint the way the tests of the
// gateway's metrics compare it: every sample as "name{labels}" -> value.
package metricstest

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrapeClient keeps no connection open after a scrape: tests that count
// the gateway's goroutines would count the admin listener's goroutine for
// a kept-alive one, there or not depending on timing (13 against 12).
var scrapeClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Scrape GETs url (an admin listener's /metrics) and returns its samples.
func Scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	res, err := scrapeClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ScrapeWhen scrapes until series reaches at least atLeast, for up to 5 s,
// and returns the last scrape: the gateway counts a request once its
// response is out, so a client can have the response before the count.
func ScrapeWhen(t testing.TB, url, series string, atLeast float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := Scrape(t, url)
		if m[series] >= atLeast || time.Now().After(deadline) {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
}
