package phpserial

// DecodePHPHandler converts a session in the classic `php` session handler
// format (name|value name|value ..., what session_encode() returns with
// session.serialize_handler=php) to the shared JSON object.
//
// Quirks of the format, matched here: a name is the raw bytes up to the
// first '|'; every name is a string key, also "5" (PHP keeps it as the
// string "5" in $_SESSION); reference slots count from 1 at the first
// value (there is no outer array). A session JSON cannot represent is kept
// whole in php_serialize form under "__php_session__", so either encoder
// can write it back. Unlike PHP, which ignores trailing bytes without a
// '|', such input is rejected.
func DecodePHPHandler(b []byte, l Limits) ([]byte, error) {
	l = l.norm()
	if len(b) > l.MaxBytes {
		return nil, limitErr("input size", len(b), l.MaxBytes, 0)
	}
	d := getDecoder(l)
	defer putDecoder(d)
	p := &d.p
	p.reset(b, 0, l, &d.elems)
	// A synthetic root stands for $_SESSION. It takes no slot.
	if _, err := p.addNode(pnode{kind: pArray, parent: -1, depth: 1, ks: -1, ke: -1}); err != nil {
		return nil, err
	}
	count := int32(0)
	for p.pos < len(b) {
		q := p.pos
		for q < len(b) && b[q] != '|' {
			q++
		}
		if q == len(b) {
			return nil, p.errAt(p.pos, "session data without a '|' after the name")
		}
		if q-p.pos > l.MaxStringLen {
			return nil, limitErr("string length", q-p.pos, l.MaxStringLen, p.pos)
		}
		ks := int32(p.pos)
		p.pos = q + 1
		if err := p.parseValue(0, pnode{ks: ks, ke: int32(q)}); err != nil {
			return nil, err
		}
		count++
	}
	root := &p.nodes[0]
	root.count, root.end, root.skip = count, int32(len(b)), int32(len(p.nodes))
	if err := p.checkDup(0); err != nil {
		return nil, err
	}
	if err := d.analyze(true); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(b)/8+16)
	if root.tag {
		// Rewrite as php_serialize: the outer array takes slot 1, so every
		// reference moves up by one.
		out = d.appendSessionTag(out, 1, true)
	} else {
		var err error
		if out, err = d.emit(out, 0, true); err != nil {
			return nil, err
		}
	}
	return checkOut(out, l)
}

// EncodePHPHandler converts the shared JSON object to the `php` session
// handler format. A name containing '|' cannot be written (PHP itself
// would write an empty session and lose everything): the result is a
// *KeyError naming it. Integer-like names ("5") are written as they are;
// PHP reads them back as string keys, exactly as from its own files (PHP
// itself would drop an integer key on writing).
func EncodePHPHandler(jsonObject []byte, l Limits) ([]byte, error) {
	return encode(jsonObject, l, modeHandler)
}
