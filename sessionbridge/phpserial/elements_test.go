package phpserial

import (
	"strconv"
	"strings"
	"testing"
)

// TestTagsWithinElementLimitRoundTrip: a session DecodeSession accepted
// under the element limit must be taken back by EncodeSession under the
// same limit. The gateway stores what PHP wrote once it decoded, and gives
// it to PHP on every later request through EncodeSession: a session that
// decodes but does not encode is stored with a 200 and then answered with
// a 500 on every PHP page. A tag is one PHP value (plus what its text
// holds), not three (the JSON object, its string, and the PHP value).
func TestTagsWithinElementLimitRoundTrip(t *testing.T) {
	many := func(n int, leaf string) string {
		var b strings.Builder
		b.WriteString("a:" + strconv.Itoa(n) + ":{")
		for i := range n {
			b.WriteString("i:" + strconv.Itoa(i) + ";" + leaf)
		}
		b.WriteString("}")
		return b.String()
	}
	for _, c := range []struct {
		name string
		php  string
		l    Limits
	}{
		{"value tags", many(4, "d:INF;"), Limits{MaxElements: 5}},
		{"object tags", many(3, `O:8:"stdClass":1:{s:1:"a";i:1;}`), Limits{MaxElements: 7}},
		{"whole session tag", `a:2:{s:1:"a";a:1:{i:0;i:1;}s:1:"b";R:2;}`, Limits{MaxElements: 4}},
		// The default limits: a session of 400000 INF values (6 MiB).
		{"default limits", many(400000, "d:INF;"), Limits{}},
	} {
		j, err := DecodeSession([]byte(c.php), c.l)
		if err != nil {
			t.Errorf("%s: DecodeSession: %v", c.name, err)
			continue
		}
		back, err := EncodeSession(j, c.l)
		if err != nil || string(back) != c.php {
			t.Errorf("%s: EncodeSession of what DecodeSession accepted: %.60q, %v; want the input back", c.name, back, err)
		}
	}
}
