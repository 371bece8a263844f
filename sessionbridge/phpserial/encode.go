package phpserial

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"sync"
)

// encoder holds the reusable state of one JSON -> PHP conversion.
type encoder struct {
	jp      jparser
	pp      parser // tag texts
	elems   int
	slot    int    // the reference slot the next PHP value will take
	str     []byte // unescaped strings
	tagText []byte // unescaped / base64-decoded tag text
	stack   []cframe
	seen    map[string]struct{}
	// enums maps each enum case written so far to its slot: serialize()
	// writes a case's later uses as r: to it (appendEnum).
	enums map[string]int
}

type cframe struct {
	idx  int32
	list bool
	next int64
}

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder(l Limits) *encoder {
	e := encoderPool.Get().(*encoder)
	e.elems = l.MaxElements
	if e.enums == nil {
		e.enums = make(map[string]int)
	}
	clear(e.enums)
	return e
}

func putEncoder(e *encoder) {
	if cap(e.jp.nodes) > 1<<16 || cap(e.pp.nodes) > 1<<16 || cap(e.str) > 1<<20 || cap(e.tagText) > 1<<20 {
		return
	}
	e.jp.in, e.pp.in = nil, nil
	encoderPool.Put(e)
}

// encodeMode selects how the root value is written.
type encodeMode int

const (
	modeValue   encodeMode = iota // any value, slot 1 = the root
	modeSession                   // php_serialize: the root is an array, slot 1
	modeHandler                   // `php` handler: name|value..., first value = slot 1
)

// EncodeSession converts the shared JSON object to PHP's php_serialize
// session format (what serialize($_SESSION) returns). It is the inverse of
// DecodeSession: for text PHP wrote, EncodeSession(DecodeSession(x)) == x.
func EncodeSession(jsonObject []byte, l Limits) ([]byte, error) {
	return encode(jsonObject, l, modeSession)
}

// EncodeValue converts one JSON value (the output of DecodeValue, or any
// JSON) to the serialize() text of a PHP value.
func EncodeValue(jsonValue []byte, l Limits) ([]byte, error) {
	return encode(jsonValue, l, modeValue)
}

func encode(in []byte, l Limits, mode encodeMode) ([]byte, error) {
	l = l.norm()
	if len(in) > l.MaxBytes {
		return nil, limitErr("input size", len(in), l.MaxBytes, 0)
	}
	e := getEncoder(l)
	defer putEncoder(e)
	e.jp.reset(in, l, &e.elems)
	e.jp.session = mode != modeValue
	if err := e.jp.parse(); err != nil {
		return nil, err
	}
	root := &e.jp.nodes[0]
	if mode != modeValue && root.kind != jObject && root.kind != jArray {
		return nil, &SyntaxError{Offset: int(root.start), Msg: "json: a session must be a JSON object"}
	}
	out := make([]byte, 0, len(in)+len(in)/4+16)
	var err error
	if mode != modeValue && root.kind == jObject && root.count == 1 {
		if name, ok := e.tagName(1); ok {
			out, err = e.sessionTag(out, name, mode)
			if err != nil {
				return nil, err
			}
			return checkOut(out, l)
		}
	}
	out, err = e.emit(out, mode)
	if err != nil {
		return nil, err
	}
	return checkOut(out, l)
}

func checkOut(out []byte, l Limits) ([]byte, error) {
	if len(out) > l.MaxBytes {
		return nil, limitErr("output size", len(out), l.MaxBytes, 0)
	}
	return out, nil
}

// keyBytes returns the unescaped name of member node i. The result is only
// valid until the next call that uses e.str.
func (e *encoder) keyBytes(n *jnode) []byte {
	k := e.jp.in[n.ks:n.ke]
	if n.kesc {
		e.str = unescape(e.str[:0], k)
		return e.str
	}
	return k
}

// tagName reports whether member node i has a tag name, and which.
func (e *encoder) tagName(i int32) (string, bool) {
	k := e.keyBytes(&e.jp.nodes[i])
	switch string(k) {
	case tagKey:
		return tagKey, true
	case tagKeyB64:
		return tagKeyB64, true
	case sessionTagKey:
		return sessionTagKey, true
	case sessionTagKeyB64:
		return sessionTagKeyB64, true
	}
	return "", false
}

// loadTag decodes the string of tag value node v (base64 for the *b64
// names) into e.tagText and parses it as PHP text whose root sits at the
// given depth. The PHP nodes are left in e.pp.
func (e *encoder) loadTag(v int32, name string, depth int) error {
	n := &e.jp.nodes[v]
	if n.kind != jString {
		return &SyntaxError{Offset: int(n.start), Msg: "json: the value of a " + strconv.Quote(name) + " tag must be a string"}
	}
	raw := e.jp.in[n.start:n.end]
	if n.esc {
		e.str = unescape(e.str[:0], raw)
		raw = e.str
	}
	if name == tagKeyB64 || name == sessionTagKeyB64 {
		var err error
		e.tagText, err = base64.StdEncoding.AppendDecode(e.tagText[:0], raw)
		if err != nil {
			return &SyntaxError{Offset: int(n.start), Msg: "json: invalid base64 in " + strconv.Quote(name) + " tag"}
		}
	} else {
		e.tagText = append(e.tagText[:0], raw...)
	}
	lim := e.jp.lim
	lim.MaxDepth -= depth - 1
	// At depth MaxDepth+1 (see jparser.value) only a scalar fits: the
	// parser, left with MaxDepth 0, refuses any array or object.
	if lim.MaxDepth < 1 && (lim.MaxDepth < 0 || len(e.tagText) > 0 && (e.tagText[0] == 'a' || e.tagText[0] == 'O')) {
		return limitErr("nesting depth", depth, e.jp.lim.MaxDepth, int(n.start))
	}
	e.pp.reset(e.tagText, 0, lim, &e.elems)
	if err := e.pp.parseRoot(); err != nil {
		if se, ok := err.(*SyntaxError); ok {
			return &SyntaxError{Offset: int(n.start), Msg: fmt.Sprintf("invalid PHP text in %q tag at byte %d: %s", name, se.Offset, se.Msg)}
		}
		return fmt.Errorf("%q tag at offset %d: %w", name, n.start, err)
	}
	return nil
}

// sessionTag writes a whole-session tag (a php_serialize session text).
func (e *encoder) sessionTag(out []byte, name string, mode encodeMode) ([]byte, error) {
	if err := e.loadTag(1, name, 1); err != nil {
		return nil, err
	}
	root := &e.pp.nodes[0]
	if root.kind != pArray {
		return nil, &SyntaxError{Offset: int(e.jp.nodes[1].start), Msg: "json: a session tag must hold a PHP array"}
	}
	if mode == modeSession {
		return e.pp.appendCanonical(out, 0, 0, false, e.enums), nil
	}
	// `php` handler: name|value for each element, one slot less since the
	// outer array is gone.
	nodes := e.pp.nodes
	for c := int32(1); c < root.skip; c = nodes[c].skip {
		n := &nodes[c]
		if n.keyInt {
			out = strconv.AppendInt(out, n.knum, 10)
		} else {
			k := e.tagText[n.ks:n.ke]
			if err := handlerName(k); err != nil {
				return nil, err
			}
			out = append(out, k...)
		}
		out = append(out, '|')
		for j := c; j < n.skip; j++ {
			if r := &nodes[j]; (r.kind == pRef || r.kind == pObjRef) && r.num == 1 {
				return nil, fmt.Errorf("%w: a reference to the session array itself cannot be written in the php handler format", ErrUnencodable)
			}
		}
		out = e.pp.appendCanonical(out, c, -1, false, e.enums)
	}
	return out, nil
}

// handlerName rejects a name the `php` handler cannot write: PHP itself
// would write an empty session, losing everything.
func handlerName(k []byte) error {
	for _, b := range k {
		if b == '|' {
			return &KeyError{Key: string(k), Reason: "contains '|', which the php session handler format cannot hold"}
		}
	}
	return nil
}

// emit writes the JSON tree as PHP text.
func (e *encoder) emit(out []byte, mode encodeMode) ([]byte, error) {
	nodes := e.jp.nodes
	in := e.jp.in
	lim := e.jp.lim
	stack := e.stack[:0]
	defer func() { e.stack = stack[:0] }()
	e.slot = 1
	var err error
	i := int32(0)
	for {
		n := &nodes[i]
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			switch {
			case mode == modeHandler && len(stack) == 1:
				k := e.keyBytes(n)
				if top.list {
					k = strconv.AppendInt(e.str[:0], top.next, 10)
					top.next++
				}
				if err := handlerName(k); err != nil {
					return nil, err
				}
				if len(k) > lim.MaxStringLen {
					return nil, limitErr("string length", len(k), lim.MaxStringLen, int(n.ks))
				}
				out = append(out, k...)
				out = append(out, '|')
			case top.list:
				out = append(out, 'i', ':')
				out = strconv.AppendInt(out, top.next, 10)
				out = append(out, ';')
				top.next++
			default:
				k := e.keyBytes(n)
				if v, ok := numericKey(k); ok {
					out = append(out, 'i', ':')
					out = strconv.AppendInt(out, v, 10)
					out = append(out, ';')
				} else {
					if len(k) > lim.MaxStringLen {
						return nil, limitErr("string length", len(k), lim.MaxStringLen, int(n.ks))
					}
					out = appendPHPString(out, k)
				}
			}
		}
		next := n.skip
		switch n.kind {
		case jNull:
			out = append(out, 'N', ';')
			e.slot++
		case jFalse:
			out = append(out, "b:0;"...)
			e.slot++
		case jTrue:
			out = append(out, "b:1;"...)
			e.slot++
		case jNumber:
			if out, err = appendPHPNumber(out, in[n.start:n.end], n.isInt); err != nil {
				return nil, &SyntaxError{Offset: int(n.start), Msg: "json: " + err.Error()}
			}
			e.slot++
		case jString:
			s := in[n.start:n.end]
			if n.esc {
				e.str = unescape(e.str[:0], s)
				s = e.str
			}
			if len(s) > lim.MaxStringLen {
				return nil, limitErr("string length", len(s), lim.MaxStringLen, int(n.start))
			}
			out = appendPHPString(out, s)
			e.slot++
		case jArray, jObject:
			if n.kind == jObject && n.count == 1 && !(i == 0 && mode != modeValue) {
				if name, ok := e.tagName(i + 1); ok && (name == tagKey || name == tagKeyB64) {
					if out, err = e.appendTag(out, i+1, name, int(n.depth)); err != nil {
						return nil, err
					}
					break
				}
			}
			if n.kind == jObject && n.count > 1 {
				if err := e.checkDup(i); err != nil {
					return nil, err
				}
				if i == 0 && mode != modeValue {
					for c := int32(1); c < n.skip; c = nodes[c].skip {
						if name, ok := e.tagName(c); ok && (name == sessionTagKey || name == sessionTagKeyB64) {
							return nil, &SyntaxError{Offset: int(nodes[c].ks), Msg: "json: " + strconv.Quote(name) + " must be the only member of the session"}
						}
					}
				}
			}
			if i == 0 && mode == modeHandler {
				if n.count == 0 {
					return out, nil
				}
			} else {
				out = append(out, 'a', ':')
				out = strconv.AppendInt(out, int64(n.count), 10)
				out = append(out, ':', '{')
				e.slot++
				if n.count == 0 {
					out = append(out, '}')
					break
				}
			}
			stack = append(stack, cframe{idx: i, list: n.kind == jArray})
			next = i + 1
		}
		i = next
		for len(stack) > 0 && nodes[stack[len(stack)-1].idx].skip == i {
			if !(mode == modeHandler && len(stack) == 1) {
				out = append(out, '}')
			}
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			return out, nil
		}
	}
}

// appendTag writes the PHP text of the tag whose member node is m,
// renumbering its references from tag-relative to stream slots.
func (e *encoder) appendTag(out []byte, m int32, name string, depth int) ([]byte, error) {
	if err := e.loadTag(m, name, depth); err != nil {
		return nil, err
	}
	out = e.pp.appendCanonical(out, 0, e.slot-1, false, e.enums)
	e.slot += len(e.pp.slots) - 1
	return out, nil
}

// checkDup rejects a JSON object with two members of the same name; JSON
// readers disagree on which one wins, and PHP would silently keep one.
func (e *encoder) checkDup(i int32) error {
	nodes := e.jp.nodes
	in := e.jp.in
	end := nodes[i].skip
	esc := false
	for c := i + 1; c < end; c = nodes[c].skip {
		esc = esc || nodes[c].kesc
	}
	if !esc && nodes[i].count <= 16 {
		for a := i + 1; a < end; a = nodes[a].skip {
			ka := in[nodes[a].ks:nodes[a].ke]
			for b := nodes[a].skip; b < end; b = nodes[b].skip {
				if string(ka) == string(in[nodes[b].ks:nodes[b].ke]) {
					return &SyntaxError{Offset: int(nodes[b].ks), Msg: "json: duplicate member name"}
				}
			}
		}
		return nil
	}
	if e.seen == nil {
		e.seen = make(map[string]struct{})
	}
	clear(e.seen)
	for c := i + 1; c < end; c = nodes[c].skip {
		k := e.keyBytes(&nodes[c])
		if _, dup := e.seen[string(k)]; dup {
			return &SyntaxError{Offset: int(nodes[c].ks), Msg: "json: duplicate member name"}
		}
		e.seen[string(k)] = struct{}{}
	}
	return nil
}

func appendPHPString(out, s []byte) []byte {
	out = append(out, 's', ':')
	out = strconv.AppendInt(out, int64(len(s)), 10)
	out = append(out, ':', '"')
	out = append(out, s...)
	return append(out, '"', ';')
}

// appendPHPNumber writes a JSON number: an integer literal within int64
// becomes i:, anything else d: (an integer beyond int64 becomes a float,
// as PHP's json_decode does). NaN/Infinity/-Infinity become d:NAN; etc.
func appendPHPNumber(out, t []byte, isInt bool) ([]byte, error) {
	if isInt {
		if v, ok := parseInt64(t); ok {
			out = append(out, 'i', ':')
			out = strconv.AppendInt(out, v, 10)
			return append(out, ';'), nil
		}
	}
	var f float64
	switch string(t) {
	case "NaN":
		f = math.NaN()
	case "Infinity":
		f = math.Inf(1)
	case "-Infinity":
		f = math.Inf(-1)
	default:
		var err error
		f, err = strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", t)
		}
	}
	out = append(out, 'd', ':')
	out = appendPHPFloat(out, f)
	return append(out, ';'), nil
}

// parseInt64 parses a validated JSON integer literal; ok is false when it
// does not fit int64.
func parseInt64(t []byte) (int64, bool) {
	neg := t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range t {
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
