package phpserial

import (
	"encoding/base64"
	"math"
	"strconv"
	"sync"
)

// Tag member names. A JSON object with exactly one member of one of these
// names is a tag, never an ordinary array.
const (
	tagKey           = "__php__"
	tagKeyB64        = "__php__b64"
	sessionTagKey    = "__php_session__"
	sessionTagKeyB64 = "__php_session__b64"
)

// decoder holds the reusable state of one PHP -> JSON conversion.
type decoder struct {
	p       parser
	elems   int
	scratch []byte
	stack   []eframe
}

type eframe struct {
	idx   int32
	list  bool
	first bool
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

func getDecoder(l Limits) *decoder {
	d := decoderPool.Get().(*decoder)
	d.elems = l.MaxElements
	return d
}

// putDecoder returns d to the pool unless it grew very large (one huge
// session must not pin its memory for ever).
func putDecoder(d *decoder) {
	if cap(d.p.nodes) > 1<<16 || cap(d.scratch) > 1<<20 {
		return
	}
	d.p.in = nil
	decoderPool.Put(d)
}

// DecodeSession converts a session in PHP's php_serialize format (the text
// of serialize($_SESSION), "a:N:{...}") to the shared JSON object. See the
// package documentation for the mapping.
func DecodeSession(phpSerialized []byte, l Limits) ([]byte, error) {
	l = l.norm()
	d, err := parseInput(phpSerialized, l)
	if err != nil {
		return nil, err
	}
	defer putDecoder(d)
	if d.p.nodes[0].kind != pArray {
		return nil, &SyntaxError{Offset: 0, Msg: "a php_serialize session must be an array (a:N:{...})"}
	}
	if err := d.analyze(true); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(phpSerialized)+len(phpSerialized)/8+16)
	if d.p.nodes[0].tag {
		out = d.appendSessionTag(out, 0, false)
	} else if out, err = d.emit(out, 0, true); err != nil {
		return nil, err
	}
	if len(out) > l.MaxBytes {
		return nil, limitErr("output size", len(out), l.MaxBytes, 0)
	}
	return out, nil
}

// DecodeValue converts the serialize() text of one PHP value to a JSON
// value. Unlike DecodeSession the result may be any JSON value, an empty
// array is [], and a value that JSON cannot hold is a {"__php__": ...} tag
// (references inside it count slots from 1 at the value itself).
func DecodeValue(phpSerialized []byte, l Limits) ([]byte, error) {
	l = l.norm()
	d, err := parseInput(phpSerialized, l)
	if err != nil {
		return nil, err
	}
	defer putDecoder(d)
	if err := d.analyze(false); err != nil {
		return nil, err
	}
	out, err := d.emit(make([]byte, 0, len(phpSerialized)+16), 0, false)
	if err != nil {
		return nil, err
	}
	if len(out) > l.MaxBytes {
		return nil, limitErr("output size", len(out), l.MaxBytes, 0)
	}
	return out, nil
}

// parseInput checks the input size and parses it with a pooled decoder,
// which the caller returns with putDecoder once done with the nodes.
func parseInput(phpSerialized []byte, l Limits) (*decoder, error) {
	if len(phpSerialized) > l.MaxBytes {
		return nil, limitErr("input size", len(phpSerialized), l.MaxBytes, 0)
	}
	d := getDecoder(l)
	d.p.reset(phpSerialized, 0, l, &d.elems)
	if err := d.p.parseRoot(); err != nil {
		putDecoder(d)
		return nil, err
	}
	return d, nil
}

func isTagName(b []byte, session bool) bool {
	switch string(b) {
	case tagKey, tagKeyB64:
		return true
	case sessionTagKey, sessionTagKeyB64:
		return session
	}
	return false
}

// analyze marks the nodes that must stay PHP text. A node is tagged when
// JSON cannot hold it (objects, enums, INF/NAN, non-UTF-8 strings),
// when it is an array JSON cannot key (a non-UTF-8 key) or that would read
// back as a tag (its only key is a tag name), and for every reference the
// smallest subtree holding both the reference and its target is tagged, so
// that every tag is self-contained and can be renumbered as a unit. When
// that subtree is the root (node 0), the whole session becomes one tag.
func (d *decoder) analyze(session bool) error {
	nodes := d.p.nodes
	in := d.p.in
	for i := range nodes {
		n := &nodes[i]
		switch n.kind {
		case pObject, pCustom, pEnum:
			n.tag = true
		case pFloat:
			f := math.Float64frombits(n.num)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				n.tag = true
			}
		case pString:
			if !validUTF8(in[n.vs:n.ve]) {
				n.tag = true
			}
		case pArray:
			if n.count == 1 {
				c := &nodes[i+1]
				if !c.keyInt && isTagName(in[c.ks:c.ke], session && i == 0) {
					n.tag = true
				}
			}
		case pObjRef, pRef:
			if d.p.enumTarget(int32(i)) >= 0 {
				n.tag = true // a use of an enum case: no link (enumTarget)
			} else {
				nodes[d.lca(int32(i), d.p.slots[n.num])].tag = true
			}
		}
		if n.parent >= 0 && !n.keyInt && n.ks >= 0 {
			k := in[n.ks:n.ke]
			if !validUTF8(k) {
				nodes[n.parent].tag = true
			}
			// "__php_session__" next to other keys would read back as a
			// broken whole-session tag: keep such a session whole.
			if session && n.parent == 0 && (string(k) == sessionTagKey || string(k) == sessionTagKeyB64) {
				nodes[0].tag = true
			}
		}
	}
	return nil
}

// lca returns the lowest common ancestor of nodes a and b (either may be
// an ancestor of the other).
func (d *decoder) lca(a, b int32) int32 {
	nodes := d.p.nodes
	for nodes[a].depth > nodes[b].depth {
		a = nodes[a].parent
	}
	for nodes[b].depth > nodes[a].depth {
		b = nodes[b].parent
	}
	for a != b {
		a, b = nodes[a].parent, nodes[b].parent
	}
	return a
}

// emit writes the subtree at root as JSON. In session mode the root is
// always a JSON object.
func (d *decoder) emit(out []byte, root int32, session bool) ([]byte, error) {
	nodes := d.p.nodes
	in := d.p.in
	stack := d.stack[:0]
	defer func() { d.stack = stack[:0] }()
	i := root
	for {
		n := &nodes[i]
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if !top.first {
				out = append(out, ',')
			}
			top.first = false
			if !top.list {
				if n.keyInt {
					out = append(out, '"')
					out = strconv.AppendInt(out, n.knum, 10)
					out = append(out, '"')
				} else {
					out = appendJSONString(out, in[n.ks:n.ke])
				}
				out = append(out, ':')
			}
		}
		next := n.skip
		if n.tag {
			out = d.appendTag(out, tagKey, tagKeyB64, i)
		} else {
			switch n.kind {
			case pNull:
				out = append(out, "null"...)
			case pBool:
				if n.num != 0 {
					out = append(out, "true"...)
				} else {
					out = append(out, "false"...)
				}
			case pInt:
				out = strconv.AppendInt(out, int64(n.num), 10)
			case pFloat:
				out = appendJSONFloat(out, math.Float64frombits(n.num))
			case pString:
				out = appendJSONString(out, in[n.vs:n.ve])
			case pArray:
				asObject := session && i == root
				switch {
				case n.count == 0 && asObject:
					out = append(out, '{', '}')
				case n.count == 0:
					out = append(out, '[', ']')
				default:
					list := n.list && !asObject
					if !list {
						out = append(out, '{')
					} else {
						out = append(out, '[')
					}
					stack = append(stack, eframe{idx: i, list: list, first: true})
					next = i + 1
				}
			default:
				// Objects, enums and references are always tagged.
				return nil, &SyntaxError{Offset: int(n.start), Msg: "internal: untagged PHP-only value"}
			}
		}
		i = next
		for len(stack) > 0 && nodes[stack[len(stack)-1].idx].skip == i {
			if stack[len(stack)-1].list {
				out = append(out, ']')
			} else {
				out = append(out, '}')
			}
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			return out, nil
		}
	}
}

// appendTag appends {"<key>":"<PHP text>"} for subtree i, renumbered so
// that slot 1 is the subtree's root, exactly as serialize() of that value
// alone would number it. Text that is not valid UTF-8 goes base64-encoded
// under keyB64.
func (d *decoder) appendTag(out []byte, key, keyB64 string, i int32) []byte {
	d.scratch = d.p.appendCanonical(d.scratch[:0], i, 1-int(d.p.nodes[i].slot), false, nil)
	return appendTagText(out, key, keyB64, d.scratch)
}

func appendTagText(out []byte, key, keyB64 string, text []byte) []byte {
	out = append(out, '{', '"')
	if validUTF8(text) {
		out = append(out, key...)
		out = append(out, '"', ':')
		out = appendJSONString(out, text)
	} else {
		out = append(out, keyB64...)
		out = append(out, '"', ':', '"')
		out = base64.StdEncoding.AppendEncode(out, text)
		out = append(out, '"')
	}
	return append(out, '}')
}

// appendSessionTag appends the whole-session tag: the session in
// php_serialize form. delta is 0 for php_serialize input and 1 for the php
// handler format (where the first value, not the outer array, is slot 1).
func (d *decoder) appendSessionTag(out []byte, delta int, numericNames bool) []byte {
	d.scratch = d.p.appendCanonical(d.scratch[:0], 0, delta, numericNames, nil)
	return appendTagText(out, sessionTagKey, sessionTagKeyB64, d.scratch)
}
