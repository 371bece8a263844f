package sessionbridge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// record is what the store holds for one session. Data is the shared JSON
// object every app sees; it stays raw so member order (PHP's array order) and
// the exact text another app wrote survive untouched.
type record struct {
	Version int   `json:"v"`
	Created int64 `json:"created"` // unix milliseconds
	Seen    int64 `json:"seen"`    // unix milliseconds of the last write
	// Expiry (milliseconds) and Browser are an app's own expiry for this
	// session (Django's set_expiry), kept so that every app's requests
	// honour it, not only the one that set it.
	Expiry  int64 `json:"expiry,omitempty"`
	Browser bool  `json:"browser,omitempty"`
	// Until (unix milliseconds) is an app's fixed end of the session
	// (Django's set_expiry() with a datetime or timedelta), which no
	// request extends; 0 for none.
	Until int64           `json:"until,omitempty"`
	Data  json.RawMessage `json:"data"`
}

const recordVersion = 1

// errRetired: the record is the tombstone of a session ID that a
// regeneration retired (see retiredRecord), not a session.
var errRetired = errors.New("session id retired by a regeneration")

// retiredRecord is what a session ID retired by a regeneration (PHP's
// session_regenerate_id(true), Django's cycle_key()) holds for a short
// while (Manager.retiredTTL) instead of its data: a request still carrying
// the old cookie (sent while the regenerating request ran) then knows not
// to start a session of its own, whose cookie would replace the new one
// in the browser. It holds no data and no pointer to the new ID (a holder
// of the old cookie must not get the new session: fixation). A gateway
// that does not know the member finds no "data" in it and drops it as an
// unreadable record: no session either way.
func retiredRecord(now int64) []byte {
	b := append([]byte(`{"v":`), strconv.Itoa(recordVersion)...)
	b = append(b, `,"retired":`...)
	b = strconv.AppendInt(b, now, 10)
	return append(b, '}')
}

// retiredAt is when the regeneration wrote tombstone b (retiredRecord), in
// Unix milliseconds of that gateway's clock; ok is false for a tombstone
// without a readable time.
func retiredAt(b []byte) (at int64, ok bool) {
	fields, err := objectMembers(b)
	if err != nil {
		return 0, false
	}
	for _, f := range fields {
		if f.Key == "retired" {
			at, err = recordInt(f)
			return at, err == nil
		}
	}
	return 0, false
}

var emptyObject = json.RawMessage("{}")

// decodeRecord reads what encode wrote (and what encoding/json wrote before
// it). It runs on every session load, so it splits the record with the
// members scanner instead of reflection.
func decodeRecord(b []byte) (record, error) {
	fields, err := objectMembers(b)
	if err != nil {
		return record{}, fmt.Errorf("decode session record: %w", err)
	}
	var r record
	version := int64(0)
	for _, f := range fields {
		switch f.Key {
		case "retired":
			// Whatever else it holds, never a session.
			return record{}, errRetired
		case "v":
			version, err = recordInt(f)
		case "created":
			r.Created, err = recordInt(f)
		case "seen":
			r.Seen, err = recordInt(f)
		case "expiry":
			r.Expiry, err = recordInt(f)
		case "until":
			r.Until, err = recordInt(f)
		case "browser":
			switch string(f.Value) {
			case "true":
				r.Browser = true
			case "false":
				r.Browser = false
			default:
				err = fmt.Errorf("field browser is %s, not a boolean", f.Value)
			}
		case "data":
			r.Data = f.Value
		}
		if err != nil {
			return record{}, fmt.Errorf("decode session record: %w", err)
		}
	}
	if version != recordVersion {
		return record{}, fmt.Errorf("decode session record: unknown version %d", version)
	}
	r.Version = recordVersion
	if len(r.Data) == 0 || r.Data[0] != '{' {
		return record{}, errors.New("decode session record: data is not a JSON object")
	}
	return r, nil
}

func recordInt(f member) (int64, error) {
	n, err := strconv.ParseInt(string(f.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %s is %s, not an integer", f.Key, f.Value)
	}
	return n, nil
}

// encode writes the record as JSON. Data is a JSON object every path has
// already validated (objectMembers, buildObject), so it goes in as is: no
// second scan, and no HTML escaping that would make stored text differ from
// what the apps wrote.
func (r record) encode() []byte {
	b := make([]byte, 0, len(r.Data)+96)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, r.Created, 10)
	b = append(b, `,"seen":`...)
	b = strconv.AppendInt(b, r.Seen, 10)
	if r.Expiry != 0 {
		b = append(b, `,"expiry":`...)
		b = strconv.AppendInt(b, r.Expiry, 10)
	}
	if r.Browser {
		b = append(b, `,"browser":true`...)
	}
	if r.Until != 0 {
		b = append(b, `,"until":`...)
		b = strconv.AppendInt(b, r.Until, 10)
	}
	b = append(b, `,"data":`...)
	if len(r.Data) == 0 {
		b = append(b, emptyObject...)
	}
	b = append(b, r.Data...)
	return append(b, '}')
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// member is one top-level key of a session object with its raw JSON value.
type member struct {
	Key   string
	Value json.RawMessage
}

// objectMembers splits a JSON object into its members, in order. It is the
// unit of change detection and of the merge mode, and runs several times
// on every session request, so it scans the bytes once after json.Valid
// instead of going through json.Decoder's token API (a quarter of the
// gateway's in-process CPU for a session write). Keys are unescaped exactly
// as encoding/json would; values are the raw bytes as written.
func objectMembers(obj []byte) ([]member, error) {
	if !json.Valid(obj) {
		// The decoder says where and why.
		var v any
		err := json.Unmarshal(obj, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, fmt.Errorf("session data: %w", err)
	}
	i := skipSpace(obj, 0)
	if obj[i] != '{' {
		return nil, errors.New("session data: not a JSON object")
	}
	var out []member
	if err := eachItem(obj, i, func(key string, _, val []byte) {
		out = append(out, member{Key: key, Value: json.RawMessage(val)})
	}); err != nil {
		return nil, fmt.Errorf("session data: %w", err)
	}
	return out, nil
}

// eachItem calls f for each item of the JSON array or object that opens at
// b[i] (valid JSON text), in order: key is an array item's index or an
// object member's key unescaped, raw that key as written (nil in an
// array), val the item's value as written.
func eachItem(b []byte, i int, f func(key string, raw, val []byte)) error {
	isArray := b[i] == '['
	i = skipSpace(b, i+1)
	for n := 0; i < len(b) && b[i] != '}' && b[i] != ']'; n++ {
		var key string
		var raw []byte
		if isArray {
			key = strconv.Itoa(n)
		} else {
			end := stringEnd(b, i)
			raw = b[i:end]
			k, err := jsonKey(raw)
			if err != nil {
				return err
			}
			key = k
			i = skipSpace(b, end)
			i = skipSpace(b, i+1) // past ':'
		}
		end := valueEnd(b, i)
		f(key, raw, b[i:end])
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i]
// (b is valid JSON).
func valueEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = stringEnd(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// jsonKey unquotes a member name. Names without escapes or non-ASCII bytes,
// nearly all of them, are a plain slice; the rest go through encoding/json
// so that escapes and invalid UTF-8 come out as it decodes them.
func jsonKey(quoted []byte) (string, error) {
	inner := quoted[1 : len(quoted)-1]
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			var k string
			if err := json.Unmarshal(quoted, &k); err != nil {
				return "", err
			}
			return k, nil
		}
	}
	return string(inner), nil
}

// buildObject is the inverse of objectMembers.
func buildObject(ms []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.Value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func indexMembers(ms []member) map[string]json.RawMessage {
	idx := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		idx[m.Key] = m.Value
	}
	return idx
}

// keepUntouched returns next with every member whose value equals the one
// the app was given (sentView, i.e. the stored data after the app's own
// round trip) replaced by the stored text. An app that rewrote a session
// without touching Django's `{}` therefore does not turn it into PHP's `[]`.
// Inside a member the app changed, keepNested does the same.
func keepUntouched(stored, sentView, next []member) []member {
	storedIdx := indexMembers(stored)
	sentIdx := indexMembers(sentView)
	out := make([]member, len(next))
	for i, m := range next {
		out[i] = m
		sv, ok := sentIdx[m.Key]
		if !ok {
			continue
		}
		orig, ok := storedIdx[m.Key]
		switch {
		case !ok:
		case bytes.Equal(sv, m.Value):
			out[i].Value = orig
		case !bytes.Equal(orig, sv):
			// Another app's text (PHP's own comes back as it was given):
			// PHP changed something inside it.
			out[i].Value = keepNested(orig, sv, m.Value)
		}
	}
	return out
}

// keepNested is keepUntouched inside one value PHP changed (next), whose
// stored text another app wrote (sent is what PHP was given of it): every
// value inside that PHP left as it was given keeps the stored text, and an
// object that PHP's model turned into a list ({} into [], {"0": "a"} into
// ["a"]) stays an object. A Django view then still finds its dict where a
// PHP page only counted something next to it. What PHP changed follows
// PHP's model, and PHP reads the result as the same value as next.
func keepNested(stored, sent, next []byte) []byte {
	if bytes.Equal(sent, next) {
		return stored
	}
	st, stArray, ok1 := containerItems(stored)
	se, seArray, ok2 := containerItems(sent)
	nx, nxArray, ok3 := containerItems(next)
	if !ok1 || !ok2 || !ok3 {
		return next
	}
	// The object stays one when only PHP's model made it a list.
	asObject := !nxArray || !stArray && seArray
	stIdx := make(map[string][]byte, len(st))
	for _, it := range st {
		stIdx[it.key] = it.val
	}
	// The sent item each next item is: the one of its key, but in two
	// lists (PHP's array_shift, array_unshift, array_splice, sort,
	// array_values) the one it equals, as an element moves with its
	// value to another index.
	var pairs []int
	if seArray && nxArray {
		pairs = listPairs(se, nx)
	}
	seIdx := make(map[string][]byte, len(se))
	for _, it := range se {
		seIdx[it.key] = it.val
	}
	out := make([]byte, 0, len(next)+len(stored))
	if asObject {
		out = append(out, '{')
	} else {
		out = append(out, '[')
	}
	for i, it := range nx {
		if i > 0 {
			out = append(out, ',')
		}
		if asObject {
			if it.raw != nil {
				out = append(out, it.raw...)
			} else {
				out = strconv.AppendQuote(out, it.key) // a list index
			}
			out = append(out, ':')
		}
		v := it.val
		key, paired := it.key, true
		if pairs != nil {
			if paired = pairs[i] >= 0; paired {
				key = se[pairs[i]].key
			}
		}
		if sv, ok := seIdx[key]; ok && paired {
			if orig, ok := stIdx[key]; ok {
				v = keepNested(orig, sv, v)
			}
		}
		out = append(out, v...)
	}
	if asObject {
		return append(out, '}')
	}
	return append(out, ']')
}

// listPairs pairs the elements of next, a list PHP wrote, with those of
// sent, the list PHP was given: pairs[i] is the index in sent of next[i],
// -1 for none. An element equal to the one at its own index is that one
// (PHP left it where it was): paired by text first, an equal element
// further on took the place of one PHP changed in place, which then
// counted as new and lost what another app wrote inside it. An element
// that equals another is the first unpaired one of that text after the
// element before it went (PHP moved it: array_shift, array_splice keep
// the order of the rest), else the first unpaired one (sort). One that
// equals none (PHP changed it) is the element of sent at its index,
// unless that one moved elsewhere (then it is new). About linear in the
// lists' length.
func listPairs(sent, next []containerItem) []int {
	pairs := make([]int, len(next))
	paired := make([]bool, len(sent))
	for i, it := range next {
		pairs[i] = -1
		if i < len(sent) && bytes.Equal(it.val, sent[i].val) {
			pairs[i], paired[i] = i, true
		}
	}
	byText := make(map[string][]int, len(sent))
	for j, it := range sent {
		if !paired[j] {
			byText[string(it.val)] = append(byText[string(it.val)], j)
		}
	}
	last := -1 // where the element before went in sent
	for i, it := range next {
		if pairs[i] >= 0 {
			last = pairs[i]
			continue
		}
		js := byText[string(it.val)]
		if len(js) == 0 {
			continue
		}
		j := firstUnpaired(js, paired, last)
		if j < 0 {
			j = firstUnpaired(js, paired, -1)
		}
		if j >= 0 {
			pairs[i], paired[j], last = j, true, j
		}
	}
	for i := range next {
		if pairs[i] < 0 && i < len(sent) && !paired[i] {
			pairs[i], paired[i] = i, true
		}
	}
	return pairs
}

// firstUnpaired returns the first index in js (ascending) above after
// that is not paired yet, or -1.
func firstUnpaired(js []int, paired []bool, after int) int {
	for k := sort.SearchInts(js, after+1); k < len(js); k++ {
		if !paired[js[k]] {
			return js[k]
		}
	}
	return -1
}

// containerItem is one element of a JSON array (key: its index) or member
// of a JSON object (key unescaped, raw: as written).
type containerItem struct {
	key      string
	raw, val []byte
}

// containerItems splits valid JSON text that is an array or an object into
// its items; ok is false for any other value.
func containerItems(b []byte) (items []containerItem, isArray, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' && b[i] != '[' {
		return nil, false, false
	}
	if err := eachItem(b, i, func(key string, raw, val []byte) {
		items = append(items, containerItem{key: key, raw: raw, val: val})
	}); err != nil {
		return nil, false, false
	}
	return items, b[i] == '[', true
}

// mergeResult is the outcome of a three-way merge of session objects.
type mergeResult struct {
	Data      json.RawMessage
	Conflicts []string // keys both sides changed differently (ours won)
}

// merge3 applies the change from base to ours onto theirs, key by key. A key
// changed on both sides to different values is a conflict resolved in favour
// of ours (last writer wins) and reported. Order: theirs' order, then keys
// new in ours in ours' order; when nobody else changed the session (theirs
// is base), ours as it is, so that a writer's new key order (PHP moves a
// key it unsets and sets again to the end) is kept.
func merge3(base, ours, theirs []member) mergeResult {
	if sameMembers(base, theirs) {
		return mergeResult{Data: buildObject(ours)}
	}
	if wholeSession(base) || wholeSession(ours) || wholeSession(theirs) {
		return mergeWhole(base, ours, theirs)
	}
	baseIdx := indexMembers(base)
	oursIdx := indexMembers(ours)
	theirsIdx := indexMembers(theirs)
	var res mergeResult
	out := make([]member, 0, len(theirs)+len(ours))
	for _, t := range theirs {
		bv, inBase := baseIdx[t.Key]
		ov, inOurs := oursIdx[t.Key]
		changedByUs := inBase != inOurs || (inBase && !bytes.Equal(bv, ov))
		switch {
		case !changedByUs:
			out = append(out, t)
		case !inOurs: // we deleted it
			if inBase && !bytes.Equal(bv, t.Value) {
				res.Conflicts = append(res.Conflicts, t.Key)
			}
		default: // we set it
			if (inBase && !bytes.Equal(bv, t.Value) || !inBase) && !bytes.Equal(ov, t.Value) {
				res.Conflicts = append(res.Conflicts, t.Key)
			}
			out = append(out, member{Key: t.Key, Value: ov})
		}
	}
	for _, o := range ours {
		if _, ok := theirsIdx[o.Key]; ok {
			continue
		}
		bv, inBase := baseIdx[o.Key]
		if inBase && bytes.Equal(bv, o.Value) {
			continue // unchanged by us, deleted by them
		}
		if inBase {
			// we changed a key they deleted
			res.Conflicts = append(res.Conflicts, o.Key)
		}
		out = append(out, o)
	}
	res.Data = buildObject(out)
	return res
}

// sameMembers reports whether a and b hold the same members, with the same
// text, in the same order.
func sameMembers(a, b []member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// wholeSession reports whether ms is a PHP session kept whole as one
// opaque member (its top-level keys linked: docs/protocol.md, "A whole
// linked PHP session"), which must stay the only member.
func wholeSession(ms []member) bool {
	for _, m := range ms {
		if m.Key == "__php_session__" || m.Key == "__php_session__b64" {
			return true
		}
	}
	return false
}

// phpTopLevel returns the top-level members PHP reads in ms: ms itself, or
// for a whole linked PHP session (wholeSession) the top-level keys of its
// PHP text, each with its value as JSON text when it is a string or an
// integer and nil otherwise (phpserial.TopLevelMembers). Other apps see
// none of those keys, but the gateway reads Django's own keys there
// (loginIn, dropExpiry): PHP still holds them, and PHP reads them
// (sessiongate_user_id()). want names the keys the caller looks for: a
// text that holds none of them is not parsed. A text PHP could not read
// either gives no members.
func phpTopLevel(ms []member, want ...string) []member {
	if len(ms) != 1 || ms[0].Key != "__php_session__" && ms[0].Key != "__php_session__b64" {
		return ms
	}
	var s string
	if json.Unmarshal(ms[0].Value, &s) != nil {
		return nil
	}
	text := []byte(s)
	if ms[0].Key == "__php_session__b64" {
		var err error
		if text, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil
		}
	}
	if !slices.ContainsFunc(want, func(k string) bool { return bytes.Contains(text, []byte(k)) }) {
		return nil
	}
	// The text was checked against the codec's limits when it was stored
	// (and is again whenever PHP is given it); it is only read here.
	n := max(len(text), 1)
	tops, err := phpserial.TopLevelMembers(text, phpserial.Limits{MaxBytes: n, MaxDepth: n, MaxElements: n, MaxStringLen: n})
	if err != nil {
		return nil
	}
	out := make([]member, len(tops))
	for i, t := range tops {
		out[i] = member{Key: t.Key, Value: t.Value}
	}
	return out
}

// mergeWhole is merge3 when a side holds a whole linked PHP session: the
// session is then one value, so a key-by-key merge would put keys next to
// it that PHP cannot be given (every PHP page of the session would fail).
// A change of ours replaces theirs whole; both changed is a conflict that
// ours wins, reported with the keys theirs changed.
func mergeWhole(base, ours, theirs []member) mergeResult {
	b, o, t := buildObject(base), buildObject(ours), buildObject(theirs)
	if bytes.Equal(o, b) {
		return mergeResult{Data: t}
	}
	res := mergeResult{Data: o}
	if !bytes.Equal(t, b) && !bytes.Equal(t, o) {
		baseIdx, theirsIdx := indexMembers(base), indexMembers(theirs)
		for _, m := range theirs {
			if bv, ok := baseIdx[m.Key]; !ok || !bytes.Equal(bv, m.Value) {
				res.Conflicts = append(res.Conflicts, m.Key)
			}
		}
		for _, m := range base {
			if _, ok := theirsIdx[m.Key]; !ok {
				res.Conflicts = append(res.Conflicts, m.Key)
			}
		}
	}
	return res
}
