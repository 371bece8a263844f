package sessionbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
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
		{"both delete", `{"a":1,"b":1}`, `{"b":1}`, `{"b":1}`, `{"b":1}`, nil},
		// The merge is per top-level key: changes to different members of
		// one nested array are a same-key conflict, ours wins.
		{"nested change on both sides", `{"a":{"x":1,"y":1}}`, `{"a":{"x":2,"y":1}}`, `{"a":{"x":1,"y":2}}`, `{"a":{"x":2,"y":1}}`, []string{"a"}},
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

// TestKeepUntouchedInsideAChangedMember: PHP changes one value inside a
// member Django wrote; what PHP left as it was given keeps Django's text
// and an object PHP saw as a list stays an object, so Django does not find
// its {} turned into [] (a list it cannot index by name) by a PHP counter
// next to it. Only what PHP changed follows PHP's model.
func TestKeepUntouchedInsideAChangedMember(t *testing.T) {
	for _, c := range []struct{ name, stored, sent, next, want string }{
		{"counter next to Django's objects",
			`{"cart":{"items":{},"n":0,"by":{"0":"a"},"big":18446744073709551616,"f":1.50}}`,
			`{"cart":{"items":[],"n":0,"by":["a"],"big":1.8446744073709552e+19,"f":1.5}}`,
			`{"cart":{"items":[],"n":1,"by":["a"],"big":1.8446744073709552e+19,"f":1.5}}`,
			`{"cart":{"items":{},"n":1,"by":{"0":"a"},"big":18446744073709551616,"f":1.50}}`},
		{"PHP appends to Django's empty object", `{"d":{"x":{}}}`, `{"d":{"x":[]}}`, `{"d":{"x":["v"]}}`, `{"d":{"x":{"0":"v"}}}`},
		{"PHP moves keys and changes one", `{"o":{"a":{},"b":1}}`, `{"o":{"a":[],"b":1}}`, `{"o":{"b":2,"a":[]}}`, `{"o":{"b":2,"a":{}}}`},
		{"PHP replaces the object", `{"o":{"k":{}}}`, `{"o":{"k":[]}}`, `{"o":5}`, `{"o":5}`},
		{"PHP drops a key", `{"o":{"a":{},"b":{}}}`, `{"o":{"a":[],"b":[]}}`, `{"o":{"b":[]}}`, `{"o":{"b":{}}}`},
		{"a list stays a list", `{"l":[{},1]}`, `{"l":[[],1]}`, `{"l":[[],2]}`, `{"l":[{},2]}`},
		// PHP's own data: PHP's model throughout, byte for byte.
		{"PHP's own data", `{"l":{"1":"a","0":"b"},"e":[]}`, `{"l":{"1":"a","0":"b"},"e":[]}`, `{"l":["b","a"],"e":["x"]}`, `{"l":["b","a"],"e":["x"]}`},
		{"escaped keys kept", `{"o":{"\b":{},"<":1}}`, `{"o":{"\u0008":[],"<":1}}`, `{"o":{"\u0008":[],"<":2}}`, `{"o":{"\u0008":{},"<":2}}`},
	} {
		got := buildObject(keepUntouched(mustMembers(t, c.stored), mustMembers(t, c.sent), mustMembers(t, c.next)))
		if string(got) != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// TestKeepNestedFollowsMovedListElements: in a list, PHP moves elements
// to other indexes (array_shift, array_unshift, array_splice, sort,
// array_values after an unset). An element keeps the stored text of the
// element it was given, wherever it went, not of the one that was at its
// new index: a Django {} that PHP only moved stays {}, and an array PHP
// added is not made an object because a Django {} was at its index.
func TestKeepNestedFollowsMovedListElements(t *testing.T) {
	for _, c := range []struct{ name, stored, sent, next, want string }{
		{"array_shift",
			`{"cart":[{"id":1,"opts":{"size":"L"}},{"id":2,"opts":{}}]}`,
			`{"cart":[{"id":1,"opts":{"size":"L"}},{"id":2,"opts":[]}]}`,
			`{"cart":[{"id":2,"opts":[]}]}`,
			`{"cart":[{"id":2,"opts":{}}]}`},
		{"array_unshift", `{"l":[{}]}`, `{"l":[[]]}`, `{"l":[["x"],[]]}`, `{"l":[["x"],{}]}`},
		{"array_splice out of the middle",
			`{"l":[{"a":{}},[],{"c":{}}]}`,
			`{"l":[{"a":[]},[],{"c":[]}]}`,
			`{"l":[{"a":[]},{"c":[]}]}`,
			`{"l":[{"a":{}},{"c":{}}]}`},
		{"sort", `{"l":[{"b":{}},{"a":[]}]}`, `{"l":[{"b":[]},{"a":[]}]}`, `{"l":[{"a":[]},{"b":[]}]}`, `{"l":[{"a":[]},{"b":{}}]}`},
		{"array_values after an unset", `{"l":[1,{},{"k":{}}]}`, `{"l":[1,[],{"k":[]}]}`, `{"l":[[],{"k":[]}]}`, `{"l":[{},{"k":{}}]}`},
		// Equal elements go to the first one of that text.
		{"equal elements", `{"l":[{},{},1]}`, `{"l":[[],[],1]}`, `{"l":[1,[],[]]}`, `{"l":[1,{},{}]}`},
		// An element PHP changed is the one it was given at its index...
		{"changed in place", `{"l":[{"o":{},"n":1},{}]}`, `{"l":[{"o":[],"n":1},[]]}`, `{"l":[{"o":[],"n":2},[]]}`, `{"l":[{"o":{},"n":2},{}]}`},
		{"changed and moved out", `{"l":[{"o":{},"n":1},{}]}`, `{"l":[{"o":[],"n":1},[]]}`, `{"l":[[],{"o":[],"n":2}]}`, `{"l":[{},{"o":[],"n":2}]}`},
		// ...unless that one moved elsewhere: then it is new.
		{"new where an element left", `{"l":[{},5]}`, `{"l":[[],5]}`, `{"l":[5,["x"],[]]}`, `{"l":[5,["x"],{}]}`},
		// An element equal to the one at its own index stays paired
		// with it: an equal element further on took the place of one
		// PHP changed in place, whose Django {} then came back [] and
		// handed its text to the untouched [] after it.
		{"changed before an equal neighbour",
			`{"l":[{"a":{},"n":1},{"a":{},"n":1}]}`,
			`{"l":[{"a":[],"n":1},{"a":[],"n":1}]}`,
			`{"l":[{"a":[],"n":2},{"a":[],"n":1}]}`,
			`{"l":[{"a":{},"n":2},{"a":{},"n":1}]}`},
		{"appended to before an equal neighbour", `{"l":[{},{}]}`, `{"l":[[],[]]}`, `{"l":[["x"],[]]}`, `{"l":[{"0":"x"},{}]}`},
		{"changed before an untouched equal list", `{"l":[1,{},[]]}`, `{"l":[1,[],[]]}`, `{"l":[1,{"zz":1},[]]}`, `{"l":[1,{"zz":1},[]]}`},
		// A moved element equal to an earlier one is the next of its
		// text after where the element before it went (array_shift
		// keeps the order of the rest).
		{"array_shift past an equal element", `{"l":[{},"x","y",[],true]}`, `{"l":[[],"x","y",[],true]}`, `{"l":["x","y",[],true]}`, `{"l":["x","y",[],true]}`},
		// A Django object PHP's model made a list stays an object, its
		// elements followed too (array_reverse).
		{"object made a list", `{"o":{"0":{},"1":2}}`, `{"o":[[],2]}`, `{"o":[2,[]]}`, `{"o":{"0":2,"1":{}}}`},
	} {
		got := buildObject(keepUntouched(mustMembers(t, c.stored), mustMembers(t, c.sent), mustMembers(t, c.next)))
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
	// Linear: a long list shifted by one is paired element by element.
	const n = 100_000
	var stored, sent, next strings.Builder
	stored.WriteString(`{"l":[`)
	sent.WriteString(`{"l":[`)
	next.WriteString(`{"l":[`)
	for i := range n {
		if i > 0 {
			stored.WriteByte(',')
			sent.WriteByte(',')
		}
		if i > 1 {
			next.WriteByte(',')
		}
		fmt.Fprintf(&stored, `{"i":%d,"o":{}}`, i)
		fmt.Fprintf(&sent, `{"i":%d,"o":[]}`, i)
		if i > 0 {
			fmt.Fprintf(&next, `{"i":%d,"o":[]}`, i)
		}
	}
	for _, b := range []*strings.Builder{&stored, &sent, &next} {
		b.WriteString(`]}`)
	}
	start := time.Now()
	got := buildObject(keepUntouched(mustMembers(t, stored.String()), mustMembers(t, sent.String()), mustMembers(t, next.String())))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a list of %d elements shifted by one took %v", n, d)
	}
	if want := `{"l":[` + strings.TrimPrefix(strings.TrimPrefix(stored.String(), `{"l":[`), `{"i":0,"o":{}},`); string(got) != want {
		t.Errorf("a list of %d elements shifted by one: %.200s...", n, got)
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

// The record codec agrees with encoding/json, which wrote the records of
// earlier versions: both read each other's output to the same record.
func TestRecordCodecAgreesWithEncodingJSON(t *testing.T) {
	for _, r := range []record{
		{Version: 1, Created: 1, Seen: 2, Data: json.RawMessage(`{}`)},
		{Version: 1, Created: 1795423068123, Seen: 1795423068999, Expiry: 1209600000, Data: json.RawMessage(`{"a":[1,{"b":"<&>é\u0000"}],"c":null}`)},
		{Version: 1, Created: -5, Seen: 0, Browser: true, Data: json.RawMessage(`{"k":"v"}`)},
		{Version: 1, Created: 1795423068123, Seen: 1795423068999, Until: 1795426668000, Data: json.RawMessage(`{"k":"v"}`)},
	} {
		ours := r.encode()
		var viaJSON record
		if err := json.Unmarshal(ours, &viaJSON); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", ours, err)
		}
		old, _ := json.Marshal(r)
		for name, b := range map[string][]byte{"ours": ours, "encoding/json's": old} {
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatalf("decode %s %s: %v", name, b, err)
			}
			var gotData, wantData any
			json.Unmarshal(got.Data, &gotData)
			json.Unmarshal(r.Data, &wantData)
			got.Data, viaJSON.Data = nil, nil
			want := r
			want.Data = nil
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotData, wantData) || !reflect.DeepEqual(viaJSON, want) {
				t.Errorf("%s %s: decoded %+v %v, encoding/json %+v, want %+v %v", name, b, got, gotData, viaJSON, want, wantData)
			}
		}
		if r.Data[0] == '{' && !bytes.Contains(ours, r.Data) {
			t.Errorf("data not stored as written: %s", ours)
		}
	}
}

func TestDecodeRecordRefusesMalformed(t *testing.T) {
	for _, bad := range []string{
		``, `[]`, `{"v":1,"created":1,"seen":1,"data":{}`, // not an object
		`{"v":2,"created":1,"seen":1,"data":{}}`,   // unknown version
		`{"created":1,"seen":1,"data":{}}`,         // no version
		`{"v":1,"created":1.5,"seen":1,"data":{}}`, // not an integer
		`{"v":1,"created":"1","seen":1,"data":{}}`,
		`{"v":1,"created":1,"seen":1,"browser":1,"data":{}}`,
		`{"v":1,"created":1,"seen":1,"data":[]}`, // data not an object
		`{"v":1,"created":1,"seen":1,"data":null}`,
		`{"v":1,"created":1,"seen":1}`,
	} {
		if r, err := decodeRecord([]byte(bad)); err == nil {
			t.Errorf("%s accepted as %+v", bad, r)
		}
	}
}

// FuzzDecodeRecord: whatever Redis hands back is a record or an error, and
// a record that decodes encodes to one that decodes to the same fields,
// its data byte for byte.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []record{
		{Version: 1, Created: 1, Seen: 2, Data: json.RawMessage(`{}`)},
		{Version: 1, Created: 1795423068123, Seen: 1795423068999, Expiry: 1209600000, Browser: true, Data: json.RawMessage(`{"a":[1,{"b":"<&>é"}],"c":null}`)},
	} {
		f.Add(r.encode())
	}
	f.Add([]byte(`{"v":1,"created":1,"seen":1,"browser":false,"data":{"x":1},"extra":[1]}`))
	f.Add([]byte(`{"v":1,"v":2,"created":-1,"seen":9223372036854775807,"data":{}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeRecord(in)
		if err != nil {
			return
		}
		if _, err := objectMembers(r.Data); err != nil {
			t.Fatalf("%q: decoded data is not an object: %v", in, err)
		}
		again, err := decodeRecord(r.encode())
		if err != nil {
			t.Fatalf("%q: re-encoded record %q refused: %v", in, r.encode(), err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("%q: round trip %+v, want %+v", in, again, r)
		}
	})
}
