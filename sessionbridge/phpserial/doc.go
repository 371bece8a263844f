// Package phpserial converts between PHP's session formats and the JSON
// "shared data" that every application behind the gateway (PHP, Django)
// reads and writes. It is lossless for PHP: for any session PHP wrote,
// EncodeSession(DecodeSession(x)) returns x byte for byte, and PHP's
// unserialize() gives back the same values (the differential test checks
// both against the php CLI).
//
// # Formats
//
// php_serialize (the hot path: the gateway's prepend file sets
// session.serialize_handler=php_serialize) is the text of
// serialize($_SESSION): "a:N:{...}". The classic `php` handler format
// (name|value...) is supported by DecodePHPHandler / EncodePHPHandler.
// Both map to the same JSON, so a session written in one format can be
// read in the other.
//
// # Mapping (PHP -> JSON)
//
// The session is always a JSON object whose members are in PHP's key
// order (also when its keys are 0..n-1, and {} when it is empty). Inside it:
//
//   - null, true/false, integers -> the same JSON literal (int64 range).
//   - float -> a JSON number that always has a '.' or an exponent (1.0 ->
//     1.0, 1e25 -> 1e+25, -0.0 -> -0.0: Python's repr), so Python keeps it
//     a float (a negative zero too). INF, -INF and NAN become tags.
//   - string -> JSON string if valid UTF-8, else a tag.
//   - array with keys 0..n-1 in that order -> JSON array; any other array
//     -> JSON object, integer keys written as decimal strings; an empty
//     array -> [].
//   - objects (O:), Serializable objects (C:) and enums (E:) -> tags.
//
// A tag is {"__php__": "<PHP serialize text of the value>"} or, when that
// text is not valid UTF-8, {"__php__b64": "<standard base64 of it>"}.
// Other applications must treat tags as opaque and keep them unchanged.
// An array that JSON could hold but that would read back as a tag (its
// only key is "__php__" or "__php__b64"), or that has a key that is not
// valid UTF-8, is itself kept as a tag.
//
// # References
//
// r:n / R:n name a "slot": every value in the serialize stream takes the
// next slot in pre-order (arrays, objects, scalars, and r: itself), except
// R: and array keys, which take none; in php_serialize slot 1 is the outer
// array, in the php handler format slot 1 is the first value. Because slots
// are positions in the whole stream, a value holding a reference is only
// meaningful together with the reference's target. The decoder therefore
// tags the smallest subtree that contains both every reference and its
// target, and numbers the slots inside the tag text from 1 at the tag's own
// value, exactly as serialize() of that value alone would. The encoder
// shifts them back to the position where the tag lands, so JSON values
// added, removed or moved around the tag do not break it.
//
// An enum case is the exception: PHP writes every use of a case after the
// first as r: to it (a case is one object), but a case has no state to
// share, so such an r: links nothing. The decoder writes each use as the
// case's own tag, and the encoder writes the uses after the first as r:
// again, so PHP's text still comes back byte for byte, and a case kept
// under two keys does not make the whole session one opaque member.
//
// When that smallest subtree is the session itself (a reference between two
// top-level keys, such as $_SESSION['a'] = &$_SESSION['b'], or the same
// object stored under two keys), the whole session becomes a single
// top-level member {"__php_session__": "<php_serialize text>"} (or
// "__php_session__b64"). Other applications then see nothing of it, and
// must keep that member as the only one: EncodeSession rejects
// "__php_session__" next to other members. The same happens to a session
// whose only key is one of the four tag names.
//
// # Mapping (JSON -> PHP)
//
// Objects and arrays become PHP arrays; an object member name that PHP
// would store as an integer key ("5", "-3"; not "05", "+1", "-0", nor
// beyond int64) becomes an integer key, as PHP does itself. Integer
// literals within int64 become i:, other numbers d: (NaN, Infinity and
// -Infinity, which Python writes, are accepted). Strings are raw UTF-8;
// \u escapes of lone surrogates decode to U+FFFD. A member named
// "__php__" or "__php__b64" alone in its object is a tag: its PHP text is
// validated (a bad tag is an error, never a corrupted session) and
// renumbered. Duplicate member names are rejected.
//
// # Limits and errors
//
// Every declared length and count is checked against the Limits and the
// bytes actually left before it is used; nothing is allocated from a
// declared count, nesting is bounded by MaxDepth without recursion. Errors
// are *SyntaxError for malformed input, errors wrapping ErrLimit for
// exceeded limits, and *KeyError (wrapping ErrUnencodable) for names the
// php handler format cannot hold. The package never panics on any input.
package phpserial
