package phpserial

import (
	"math"
	"strconv"
)

// pkind is the type of one PHP serialize token.
type pkind uint8

const (
	pNull   pkind = iota // N;
	pBool                // b:0; b:1;
	pInt                 // i:42;
	pFloat               // d:0.1;
	pString              // s:3:"abc";
	pArray               // a:n:{...}
	pObject              // O:3:"Foo":n:{...}
	pCustom              // C:3:"Foo":n:{raw}
	pEnum                // E:6:"Suit:H";
	pObjRef              // r:n;  (object handle copy; takes a slot)
	pRef                 // R:n;  (PHP reference; takes no slot)
)

// pnode is one value of a parsed PHP serialize text. Nodes are stored in
// pre-order in one slice; a subtree is nodes[i:nodes[i].skip]. Offsets are
// into the parsed text. int32 keeps a node at 64 bytes; MaxBytes is capped
// accordingly.
type pnode struct {
	num    uint64 // pInt value, pFloat bits, pBool 0/1, ref target slot
	knum   int64  // key value when keyInt
	start  int32  // first byte of the value token
	end    int32  // one past its last byte
	vs, ve int32  // payload: string bytes (pString), float text (pFloat)
	ks, ke int32  // key bytes for string keys; ks < 0: no key (a root)
	skip   int32  // index of the first node after this subtree
	parent int32  // -1 for a root
	slot   int32  // reference slot number; 0 for R: and synthetic roots
	count  int32  // declared element count (pArray, pObject)
	depth  int32  // 1 for a root
	kind   pkind
	keyInt bool // the key is an integer (i: or a canonical numeric s:)
	list   bool // pArray whose keys are exactly 0..count-1 in order
	tag    bool // set by analysis: must be kept as PHP text
}

type pframe struct {
	idx       int32
	remaining int32
	next      int64 // next expected list key
	object    bool
}

// parser parses PHP serialize text into nodes. It never recurses (nesting is
// an explicit stack bounded by MaxDepth) and never allocates from a count
// the input declares: counts are checked against the bytes left and the
// element budget first.
type parser struct {
	in    []byte
	pos   int
	base  int // added to offsets in errors (tags inside JSON)
	lim   Limits
	elems *int // element budget shared by every parse in one call

	nodes []pnode
	slots []int32 // slots[s] = node index of reference slot s; slots[0] unused
	stack []pframe

	seenInt map[int64]struct{} // duplicate key detection in large arrays
	seenStr map[string]struct{}
}

func (p *parser) reset(in []byte, base int, lim Limits, elems *int) {
	p.in, p.pos, p.base, p.lim, p.elems = in, 0, base, lim, elems
	p.nodes = p.nodes[:0]
	p.slots = append(p.slots[:0], -1)
	p.stack = p.stack[:0]
}

func (p *parser) errAt(off int, msg string) error {
	return &SyntaxError{Offset: p.base + off, Msg: msg}
}

func (p *parser) truncated() error {
	return p.errAt(len(p.in), "unexpected end of PHP serialize data")
}

// expect consumes the literal s.
func (p *parser) expect(s string) error {
	if len(p.in)-p.pos < len(s) {
		return p.truncated()
	}
	for i := 0; i < len(s); i++ {
		if p.in[p.pos+i] != s[i] {
			return p.errAt(p.pos+i, "expected "+strconv.Quote(s))
		}
	}
	p.pos += len(s)
	return nil
}

// digits reads [0-9]+ at the current position. A value past MaxUint64 is
// reported at errPos with tooLarge.
func (p *parser) digits(errPos int, tooLarge string) (uint64, error) {
	start := p.pos
	var u uint64
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c < '0' || c > '9' {
			break
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, p.errAt(errPos, tooLarge)
		}
		u = u*10 + uint64(c-'0')
		p.pos++
	}
	if p.pos == start {
		if p.pos == len(p.in) {
			return 0, p.truncated()
		}
		return 0, p.errAt(p.pos, "expected a digit")
	}
	return u, nil
}

// uint reads [0-9]+ as a non-negative number no larger than max.
func (p *parser) uint(max int64) (int64, error) {
	start := p.pos
	u, err := p.digits(start, "number too large")
	if err != nil {
		return 0, err
	}
	if u > uint64(max) {
		return 0, p.errAt(start, "number too large")
	}
	return int64(u), nil
}

// int reads PHP's iv: [+-]?[0-9]+, which must fit int64.
func (p *parser) int() (int64, error) {
	start := p.pos
	neg := false
	if p.pos < len(p.in) && (p.in[p.pos] == '-' || p.in[p.pos] == '+') {
		neg = p.in[p.pos] == '-'
		p.pos++
	}
	u, err := p.digits(start, "integer out of range")
	if err != nil {
		return 0, err
	}
	if neg {
		if u > 1<<63 {
			return 0, p.errAt(start, "integer out of range")
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, p.errAt(start, "integer out of range")
	}
	return int64(u), nil
}

// quoted reads `<len>:"<len bytes>"` and returns the byte range.
func (p *parser) quoted() (int32, int32, error) {
	lstart := p.pos
	n, err := p.uint(math.MaxInt64 / 2)
	if err != nil {
		return 0, 0, err
	}
	if n > int64(p.lim.MaxStringLen) {
		return 0, 0, limitErr("string length", int(n), p.lim.MaxStringLen, p.base+lstart)
	}
	if err := p.expect(":\""); err != nil {
		return 0, 0, err
	}
	if int64(len(p.in)-p.pos) < n+1 {
		return 0, 0, p.errAt(lstart, "declared string length exceeds the data")
	}
	s := p.pos
	p.pos += int(n)
	if p.in[p.pos] != '"' {
		return 0, 0, p.errAt(p.pos, "string length does not match its closing quote")
	}
	p.pos++
	return int32(s), int32(p.pos - 1), nil
}

// float reads the text after "d:" up to and excluding ';', following PHP's
// grammar: NAN, INF, -INF, or [+-]? digits with an optional fraction and
// exponent (at least one digit before or after the point).
func (p *parser) float() (float64, int32, int32, error) {
	s := p.pos
	end := s
	for end < len(p.in) && p.in[end] != ';' {
		end++
	}
	if end == len(p.in) {
		return 0, 0, 0, p.truncated()
	}
	t := p.in[s:end]
	var f float64
	switch string(t) {
	case "NAN":
		f = math.NaN()
	case "INF":
		f = math.Inf(1)
	case "-INF":
		f = math.Inf(-1)
	default:
		if !validPHPFloat(t) {
			return 0, 0, 0, p.errAt(s, "malformed float")
		}
		v, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !isRangeErr(err) {
			return 0, 0, 0, p.errAt(s, "malformed float")
		}
		// Out of range: ParseFloat gives ±Inf or 0 like PHP's zend_strtod.
		f = v
	}
	p.pos = end
	return f, int32(s), int32(end), nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// validPHPFloat: [+-]? (digits | digits? "." digits | digits "." digits?)
// ([eE] [+-]? digits)?
func validPHPFloat(t []byte) bool {
	i := 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	digits := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
		digits++
	}
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		ed := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			ed++
		}
		if ed == 0 {
			return false
		}
	}
	return i == len(t)
}

// addNode appends a node after charging the element budget.
func (p *parser) addNode(n pnode) (int32, error) {
	if *p.elems <= 0 {
		return 0, limitErr("element count", p.lim.MaxElements+1, p.lim.MaxElements, p.base+int(n.start))
	}
	*p.elems--
	idx := int32(len(p.nodes))
	n.skip = idx + 1
	p.nodes = append(p.nodes, n)
	return idx, nil
}

// checkCount validates a declared element count before anything is read:
// it must fit the element budget and the bytes that are left (an element
// needs at least 6 bytes: "i:0;N;").
func (p *parser) checkCount(n int64, at int) error {
	if n > int64(*p.elems) {
		return limitErr("declared element count", int(min(n, math.MaxInt32)), *p.elems, p.base+at)
	}
	if n > int64(len(p.in)-p.pos)/6 {
		return p.errAt(at, "declared element count exceeds the data")
	}
	return nil
}

// parseRoot parses exactly one value spanning the whole input.
func (p *parser) parseRoot() error {
	if err := p.parseValue(-1, pnode{ks: -1, ke: -1}); err != nil {
		return err
	}
	if p.pos != len(p.in) {
		return p.errAt(p.pos, "trailing data after the value")
	}
	return nil
}

// parseValue parses one complete value at p.pos (nested values included)
// as a child of parent (-1: a root). key carries the key fields.
func (p *parser) parseValue(parent int32, key pnode) error {
	base := len(p.stack)
	for {
		if err := p.token(parent, key); err != nil {
			return err
		}
		// Close every container whose elements are all read.
		for len(p.stack) > base {
			top := &p.stack[len(p.stack)-1]
			if top.remaining > 0 {
				break
			}
			if p.pos >= len(p.in) {
				return p.truncated()
			}
			if p.in[p.pos] != '}' {
				return p.errAt(p.pos, "expected '}' after the declared number of elements")
			}
			p.pos++
			n := &p.nodes[top.idx]
			n.end = int32(p.pos)
			n.skip = int32(len(p.nodes))
			n.list = !top.object && top.next == int64(n.count)
			p.stack = p.stack[:len(p.stack)-1]
			if !top.object && !n.list && n.count > 1 {
				if err := p.checkDup(top.idx); err != nil {
					return err
				}
			}
		}
		if len(p.stack) == base {
			return nil
		}
		top := &p.stack[len(p.stack)-1]
		top.remaining--
		parent = top.idx
		var err error
		key, err = p.key(top)
		if err != nil {
			return err
		}
	}
}

// key parses an array key or object property name: i: or s: only.
func (p *parser) key(f *pframe) (pnode, error) {
	k := pnode{ks: -1, ke: -1}
	if len(p.in)-p.pos < 2 {
		return k, p.truncated()
	}
	at := p.pos
	switch {
	case p.in[p.pos] == 'i' && p.in[p.pos+1] == ':':
		p.pos += 2
		v, err := p.int()
		if err != nil {
			return k, err
		}
		if err := p.expect(";"); err != nil {
			return k, err
		}
		k.keyInt, k.knum = true, v
	case p.in[p.pos] == 's' && p.in[p.pos+1] == ':':
		p.pos += 2
		s, e, err := p.quoted()
		if err != nil {
			return k, err
		}
		if err := p.expect(";"); err != nil {
			return k, err
		}
		k.ks, k.ke = s, e
		if !f.object {
			// PHP turns canonical numeric string keys into integers.
			if v, ok := numericKey(p.in[s:e]); ok {
				k.keyInt, k.knum = true, v
			}
		}
	default:
		return k, p.errAt(at, "array key must be an integer or a string")
	}
	if k.keyInt && f.next >= 0 && k.knum == f.next {
		f.next++
	} else {
		f.next = -1
	}
	return k, nil
}

// token parses one value token; containers are pushed on the stack.
func (p *parser) token(parent int32, key pnode) error {
	n := key
	n.start = int32(p.pos)
	n.parent = parent
	n.depth = 1
	if parent >= 0 {
		n.depth = p.nodes[parent].depth + 1
	}
	if len(p.in)-p.pos < 2 {
		return p.truncated()
	}
	c := p.in[p.pos]
	if c == 'N' {
		if p.in[p.pos+1] != ';' {
			return p.errAt(p.pos+1, "expected ';' after N")
		}
		p.pos += 2
		n.kind = pNull
		return p.finishScalar(n)
	}
	if p.in[p.pos+1] != ':' {
		return p.errAt(p.pos+1, "expected ':' after the type letter")
	}
	p.pos += 2
	switch c {
	case 'b':
		if len(p.in)-p.pos < 2 {
			return p.truncated()
		}
		v := p.in[p.pos]
		if v != '0' && v != '1' || p.in[p.pos+1] != ';' {
			return p.errAt(p.pos, "malformed bool")
		}
		p.pos += 2
		n.kind, n.num = pBool, uint64(v-'0')
		return p.finishScalar(n)
	case 'i':
		v, err := p.int()
		if err != nil {
			return err
		}
		if err := p.expect(";"); err != nil {
			return err
		}
		n.kind, n.num = pInt, uint64(v)
		return p.finishScalar(n)
	case 'd':
		f, s, e, err := p.float()
		if err != nil {
			return err
		}
		p.pos++ // ';'
		n.kind, n.num, n.vs, n.ve = pFloat, math.Float64bits(f), s, e
		return p.finishScalar(n)
	case 's':
		s, e, err := p.quoted()
		if err != nil {
			return err
		}
		if err := p.expect(";"); err != nil {
			return err
		}
		n.kind, n.vs, n.ve = pString, s, e
		return p.finishScalar(n)
	case 'E':
		s, e, err := p.quoted()
		if err != nil {
			return err
		}
		colon := false
		for _, b := range p.in[s:e] {
			colon = colon || b == ':'
		}
		if !colon {
			return p.errAt(int(s), "enum name lacks ':'")
		}
		if err := p.expect(";"); err != nil {
			return err
		}
		n.kind, n.vs, n.ve = pEnum, s, e
		return p.finishScalar(n)
	case 'r', 'R':
		at := p.pos
		v, err := p.uint(math.MaxInt32)
		if err != nil {
			return err
		}
		if err := p.expect(";"); err != nil {
			return err
		}
		n.num = uint64(v)
		if c == 'R' {
			n.kind = pRef
			if v < 1 || v >= int64(len(p.slots)) {
				return p.errAt(at, "reference to an unknown slot")
			}
		} else {
			n.kind = pObjRef
			// r: must name an earlier slot holding an object; PHP's
			// unserialize fails otherwise.
			if v < 1 || v >= int64(len(p.slots)) {
				return p.errAt(at, "object reference to an unknown slot")
			}
			switch p.nodes[p.slots[v]].kind {
			case pObject, pCustom, pEnum, pObjRef:
			default:
				return p.errAt(at, "object reference to a slot that is not an object")
			}
		}
		return p.finishScalar(n)
	case 'a':
		cnt, err := p.memberCount()
		if err != nil {
			return err
		}
		n.kind, n.count = pArray, int32(cnt)
		return p.open(n, false)
	case 'O':
		s, e, err := p.className()
		if err != nil {
			return err
		}
		cnt, err := p.memberCount()
		if err != nil {
			return err
		}
		n.kind, n.count, n.vs, n.ve = pObject, int32(cnt), s, e
		return p.open(n, true)
	case 'C':
		s, e, err := p.className()
		if err != nil {
			return err
		}
		at := p.pos
		plen, err := p.uint(math.MaxInt64 / 2)
		if err != nil {
			return err
		}
		if plen > int64(p.lim.MaxStringLen) {
			return limitErr("Serializable payload length", int(plen), p.lim.MaxStringLen, p.base+at)
		}
		if err := p.expect(":{"); err != nil {
			return err
		}
		if int64(len(p.in)-p.pos) < plen+1 {
			return p.errAt(at, "declared payload length exceeds the data")
		}
		p.pos += int(plen)
		if p.in[p.pos] != '}' {
			return p.errAt(p.pos, "payload length does not match its closing '}'")
		}
		p.pos++
		n.kind, n.vs, n.ve = pCustom, s, e
		return p.finishScalar(n)
	}
	return p.errAt(int(n.start), "unknown type letter "+strconv.QuoteRune(rune(c)))
}

// memberCount reads the "<count>:{" that opens an array or an object and
// checks the count against the limits and the data left.
func (p *parser) memberCount() (int64, error) {
	at := p.pos
	cnt, err := p.uint(math.MaxInt64 / 2)
	if err != nil {
		return 0, err
	}
	if err := p.expect(":{"); err != nil {
		return 0, err
	}
	return cnt, p.checkCount(cnt, at)
}

// className reads the quoted class name and its ':' in front of an object's
// members or a Serializable's payload.
func (p *parser) className() (int32, int32, error) {
	s, e, err := p.quoted()
	if err != nil {
		return 0, 0, err
	}
	return s, e, p.expect(":")
}

func (p *parser) takeSlot(n *pnode) {
	n.slot = int32(len(p.slots))
	p.slots = append(p.slots, int32(len(p.nodes)))
}

func (p *parser) finishScalar(n pnode) error {
	n.end = int32(p.pos)
	if n.kind != pRef {
		p.takeSlot(&n)
	}
	_, err := p.addNode(n)
	return err
}

func (p *parser) open(n pnode, object bool) error {
	if int(n.depth) > p.lim.MaxDepth {
		return limitErr("nesting depth", int(n.depth), p.lim.MaxDepth, p.base+int(n.start))
	}
	p.takeSlot(&n)
	idx, err := p.addNode(n)
	if err != nil {
		return err
	}
	p.stack = append(p.stack, pframe{idx: idx, remaining: n.count, object: object})
	return nil
}

// numericKey reports whether a string key is one PHP stores as an integer:
// "0", or an optional '-' then a non-zero digit and more digits, within
// int64 ("-0", "05", "+1", " 1" stay strings).
func numericKey(b []byte) (int64, bool) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	if digits[0] == '0' {
		return 0, len(b) == 1
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	return parseInt64(b)
}

// appendCanonical appends subtree i as PHP's serialize() writes it, with
// every r:/R: slot number shifted by delta. For text PHP wrote this is the
// same bytes; other accepted spellings are normalized (i:+5 -> i:5, d:1.0
// -> d:1, array key s:1:"5" -> i:5), so a tag has one text per value and
// a round trip is a fixed point. In numericNames mode the children of node
// i are session names from the `php` handler format and numeric ones
// become integer keys, as PHP's unserialize() would make them.
//
// An r: naming an enum case is written as the case itself (appendEnum):
// the decoder keeps each use of a case as a value of its own. With enums
// non-nil (the encoder, which shares it across one output) a case already
// written is written as r: to its first slot instead, as serialize() does.
func (p *parser) appendCanonical(dst []byte, i int32, delta int, numericNames bool, enums map[string]int) []byte {
	nodes := p.nodes
	in := p.in
	end := nodes[i].skip
	var open [8]int32 // skip indexes of the containers being written
	stack := open[:0]
	for j := i; j < end; j++ {
		for len(stack) > 0 && stack[len(stack)-1] <= j {
			dst = append(dst, '}')
			stack = stack[:len(stack)-1]
		}
		n := &nodes[j]
		if j != i {
			switch {
			case n.keyInt:
				dst = append(dst, 'i', ':')
				dst = strconv.AppendInt(dst, n.knum, 10)
				dst = append(dst, ';')
			case numericNames && n.parent == i:
				if v, ok := numericKey(in[n.ks:n.ke]); ok {
					dst = append(dst, 'i', ':')
					dst = strconv.AppendInt(dst, v, 10)
					dst = append(dst, ';')
					break
				}
				dst = appendPHPString(dst, in[n.ks:n.ke])
			default:
				dst = appendPHPString(dst, in[n.ks:n.ke])
			}
		}
		switch n.kind {
		case pNull:
			dst = append(dst, 'N', ';')
		case pBool:
			dst = append(dst, 'b', ':', byte('0'+n.num), ';')
		case pInt:
			dst = append(dst, 'i', ':')
			dst = strconv.AppendInt(dst, int64(n.num), 10)
			dst = append(dst, ';')
		case pFloat:
			dst = append(dst, 'd', ':')
			dst = appendPHPFloat(dst, math.Float64frombits(n.num))
			dst = append(dst, ';')
		case pString:
			dst = appendPHPString(dst, in[n.vs:n.ve])
		case pArray, pObject:
			if n.kind == pArray {
				dst = append(dst, 'a', ':')
			} else {
				dst = append(dst, 'O', ':')
				dst = strconv.AppendInt(dst, int64(n.ve-n.vs), 10)
				dst = append(dst, ':', '"')
				dst = append(dst, in[n.vs:n.ve]...)
				dst = append(dst, '"', ':')
			}
			dst = strconv.AppendInt(dst, int64(n.count), 10)
			dst = append(dst, ':', '{')
			stack = append(stack, n.skip)
		case pCustom:
			dst = append(dst, in[n.start:n.end]...)
		case pEnum:
			dst = p.appendEnum(dst, j, j, delta, enums)
		case pObjRef, pRef:
			if t := p.enumTarget(j); t >= 0 {
				dst = p.appendEnum(dst, j, t, delta, enums)
				break
			}
			dst = append(dst, in[n.start], ':')
			dst = strconv.AppendInt(dst, int64(n.num)+int64(delta), 10)
			dst = append(dst, ';')
		}
	}
	for range stack {
		dst = append(dst, '}')
	}
	return dst
}

// enumTarget returns the enum case node that r: node i names (through r:
// to r:), or -1 when i is no r: or names an object. PHP writes every use
// of an enum case after the first as r: to it, because a case is one
// object; but a case has no state, so such an r: links nothing: unlike an
// object's, it reads back the same written as the case itself.
func (p *parser) enumTarget(i int32) int32 {
	nodes := p.nodes
	if nodes[i].kind != pObjRef {
		return -1
	}
	// Each r: names an earlier slot, so the walk ends.
	for nodes[i].kind == pObjRef {
		i = p.slots[nodes[i].num]
	}
	if nodes[i].kind != pEnum {
		return -1
	}
	return i
}

// appendEnum appends the enum case of node t for node j (t itself or an
// r: naming it), or, when enums already holds the case, r: to the slot
// where it was first written (serialize()'s text); j's slot, shifted by
// delta, is recorded otherwise.
func (p *parser) appendEnum(dst []byte, j, t int32, delta int, enums map[string]int) []byte {
	c := &p.nodes[t]
	if enums != nil {
		name := string(p.in[c.vs:c.ve])
		if first, ok := enums[name]; ok {
			dst = append(dst, 'r', ':')
			dst = strconv.AppendInt(dst, int64(first), 10)
			return append(dst, ';')
		}
		enums[name] = int(p.nodes[j].slot) + delta
	}
	return append(dst, p.in[c.start:c.end]...)
}

// checkDup rejects an array with two equal keys. PHP never writes one (its
// arrays cannot hold one); accepting it would produce JSON with duplicate
// members, which readers resolve differently, or tags that do not survive
// a round trip.
func (p *parser) checkDup(i int32) error {
	nodes := p.nodes
	in := p.in
	end := nodes[i].skip
	if nodes[i].count <= 16 {
		for a := i + 1; a < end; a = nodes[a].skip {
			for b := nodes[a].skip; b < end; b = nodes[b].skip {
				x, y := &nodes[a], &nodes[b]
				if x.keyInt != y.keyInt {
					continue
				}
				if x.keyInt && x.knum == y.knum || !x.keyInt && string(in[x.ks:x.ke]) == string(in[y.ks:y.ke]) {
					return p.errAt(int(y.start), "duplicate array key")
				}
			}
		}
		return nil
	}
	if p.seenInt == nil {
		p.seenInt = make(map[int64]struct{})
		p.seenStr = make(map[string]struct{})
	}
	clear(p.seenInt)
	clear(p.seenStr)
	for a := i + 1; a < end; a = nodes[a].skip {
		x := &nodes[a]
		dup := false
		if x.keyInt {
			_, dup = p.seenInt[x.knum]
			p.seenInt[x.knum] = struct{}{}
		} else {
			_, dup = p.seenStr[string(in[x.ks:x.ke])]
			if !dup {
				p.seenStr[string(in[x.ks:x.ke])] = struct{}{}
			}
		}
		if dup {
			return p.errAt(int(x.start), "duplicate array key")
		}
	}
	return nil
}
