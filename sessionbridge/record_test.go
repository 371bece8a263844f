package sessionbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func mustMembers(t *testing.T, s string) []member {
	t.Helper()
	m, err := objectMembers([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestObjectMembersKeepsOrderAndText(t *testing.T) {
	in := `{"z":1,"a":{"n":[1,2.0]},"m":"é"}`
	ms := mustMembers(t, in)
	if string(buildObject(ms)) != in {
		t.Fatalf("round trip: %s", buildObject(ms))
	}
	for _, bad := range []string{`[]`, `{"a":}`, `{"a":1`, `1`, ``} {
		if _, err := objectMembers([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMerge3(t *testing.T) {
	cases := []struct {
		name, base, ours, theirs, want string
		conflicts                      []string
	}{
		{"only ours", `{"a":1}`, `{"a":2}`, `{"a":1}`, `{"a":2}`, nil},
		{"only theirs", `{"a":1}`, `{"a":1}`, `{"a":3}`, `{"a":3}`, nil},
		{"different keys", `{"a":1,"b":1}`, `{"a":2,"b":1}`, `{"a":1,"b":2}`, `{"a":2,"b":2}`, nil},
		{"same key conflict", `{"a":1}`, `{"a":2}`, `{"a":3}`, `{"a":2}`, []string{"a"}},
		{"same change", `{"a":1}`, `{"a":2}`, `{"a":2}`, `{"a":2}`, nil},
		{"we add, they add other", `{}`, `{"x":1}`, `{"y":1}`, `{"y":1,"x":1}`, nil},
		{"both add same key", `{}`, `{"x":1}`, `{"x":2}`, `{"x":1}`, []string{"x"}},
		{"we delete", `{"a":1,"b":1}`, `{"b":1}`, `{"a":1,"b":2}`, `{"b":2}`, nil},
		{"we delete, they changed", `{"a":1}`, `{}`, `{"a":2}`, `{}`, []string{"a"}},
		{"they delete", `{"a":1,"b":1}`, `{"a":1,"b":1}`, `{"b":1}`, `{"b":1}`, nil},
		{"they delete, we changed", `{"a":1}`, `{"a":5}`, `{}`, `{"a":5}`, []string{"a"}},
	}
	for _, c := range cases {
		res := merge3(mustMembers(t, c.base), mustMembers(t, c.ours), mustMembers(t, c.theirs))
		if string(res.Data) != c.want || !reflect.DeepEqual(res.Conflicts, c.conflicts) {
			t.Errorf("%s: got %s %v, want %s %v", c.name, res.Data, res.Conflicts, c.want, c.conflicts)
		}
	}
}

func TestKeepUntouchedPreservesOtherAppsText(t *testing.T) {
	stored := mustMembers(t, `{"d":{},"f":1.50,"p":1}`)
	sentView := mustMembers(t, `{"d":[],"f":1.5,"p":1}`) // as PHP renders it
	next := mustMembers(t, `{"d":[],"f":1.5,"p":2}`)     // PHP changed p only
	got := buildObject(keepUntouched(stored, sentView, next))
	if string(got) != `{"d":{},"f":1.50,"p":2}` {
		t.Fatalf("got %s", got)
	}
}

// objectMembersByTokens is the straightforward json.Decoder version that
// objectMembers replaced for speed; it stays as the oracle the fast one
// must agree with.
func objectMembersByTokens(obj []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{Key: key, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(obj, " \t\r\n"))) {
		return nil, errors.New("trailing data")
	}
	return out, nil
}

var objectCorpus = []string{
	`{}`, ` { } `, `{"a":1}`, "{\n \"a\" : 1 ,\t\"b\":\"x\" }\n",
	`{"z":1,"a":{"n":[1,2.0,{"q":[]}]},"m":"é"}`,
	`{"esc\"aped":"va\\lue","\u00e9":"\u00e9","a\\b":[true,false,null]}`,
	`{"dup":1,"dup":2}`, `{"n":-0.5e+10,"s":"}]{[,:\"","e":{}}`,
	"{\"bad utf8 \xff\":1}", `{"":""}`, `{"a":[{"b":[{"c":"d"}]}],"x":"y"}`,
	`[]`, `{"a":}`, `{"a":1`, `1`, ``, `{"a":1} x`, `{"a":1}{}`, `{"a" 1}`, `{,}`,
}

func TestObjectMembersAgreesWithTheDecoder(t *testing.T) {
	for _, in := range objectCorpus {
		checkMembersAgree(t, []byte(in))
	}
}

func FuzzObjectMembers(f *testing.F) {
	for _, in := range objectCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkMembersAgree(t, in) })
}

func checkMembersAgree(t *testing.T, in []byte) {
	t.Helper()
	got, err := objectMembers(in)
	want, werr := objectMembersByTokens(in)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: fast err %v, decoder err %v", in, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n fast    %q\n decoder %q", in, got, want)
	}
}
