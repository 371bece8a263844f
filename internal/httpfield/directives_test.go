package httpfield

import (
	"reflect"
	"testing"
)

// TestDirectivesQuotedComma: a comma inside a quoted string is part of
// the directive's argument (private="X-User, X-Other" names two fields),
// not the end of it; split there, the first half looked like a private
// naming X-User and the second like a directive of its own with an
// unbalanced quote, and Set-Cookie named second went unseen.
func TestDirectivesQuotedComma(t *testing.T) {
	got := Directives([]string{`public, max-age=600, private="X-User, Set-Cookie"`, ` No-Cache="a\"b, c" ,, no-store-remote`})
	want := []Directive{
		{Text: "public", Name: "public"},
		{Text: "max-age=600", Name: "max-age", Arg: "600", HasArg: true},
		{Text: `private="X-User, Set-Cookie"`, Name: "private", Arg: "X-User, Set-Cookie", HasArg: true},
		{Text: `No-Cache="a\"b, c"`, Name: "no-cache", Arg: `a"b, c`, HasArg: true},
		{Text: "no-store-remote", Name: "no-store-remote"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if !got[2].Names("set-cookie") || got[2].Names("X-Other") {
		t.Errorf("%q names set-cookie: %v, X-Other: %v", got[2].Text, got[2].Names("set-cookie"), got[2].Names("X-Other"))
	}
	// An unterminated quoted string runs to the end of its line, never
	// into the next.
	if got := Directives([]string{`private="X-User, no-store`, "max-age=1"}); len(got) != 2 || got[1].Name != "max-age" {
		t.Errorf("unterminated quote: %+v", got)
	}
}
