package phpserial

import (
	"reflect"
	"testing"
)

// TestTopLevelMembers: the top-level keys of a php_serialize session, with
// the strings and integers PHP reads there (through a reference too), as
// DecodeSession would write them; nothing else is built.
func TestTopLevelMembers(t *testing.T) {
	type m = TopLevelMember
	for _, c := range []struct {
		in   string
		want []m
	}{
		{`a:0:{}`, []m{}},
		{`a:6:{s:13:"_auth_user_id";s:1:"7";s:15:"_session_expiry";i:-300;i:5;s:1:""";s:1:"f";d:1.5;s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:6;}`,
			[]m{{"_auth_user_id", []byte(`"7"`)}, {"_session_expiry", []byte(`-300`)}, {"5", []byte(`"\""`)}, {"f", nil}, {"a", nil}, {"b", nil}}},
		{`a:3:{s:1:"h";s:3:"old";s:15:"_auth_user_hash";R:2;s:1:"n";a:1:{i:0;R:2;}}`,
			[]m{{"h", []byte(`"old"`)}, {"_auth_user_hash", []byte(`"old"`)}, {"n", nil}}},
		{"a:2:{s:1:\"\xff\";s:1:\"\xfe\";s:1:\"k\";N;}", []m{{"\xff", nil}, {"k", nil}}},
	} {
		got, err := TopLevelMembers([]byte(c.in), Limits{})
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("TopLevelMembers(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{``, `i:1;`, `a:1:{s:1:"a";i:1;`, `a:1:{s:1:"a";R:9;}`} {
		if got, err := TopLevelMembers([]byte(in), Limits{}); err == nil {
			t.Errorf("TopLevelMembers(%q) = %q, want an error", in, got)
		}
	}
	if _, err := TopLevelMembers([]byte(`a:2:{i:0;i:1;i:1;i:2;}`), Limits{MaxElements: 2}); err == nil {
		t.Error("TopLevelMembers past the element limit: no error")
	}
}
