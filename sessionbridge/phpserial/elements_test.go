package phpserial

import (
	"errors"
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

// TestLastTagAtElementLimitRoundTrips: a session of exactly MaxElements
// values whose last value is a tag (INF, an enum, an object, a binary
// string) decodes, so it must encode under the same limits: the JSON
// parser may not charge the tag's object and string on top of every value
// before it, to refund them only when the object closes. The gateway
// stores such a write of PHP, then answers every PHP page of the session
// 500. One value more is refused both ways, and an object that turns out
// not to be a tag gets no such credit.
func TestLastTagAtElementLimitRoundTrips(t *testing.T) {
	build := func(plain int, last string) string {
		var b strings.Builder
		b.WriteString("a:" + strconv.Itoa(plain+1) + ":{")
		for i := range plain {
			b.WriteString("i:" + strconv.Itoa(i) + ";i:1;")
		}
		b.WriteString("i:" + strconv.Itoa(plain) + ";" + last + "}")
		return b.String()
	}
	for _, c := range []struct {
		name  string
		last  string
		elems int // values of last
	}{
		{"INF", "d:INF;", 1},
		{"binary string", "s:1:\"\xff\";", 1},
		{"enum", `E:6:"Suit:H";`, 1},
		{"object", `O:8:"stdClass":1:{s:1:"a";i:1;}`, 2},
		{"tag in a list", `a:1:{i:0;d:NAN;}`, 2},
	} {
		for _, plain := range []int{0, 1, 5} {
			php := build(plain, c.last)
			l := Limits{MaxElements: 1 + plain + c.elems}
			j, err := DecodeSession([]byte(php), l)
			if err != nil {
				t.Errorf("%s after %d values: DecodeSession at the limit: %v", c.name, plain, err)
				continue
			}
			if back, err := EncodeSession(j, l); err != nil || string(back) != php {
				t.Errorf("%s after %d values: EncodeSession of %s at the limit: %q, %v", c.name, plain, j, back, err)
			}
			if _, err := ObjectTags(j, l); err != nil {
				t.Errorf("%s after %d values: ObjectTags of %s at the limit: %v", c.name, plain, j, err)
			}
			l.MaxElements--
			if _, err := DecodeSession([]byte(php), l); !errors.Is(err, ErrLimit) {
				t.Errorf("%s after %d values: DecodeSession past the limit: %v, want ErrLimit", c.name, plain, err)
			}
			if _, err := EncodeSession(j, l); !errors.Is(err, ErrLimit) {
				t.Errorf("%s after %d values: EncodeSession past the limit: %v, want ErrLimit", c.name, plain, err)
			}
		}
	}
	// Objects that are no tag: each member is one value more.
	for _, js := range []string{
		`{"a":1,"b":{"c":"x"}}`,
		`{"a":1,"b":{"__php__":"i:1;","c":1}}`,
		`{"a":1,"b":{"__php__":1}}`,
		`{"a":1,"b":{"__php__":{}}}`,
		`{"a":1,"b":{}}`,
		`{"a":{"b":{"__php__":"i:1;"}}}`,
	} {
		if out, err := EncodeSession([]byte(js), Limits{MaxElements: 2}); !errors.Is(err, ErrLimit) {
			t.Errorf("EncodeSession(%s) with 2 elements: %q, %v; want ErrLimit", js, out, err)
		}
	}
}
