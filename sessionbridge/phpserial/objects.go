package phpserial

import "bytes"

// ObjectTags returns the PHP text of every tag in the JSON session
// jsonObject that builds an instance of a class when PHP reads the session:
// one holding an object (O:), a Serializable (C:) or an enum case (E:) at
// any depth. Tags are matched as EncodeSession matches them (escaped names,
// "__php__b64", a whole-session tag), and the text is the decoded PHP text,
// so two spellings of one tag give the same string.
//
// PHP runs code of the named class while it unserializes (__wakeup,
// __unserialize, Serializable::unserialize, and __destruct later), and its
// session reader takes any class. So only PHP may put such a tag into the
// session: an application that only holds JSON (Django) must hand back the
// tags it was given unchanged, and a caller compares the ObjectTags of what
// it wrote with those of what it was given (wsgi does) to refuse a tag that
// came from the application's input instead.
func ObjectTags(jsonObject []byte, l Limits) ([]string, error) {
	// Every tag name contains "__php"; a JSON text can only spell it
	// otherwise with a \u escape.
	if !bytes.Contains(jsonObject, []byte("__php")) && !bytes.Contains(jsonObject, []byte(`\u`)) {
		return nil, nil
	}
	l = l.norm()
	if len(jsonObject) > l.MaxBytes {
		return nil, limitErr("input size", len(jsonObject), l.MaxBytes, 0)
	}
	e := getEncoder(l)
	defer putEncoder(e)
	e.jp.reset(jsonObject, l, &e.elems)
	e.jp.session = true
	if err := e.jp.parse(); err != nil {
		return nil, err
	}
	var tags []string
	for i := int32(0); i < int32(len(e.jp.nodes)); i++ {
		n := e.jp.nodes[i]
		if n.kind != jObject || n.count != 1 {
			continue
		}
		name, ok := e.tagName(i + 1)
		// As in encode: the session's only member may be any tag name, a
		// nested object's only the value tags.
		if !ok || i > 0 && name != tagKey && name != tagKeyB64 {
			continue
		}
		if err := e.loadTag(i+1, name, int(n.depth)); err != nil {
			return nil, err
		}
		for _, pn := range e.pp.nodes {
			if pn.kind == pObject || pn.kind == pCustom || pn.kind == pEnum {
				tags = append(tags, string(e.tagText))
				break
			}
		}
	}
	return tags, nil
}
