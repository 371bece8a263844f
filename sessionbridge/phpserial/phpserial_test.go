package phpserial

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// tag builds the JSON of a {"__php__": text} tag.
func tag(text string) string {
	b, _ := json.Marshal(text)
	return `{"__php__":` + strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b)) + `}`
}

func sessTag(text string) string {
	b, _ := json.Marshal(text)
	return `{"__php_session__":` + string(b) + `}`
}

// roundTrip cases: PHP text (as PHP writes it) <-> exact JSON, both ways.
var sessionCases = []struct {
	name, php, json string
}{
	{"empty", `a:0:{}`, `{}`},
	{"scalars", `a:6:{s:1:"n";N;s:1:"t";b:1;s:1:"f";b:0;s:1:"i";i:-42;s:1:"s";s:5:"hello";s:1:"e";s:0:"";}`,
		`{"n":null,"t":true,"f":false,"i":-42,"s":"hello","e":""}`},
	{"int limits", `a:2:{s:3:"max";i:9223372036854775807;s:3:"min";i:-9223372036854775808;}`,
		`{"max":9223372036854775807,"min":-9223372036854775808}`},
	{"top-level list stays an object", `a:2:{i:0;s:1:"a";i:1;s:1:"b";}`, `{"0":"a","1":"b"}`},
	{"floats", `a:9:{s:1:"a";d:0.1;s:1:"b";d:1;s:1:"c";d:1.0E+25;s:1:"d";d:1.0E-7;s:1:"e";d:1000000000000000;s:1:"f";d:10000000000000000;s:1:"g";d:-1.5;s:1:"h";d:0.0001;s:1:"i";d:0;}`,
		`{"a":0.1,"b":1.0,"c":1e+25,"d":1e-07,"e":1000000000000000.0,"f":1e+16,"g":-1.5,"h":0.0001,"i":0.0}`},
	{"special floats are tags", `a:4:{s:1:"a";d:INF;s:1:"b";d:-INF;s:1:"c";d:NAN;s:1:"d";d:-0;}`,
		`{"a":` + tag("d:INF;") + `,"b":` + tag("d:-INF;") + `,"c":` + tag("d:NAN;") + `,"d":-0.0}`},
	{"string escapes", "a:1:{s:1:\"s\";s:12:\"a\"b\\c\n\t\r\x01\x1f<&\";}", `{"s":"a\"b\\c\n\t\r\u0001\u001f<&"}`},
	{"unicode", "a:1:{s:2:\"\xc3\xa9\";s:4:\"\xf0\x9f\x98\x80\";}", "{\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}"},
	{"NUL in string", "a:1:{s:1:\"z\";s:3:\"a\x00b\";}", `{"z":"a\u0000b"}`},
	{"nested list", `a:1:{s:1:"l";a:3:{i:0;i:1;i:1;a:0:{}i:2;a:1:{i:0;a:0:{}}}}`, `{"l":[1,[],[[]]]}`},
	{"int keys not a list", `a:3:{s:1:"x";a:2:{i:1;s:1:"a";i:0;s:1:"b";}s:1:"y";a:2:{i:0;s:1:"a";i:2;s:1:"c";}i:-5;i:1;}`,
		`{"x":{"1":"a","0":"b"},"y":{"0":"a","2":"c"},"-5":1}`},
	{"numeric-looking string keys", `a:4:{s:2:"05";i:1;s:2:"-0";i:2;s:2:"+1";i:3;s:19:"9223372036854775808";i:4;}`,
		`{"05":1,"-0":2,"+1":3,"9223372036854775808":4}`},
	{"binary string is a b64 tag", "a:1:{s:1:\"b\";s:2:\"\xff\x00\";}", `{"b":{"__php__b64":"czoyOiL/ACI7"}}`},
	{"binary key tags its array", "a:2:{s:1:\"o\";a:1:{s:1:\"\x80\";i:1;}s:1:\"k\";i:2;}", `{"o":{"__php__b64":"YToxOntzOjE6IoAiO2k6MTt9"},"k":2}`},
	{"array with only __php__ key is a tag", `a:2:{s:1:"x";a:1:{s:7:"__php__";i:1;}s:1:"y";a:2:{s:7:"__php__";i:1;s:1:"z";i:2;}}`,
		`{"x":` + tag(`a:1:{s:7:"__php__";i:1;}`) + `,"y":{"__php__":1,"z":2}}`},
	{"objects", `a:2:{s:1:"o";O:1:"P":3:{s:1:"a";i:1;s:4:"` + "\x00*\x00" + `b";i:2;s:4:"` + "\x00P\x00" + `c";i:3;}s:1:"e";O:8:"stdClass":0:{}}`,
		`{"o":` + tag(`O:1:"P":3:{s:1:"a";i:1;s:4:"`+"\x00*\x00"+`b";i:2;s:4:"`+"\x00P\x00"+`c";i:3;}`) + `,"e":` + tag(`O:8:"stdClass":0:{}`) + `}`},
	{"serializable and enum", `a:2:{s:1:"c";C:3:"Foo":5:{hello}s:1:"e";E:6:"Suit:H";}`,
		`{"c":` + tag(`C:3:"Foo":5:{hello}`) + `,"e":` + tag(`E:6:"Suit:H";`) + `}`},
	// slots: 1 root, 2 p, 3 k, 4..6 elements; R:4 is k[0], relative 2.
	{"reference inside one key is renumbered", `a:2:{s:1:"p";i:1;s:1:"k";a:3:{i:0;i:1;i:1;i:2;i:2;R:4;}}`,
		`{"p":1,"k":` + tag(`a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}`) + `}`},
	// slots: 1 root, 2 d, 3 x, 4 p (object), 5 q; only x is tagged.
	{"smallest subtree is tagged", `a:1:{s:1:"d";a:2:{s:1:"x";a:2:{s:1:"p";O:8:"stdClass":0:{}s:1:"q";r:4;}s:1:"y";i:2;}}`,
		`{"d":{"x":` + tag(`a:2:{s:1:"p";O:8:"stdClass":0:{}s:1:"q";r:2;}`) + `,"y":2}}`},
	{"reference to its own array", `a:2:{s:1:"a";i:0;s:3:"lst";a:3:{i:0;i:1;i:1;i:2;i:2;R:3;}}`,
		`{"a":0,"lst":` + tag(`a:3:{i:0;i:1;i:1;i:2;i:2;R:1;}`) + `}`},
	{"reference across keys keeps the session whole", `a:3:{s:1:"a";i:1;s:1:"b";s:3:"two";s:1:"c";R:3;}`,
		sessTag(`a:3:{s:1:"a";i:1;s:1:"b";s:3:"two";s:1:"c";R:3;}`)},
	{"object twice across keys", `a:2:{s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:2;}`,
		sessTag(`a:2:{s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:2;}`)},
	// PHP writes a second use of an enum case as r: to the first (the case
	// is one object), which is no link: each is the same value on its own,
	// so Django still sees the keys, and PHP's text comes back.
	{"enum case under two keys", `a:2:{s:1:"a";E:6:"Suit:H";s:1:"b";a:1:{i:0;r:2;}}`,
		`{"a":` + tag(`E:6:"Suit:H";`) + `,"b":[` + tag(`E:6:"Suit:H";`) + `]}`},
	{"enum case twice in a list", `a:1:{s:1:"k";a:3:{i:0;E:6:"Suit:H";i:1;E:6:"Suit:S";i:2;r:3;}}`,
		`{"k":[` + tag(`E:6:"Suit:H";`) + `,` + tag(`E:6:"Suit:S";`) + `,` + tag(`E:6:"Suit:H";`) + `]}`},
	// slots: 1 root, 2 o, 3 o's s, 4 e.
	{"enum case in an object, then outside", `a:2:{s:1:"o";O:8:"stdClass":1:{s:1:"s";E:6:"Suit:H";}s:1:"e";r:3;}`,
		`{"o":` + tag(`O:8:"stdClass":1:{s:1:"s";E:6:"Suit:H";}`) + `,"e":` + tag(`E:6:"Suit:H";`) + `}`},
	// slots: 1 root, 2 e, 3 o, 4 o's s: the object's copy is r:2 again.
	{"enum case, then in an object", `a:2:{s:1:"e";E:6:"Suit:H";s:1:"o";O:8:"stdClass":1:{s:1:"s";r:2;}}`,
		`{"e":` + tag(`E:6:"Suit:H";`) + `,"o":` + tag(`O:8:"stdClass":1:{s:1:"s";E:6:"Suit:H";}`) + `}`},
	{"session whose only key is __php__", `a:1:{s:7:"__php__";i:1;}`, sessTag(`a:1:{s:7:"__php__";i:1;}`)},
	{"session with a __php_session__ key", `a:2:{s:15:"__php_session__";i:1;s:1:"x";i:2;}`, sessTag(`a:2:{s:15:"__php_session__";i:1;s:1:"x";i:2;}`)},
	{"binary top-level key", "a:1:{s:1:\"\xff\";i:1;}", `{"__php_session__b64":"YToxOntzOjE6Iv8iO2k6MTt9"}`},
}

func TestSessionRoundTrip(t *testing.T) {
	for _, c := range sessionCases {
		t.Run(c.name, func(t *testing.T) {
			if !json.Valid([]byte(c.json)) {
				t.Fatalf("test case JSON is invalid: %s", c.json)
			}
			got, err := DecodeSession([]byte(c.php), Limits{})
			if err != nil {
				t.Fatalf("DecodeSession(%q): %v", c.php, err)
			}
			if string(got) != c.json {
				t.Errorf("DecodeSession(%q)\n got %s\nwant %s", c.php, got, c.json)
			}
			back, err := EncodeSession([]byte(c.json), Limits{})
			if err != nil {
				t.Fatalf("EncodeSession(%s): %v", c.json, err)
			}
			if string(back) != c.php {
				t.Errorf("EncodeSession(%s)\n got %q\nwant %q", c.json, back, c.php)
			}
		})
	}
}

// JSON written by other applications -> PHP text.
func TestEncodeSession(t *testing.T) {
	for _, c := range []struct{ name, json, php string }{
		{"empty object", `{}`, `a:0:{}`},
		{"empty array", `[]`, `a:0:{}`},
		{"whitespace", " \t\n{ \"a\" : [ 1 , 2 ] }\r\n", `a:1:{s:1:"a";a:2:{i:0;i:1;i:1;i:2;}}`},
		{"top-level array", `["x","y"]`, `a:2:{i:0;s:1:"x";i:1;s:1:"y";}`},
		{"numbers", `{"a":1,"b":1.0,"c":1e2,"d":-0,"e":-0.0,"f":18446744073709551616,"g":0.1,"h":2.5E-3}`,
			`a:8:{s:1:"a";i:1;s:1:"b";d:1;s:1:"c";d:100;s:1:"d";i:0;s:1:"e";d:-0;s:1:"f";d:1.8446744073709552E+19;s:1:"g";d:0.1;s:1:"h";d:0.0025;}`},
		{"python non-finite literals", `{"a":NaN,"b":Infinity,"c":-Infinity}`, `a:3:{s:1:"a";d:NAN;s:1:"b";d:INF;s:1:"c";d:-INF;}`},
		{"integer keys", `{"5":1,"05":2,"-0":3,"-5":4,"9223372036854775808":5,"-9223372036854775808":6,"":7}`,
			`a:7:{i:5;i:1;s:2:"05";i:2;s:2:"-0";i:3;i:-5;i:4;s:19:"9223372036854775808";i:5;i:-9223372036854775808;i:6;s:0:"";i:7;}`},
		{"escapes", `{"\u0061":"\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t","lone":"\ud800x\udc00"}`,
			"a:2:{s:1:\"a\";s:14:\"\xc3\xa9\xf0\x9f\x98\x80/\"\\\b\f\n\r\t\";s:4:\"lone\";s:7:\"\xef\xbf\xbdx\xef\xbf\xbd\";}"},
		// x: slots 2..4, k: slot 5, its elements 6..8.
		{"tag is renumbered where it lands", `{"x":[1,2],"k":{"__php__":"a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}"}}`,
			`a:2:{s:1:"x";a:2:{i:0;i:1;i:1;i:2;}s:1:"k";a:3:{i:0;i:1;i:1;i:2;i:2;R:6;}}`},
		{"tag with escaped name", `{"k":{"\u005f_php__":"i:1;"}}`, `a:1:{s:1:"k";i:1;}`},
		{"b64 tag", `{"b":{"__php__b64":"czoyOiL/ACI7"}}`, "a:1:{s:1:\"b\";s:2:\"\xff\x00\";}"},
		{"slots after a tag", `{"t":{"__php__":"a:1:{i:0;O:8:\"stdClass\":0:{}}"},"u":{"__php__":"a:2:{i:0;O:8:\"stdClass\":0:{}i:1;r:2;}"}}`,
			`a:2:{s:1:"t";a:1:{i:0;O:8:"stdClass":0:{}}s:1:"u";a:2:{i:0;O:8:"stdClass":0:{}i:1;r:5;}}`},
		{"__php__ next to other members is a key", `{"x":{"__php__":1,"y":2}}`, `a:1:{s:1:"x";a:2:{s:7:"__php__";i:1;s:1:"y";i:2;}}`},
		{"nested __php_session__ is a key", `{"x":{"__php_session__":"a"}}`, `a:1:{s:1:"x";a:1:{s:15:"__php_session__";s:1:"a";}}`},
		{"__php__ tag at the root is the session", `{"__php__":"a:1:{s:1:\"a\";i:1;}"}`, `a:1:{s:1:"a";i:1;}`},
		{"session tag verbatim", `{"__php_session__":"a:2:{s:1:\"a\";O:8:\"stdClass\":0:{}s:1:\"b\";r:2;}"}`, `a:2:{s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:2;}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := EncodeSession([]byte(c.json), Limits{})
			if err != nil {
				t.Fatalf("EncodeSession(%s): %v", c.json, err)
			}
			if string(got) != c.php {
				t.Errorf("EncodeSession(%s)\n got %q\nwant %q", c.json, got, c.php)
			}
		})
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, c := range []struct{ php, json string }{
		{`N;`, `null`},
		{`i:5;`, `5`},
		{`d:0.5;`, `0.5`},
		{`s:1:"x";`, `"x"`},
		{`a:0:{}`, `[]`},
		{`a:1:{s:1:"a";i:1;}`, `{"a":1}`},
		{`O:8:"stdClass":0:{}`, tag(`O:8:"stdClass":0:{}`)},
		{`a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}`, tag(`a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}`)},
		{`a:1:{s:7:"__php__";i:1;}`, tag(`a:1:{s:7:"__php__";i:1;}`)},
	} {
		got, err := DecodeValue([]byte(c.php), Limits{})
		if err != nil || string(got) != c.json {
			t.Errorf("DecodeValue(%q) = %s, %v; want %s", c.php, got, err, c.json)
		}
		back, err := EncodeValue([]byte(c.json), Limits{})
		if err != nil || string(back) != c.php {
			t.Errorf("EncodeValue(%s) = %q, %v; want %q", c.json, back, err, c.php)
		}
	}
}

func TestPHPHandler(t *testing.T) {
	for _, c := range []struct{ name, php, json string }{
		{"empty", ``, `{}`},
		{"simple", `a|i:1;b|s:1:"x";`, `{"a":1,"b":"x"}`},
		{"numeric name stays a name", `5|i:1;`, `{"5":1}`},
		{"empty name", `|i:1;`, `{"":1}`},
		{"name with odd bytes", `a;b:c|N;`, `{"a;b:c":null}`},
		// The first value is slot 1 in this format.
		{"reference inside one value", `k|a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}after|s:1:"x";`,
			`{"k":` + tag(`a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}`) + `,"after":"x"}`},
		{"reference after another value", `p|i:0;k|a:3:{i:0;i:1;i:1;i:2;i:2;R:3;}`,
			`{"p":0,"k":` + tag(`a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}`) + `}`},
		{"across values: whole session in php_serialize form", `a|O:8:"stdClass":0:{}b|r:1;`,
			sessTag(`a:2:{s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:2;}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodePHPHandler([]byte(c.php), Limits{})
			if err != nil {
				t.Fatalf("DecodePHPHandler(%q): %v", c.php, err)
			}
			if string(got) != c.json {
				t.Errorf("DecodePHPHandler(%q)\n got %s\nwant %s", c.php, got, c.json)
			}
			back, err := EncodePHPHandler(got, Limits{})
			if err != nil {
				t.Fatalf("EncodePHPHandler(%s): %v", got, err)
			}
			if string(back) != c.php {
				t.Errorf("EncodePHPHandler(%s)\n got %q\nwant %q", got, back, c.php)
			}
		})
	}

	// Formats interoperate through the JSON.
	j, err := DecodeSession([]byte(`a:2:{i:7;s:1:"x";s:1:"k";a:3:{i:0;i:1;i:1;i:2;i:2;R:5;}}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := EncodePHPHandler(j, Limits{})
	if want := `7|s:1:"x";k|a:3:{i:0;i:1;i:1;i:2;i:2;R:4;}`; err != nil || string(h) != want {
		t.Errorf("EncodePHPHandler(%s) = %q, %v; want %q", j, h, err, want)
	}

	for _, c := range []struct{ json, key string }{
		{`{"a|b":1}`, "a|b"},
		{`{"ok":1,"|":2}`, "|"},
		{`{"__php_session__":"a:1:{s:3:\"x|y\";i:1;}"}`, "x|y"},
	} {
		_, err := EncodePHPHandler([]byte(c.json), Limits{})
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != c.key || !errors.Is(err, ErrUnencodable) {
			t.Errorf("EncodePHPHandler(%s) = %v; want a KeyError for %q", c.json, err, c.key)
		}
	}
	if _, err := EncodePHPHandler([]byte(`{"__php_session__":"a:2:{s:1:\"a\";i:1;s:1:\"b\";R:1;}"}`), Limits{}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("reference to the session array: %v, want ErrUnencodable", err)
	}
	for _, bad := range []string{`a|i:1;junk`, `a|i:1`, `a|x:1;`, `a|i:1;a|i:2;`} {
		if _, err := DecodePHPHandler([]byte(bad), Limits{}); err == nil {
			t.Errorf("DecodePHPHandler(%q) succeeded", bad)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	syntax := []string{
		``, `N`, `N;`, `i:1;`, `s:1:"a";`, // not an array
		`a:1:{`, `a:1:{i:0;`, `a:1:{i:0;i:1;`, `a:1:{i:0;i:1;}x`, `a:0:{}a:0:{}`,
		`a:1:{i:0;s:5:"abc";}`, `a:1:{i:0;s:2:"abc";}`, `a:1:{i:0;s:-1:"";}`, `a:1:{i:0;s:1:"a"}`,
		`a:1:{d:1.5;i:1;}`, `a:1:{N;i:1;}`, `a:1:{a:0:{}i:1;}`, `a:1:{b:1;i:1;}`,
		`a:2:{i:0;i:1;}`, `a:1:{i:0;i:1;i:1;i:2;}`, `a:x:{}`, `a:1{}`,
		`a:1:{i:0;i:9223372036854775808;}`, `a:1:{i:0;i:;}`, `a:1:{i:0;i:1a;}`,
		`a:1:{i:0;d:;}`, `a:1:{i:0;d:1e;}`, `a:1:{i:0;d:.;}`, `a:1:{i:0;d:inf;}`, `a:1:{i:0;d:+INF;}`, `a:1:{i:0;d:0x10;}`, `a:1:{i:0;d:1_0;}`,
		`a:1:{i:0;b:2;}`, `a:1:{i:0;X:1;}`, `a:1:{i:0;S:1:"a";}`,
		`a:1:{i:0;r:1;}`, `a:1:{i:0;r:2;}`, `a:1:{i:0;R:2;}`, `a:1:{i:0;R:0;}`, `a:2:{i:0;i:5;i:1;r:2;}`,
		`a:1:{i:0;E:3:"abc";}`, `a:1:{i:0;C:3:"Foo":3:{ab}}`, `a:1:{i:0;C:3:"Foo":1:{ab}}`, `a:1:{i:0;O:3:"Foo":1:{}}`,
		`a:2:{i:0;i:1;i:0;i:2;}`, `a:2:{s:1:"x";i:1;s:1:"x";i:2;}`, `a:2:{i:5;i:1;s:1:"5";i:2;}`,
		`a:900000:{}`, `a:1:{i:0;s:1000:"x";}`, `a:1:{i:0;C:1:"X":99999:{}}`,
	}
	for _, in := range syntax {
		_, err := DecodeSession([]byte(in), Limits{})
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("DecodeSession(%q) = %v; want a *SyntaxError", in, err)
		}
	}
	// Numbers past int64 (or uint64, while still reading digits) are refused
	// at the number's first byte, with the parser's own words.
	for in, want := range map[string]string{
		`a:1:{i:0;i:9223372036854775808;}`:     "integer out of range",
		`a:1:{i:0;i:-9223372036854775809;}`:    "integer out of range",
		`a:1:{i:0;i:99999999999999999999999;}`: "integer out of range",
		`a:99999999999999999999999:{}`:         "number too large",
		`a:1:{i:0;s:18446744073709551616:"";}`: "number too large",
	} {
		_, err := DecodeSession([]byte(in), Limits{})
		var se *SyntaxError
		if !errors.As(err, &se) || se.Msg != want {
			t.Errorf("DecodeSession(%q) = %v; want a *SyntaxError %q", in, err, want)
		}
	}
	// Every strict prefix of a valid session is an error.
	full := sessionCases[len(sessionCases)-5].php
	for i := 0; i < len(full); i++ {
		if _, err := DecodeSession([]byte(full[:i]), Limits{}); err == nil {
			t.Errorf("prefix %q decoded", full[:i])
		}
	}
}

func TestLimits(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("a:1:{i:0;", n) + "N;" + strings.Repeat("}", n) }
	deepJSON := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}` }
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"depth", func() error { _, err := DecodeSession([]byte(deep(65)), Limits{}); return err }},
		{"depth small", func() error { _, err := DecodeSession([]byte(deep(3)), Limits{MaxDepth: 2}); return err }},
		{"json depth", func() error { _, err := EncodeSession([]byte(deepJSON(65)), Limits{}); return err }},
		{"tag depth counts its position", func() error {
			_, err := EncodeSession([]byte(`{"a":[{"__php__":"a:1:{i:0;a:0:{}}"}]}`), Limits{MaxDepth: 3})
			return err
		}},
		{"elements", func() error {
			_, err := DecodeSession([]byte(`a:3:{i:0;i:1;i:1;i:2;i:2;i:3;}`), Limits{MaxElements: 3})
			return err
		}},
		{"json elements", func() error { _, err := EncodeSession([]byte(`{"a":[1,2,3]}`), Limits{MaxElements: 4}); return err }},
		{"declared count beyond budget", func() error { _, err := DecodeSession([]byte(`a:200000000:{}`), Limits{}); return err }},
		{"string length", func() error { _, err := DecodeSession([]byte(`a:1:{i:0;s:99999999999:"x";}`), Limits{}); return err }},
		{"string length small", func() error {
			_, err := DecodeSession([]byte(`a:1:{i:0;s:5:"hello";}`), Limits{MaxStringLen: 4})
			return err
		}},
		{"key length", func() error {
			_, err := DecodeSession([]byte(`a:1:{s:5:"hello";N;}`), Limits{MaxStringLen: 4})
			return err
		}},
		{"json string length", func() error { _, err := EncodeSession([]byte(`{"a":"hello"}`), Limits{MaxStringLen: 4}); return err }},
		{"json key length", func() error { _, err := EncodeSession([]byte(`{"hello":1}`), Limits{MaxStringLen: 4}); return err }},
		// DecodePHPHandler refuses this name with the same limits.
		{"php handler name length", func() error {
			_, err := EncodePHPHandler([]byte(`{"hello":1}`), Limits{MaxStringLen: 4})
			return err
		}},
		{"json depth past a tag-sized level", func() error {
			_, err := EncodeSession([]byte(`{"a":[{"b":1}]}`), Limits{MaxDepth: 2})
			return err
		}},
		{"json depth: not a tag", func() error {
			_, err := EncodeSession([]byte(`{"a":{"b":1}}`), Limits{MaxDepth: 1})
			return err
		}},
		{"json depth: tag holding an array one level too deep", func() error {
			_, err := EncodeSession([]byte(`{"a":{"__php__":"a:0:{}"}}`), Limits{MaxDepth: 1})
			return err
		}},
		{"input bytes", func() error { _, err := DecodeSession([]byte(deep(2)), Limits{MaxBytes: 10}); return err }},
		{"output bytes", func() error {
			_, err := DecodeSession([]byte("a:1:{i:0;s:8:\"\x00\x00\x00\x00\x00\x00\x00\x00\";}"), Limits{MaxBytes: 40})
			return err
		}},
	} {
		if err := c.f(); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: %v; want ErrLimit", c.name, err)
		}
	}
	if _, err := DecodeSession([]byte(deep(64)), Limits{}); err != nil {
		t.Errorf("depth 64 must pass: %v", err)
	}
	if _, err := EncodeSession([]byte(deepJSON(64)), Limits{}); err != nil {
		t.Errorf("JSON depth 64 must pass: %v", err)
	}
}

// TestTagAtMaxDepthRoundTrips: a PHP array at the depth limit may hold a
// value JSON writes as a tag; the tag object is one JSON level deeper than
// any PHP array, and EncodeSession must still take back what
// DecodeSession wrote.
func TestTagAtMaxDepthRoundTrips(t *testing.T) {
	deep := func(n int, leaf string) string { return strings.Repeat("a:1:{i:0;", n) + leaf + strings.Repeat("}", n) }
	for _, c := range []struct {
		php string
		l   Limits
	}{
		{deep(64, "d:INF;"), Limits{}},
		{deep(64, "s:1:\"\xff\";"), Limits{}},
		{deep(64, "d:-0;"), Limits{}},
		{`a:1:{s:1:"a";d:NAN;}`, Limits{MaxDepth: 1}},
		{`a:1:{s:1:"a";a:1:{i:0;E:6:"Suit:H";}}`, Limits{MaxDepth: 2}},
	} {
		j, err := DecodeSession([]byte(c.php), c.l)
		if err != nil {
			t.Errorf("DecodeSession(%.40q...): %v", c.php, err)
			continue
		}
		back, err := EncodeSession(j, c.l)
		if err != nil || string(back) != c.php {
			t.Errorf("EncodeSession(%.60s...) = %.40q, %v; want the input back", j, back, err)
		}
	}
}

// Declared sizes must not drive allocation: a tiny input claiming huge
// counts fails fast with little memory.
func TestHugeDeclaredSizesFailFast(t *testing.T) {
	inputs := []string{
		`a:200000000:{}`, `a:999999:{}`, `a:1:{i:0;a:999999:{}}`, `a:1:{i:0;s:16777216:"x";}`,
		`a:1:{i:0;O:3:"Foo":999999:{}}`, `a:1:{i:0;C:3:"Foo":16000000:{}}`, `a:2147483647:{}`, `a:99999999999999999999:{}`,
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, in := range inputs {
		for range 100 {
			if _, err := DecodeSession([]byte(in), Limits{}); err == nil {
				t.Fatalf("DecodeSession(%q) succeeded", in)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("800 rejected tiny inputs allocated %d bytes", got)
	}
}

func TestEncodeErrors(t *testing.T) {
	syntax := []string{
		``, ` `, `1`, `"x"`, `null`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `{"a":1}}`, `{"a":1} x`, `{a:1}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":-}`, `{"a":tru}`, `{"a":nan}`, `{"a":1e400}`,
		"{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":"unterminated}`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`,
		`{"a":{"__php__":1}}`, `{"a":{"__php__":"i:1"}}`, `{"a":{"__php__":"i:1;i:2;"}}`, `{"a":{"__php__b64":"!!"}}`,
		`{"a":{"__php__":"a:1:{i:0;R:2;}"}}`, `{"a":{"__php__":"a:1:{i:0;r:1;}"}}`,
		`{"__php_session__":"i:1;"}`, `{"__php_session__":"a:0:{}","x":1}`, `{"__php__":"s:1:\"a\";"}`,
	}
	for _, in := range syntax {
		_, err := EncodeSession([]byte(in), Limits{})
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("EncodeSession(%q) = %v; want a *SyntaxError", in, err)
		}
	}
}

// Python's repr() of these floats (checked with /usr/bin/python3), which
// the JSON side writes so Python and PHP both keep them floats.
func TestJSONFloatIsPythonRepr(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {-1.5, "-1.5"}, {0.1, "0.1"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"},
		{9999999999999998, "9999999999999998.0"}, {1e-4, "0.0001"}, {1e-5, "1e-05"}, {1.5e300, "1.5e+300"},
		{5e-324, "5e-324"}, {123456.789, "123456.789"}, {0.30000000000000004, "0.30000000000000004"},
	} {
		if got := string(appendJSONFloat(nil, c.f)); got != c.want {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", c.f, got, c.want)
		}
	}
}
