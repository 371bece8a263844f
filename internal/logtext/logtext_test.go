package logtext

import "testing"

func TestFit(t *testing.T) {
	for _, c := range []struct {
		s          string
		max        int
		n, written int
	}{
		{"abc", 10, 3, 3},
		{"abc", 2, 2, 2},
		{"éé", 3, 2, 2},           // not inside the second é
		{"a\x01b", 6, 1, 1},       // \u0001
		{"a\xffb", 7, 2, 7},       // \ufffd
		{"\"\\", 3, 1, 2},         // quote and backslash: \" and \\
		{"a\nb\tc", 6, 4, 6},      // \n and \t
		{"\x7f", 3, 0, 0},         // DEL: the text handler's \x7f
		{"x\u2028", 7, 4, 7},      // escaped by the JSON handler
		{"\u00ad", 5, 0, 0},       // soft hyphen: the text handler's \u00ad
		{"a\U000f0000", 10, 1, 1}, // private use: the text handler's \U000f0000
		{"a\U000f0000", 11, 5, 11},
		{"\U0001F600", 4, 4, 4}, // an emoji is written as it is
	} {
		if n, w := Fit(c.s, c.max); n != c.n || w != c.written {
			t.Errorf("Fit(%q, %d) = %d, %d; want %d, %d", c.s, c.max, n, w, c.n, c.written)
		}
	}
}
