package phpserial

import "strconv"

// TopLevelMember is one top-level key of a PHP session (TopLevelMembers).
type TopLevelMember struct {
	// Key is the key's bytes, an integer key in decimal (as the
	// session's JSON object names it).
	Key string
	// Value is the JSON text of the value when it is a string that is
	// valid UTF-8 or an integer, as DecodeSession would write it, and nil
	// for any other value.
	Value []byte
}

// TopLevelMembers returns the top-level keys of a session in php_serialize
// form (the text of serialize($_SESSION), which a whole-session tag
// "__php_session__" holds), in PHP's order, with the value of each that is
// a string or an integer: what PHP reads as $_SESSION[key] there, a
// reference (R:) to such a value followed. It builds no other value, so the
// keys another application keeps in a session stored whole (Django's login
// and expiry) can be read without a JSON view of the rest.
func TopLevelMembers(phpSerialized []byte, l Limits) ([]TopLevelMember, error) {
	l = l.norm()
	d, err := parseInput(phpSerialized, l)
	if err != nil {
		return nil, err
	}
	defer putDecoder(d)
	p := &d.p
	nodes := p.nodes
	if nodes[0].kind != pArray {
		return nil, &SyntaxError{Offset: 0, Msg: "a php_serialize session must be an array (a:N:{...})"}
	}
	out := make([]TopLevelMember, 0, nodes[0].count)
	for c := int32(1); c < nodes[0].skip; c = nodes[c].skip {
		n := &nodes[c]
		var m TopLevelMember
		if n.keyInt {
			m.Key = strconv.FormatInt(n.knum, 10)
		} else {
			m.Key = string(p.in[n.ks:n.ke])
		}
		v := n
		if v.kind == pRef && v.num < uint64(len(p.slots)) {
			v = &nodes[p.slots[v.num]]
		}
		switch v.kind {
		case pString:
			if s := p.in[v.vs:v.ve]; validUTF8(s) {
				m.Value = appendJSONString(nil, s)
			}
		case pInt:
			m.Value = strconv.AppendInt(nil, int64(v.num), 10)
		}
		out = append(out, m)
	}
	return out, nil
}
