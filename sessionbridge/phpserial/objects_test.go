package phpserial

import (
	"slices"
	"testing"
)

// ObjectTags finds every tag that makes PHP build a class instance, however
// the JSON spells it, and nothing else.
func TestObjectTagsFindsEveryClassInstance(t *testing.T) {
	const obj = `O:8:"stdClass":0:{}`
	for _, c := range []struct {
		json string
		want []string
	}{
		{`{"a":1,"b":"O:8:\"stdClass\":0:{}"}`, nil}, // a string, not a tag
		{`{"a":{"__php__":"d:INF;"}}`, nil},
		{`{"a":{"__php__":"a:2:{i:0;i:1;i:1;R:2;}"}}`, nil},
		{`{"a":{"__php__":"O:8:\"stdClass\":0:{}"}}`, []string{obj}},
		{`{"a":{"__php__b64":"Tzo4OiJzdGRDbGFzcyI6MDp7fQ=="}}`, []string{obj}},
		{`{"a":{"\u005f_php__":"O:8:\"stdClass\":0:{}"}}`, []string{obj}},
		{`{"a":[1,{"x":{"__php__":"O:8:\"stdClass\":0:{}"}}]}`, []string{obj}},
		{`{"a":{"__php__":"a:1:{i:0;O:8:\"stdClass\":0:{}}"}}`, []string{`a:1:{i:0;O:8:"stdClass":0:{}}`}},
		{`{"a":{"__php__":"C:3:\"Foo\":0:{}"},"b":{"__php__":"E:6:\"Suit:H\";"}}`, []string{`C:3:"Foo":0:{}`, `E:6:"Suit:H";`}},
		{`{"__php_session__":"a:1:{s:1:\"o\";O:8:\"stdClass\":0:{}}"}`, []string{`a:1:{s:1:"o";O:8:"stdClass":0:{}}`}},
		// Only the session's sole member can be a whole-session tag.
		{`{"a":{"__php_session__":"O:8:\"stdClass\":0:{}"}}`, nil},
		{`{"a":{"__php__":"O:8:\"stdClass\":0:{}","b":1}}`, nil},
	} {
		got, err := ObjectTags([]byte(c.json), Limits{})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ObjectTags(%s) = %q, %v; want %q", c.json, got, err, c.want)
		}
	}
	if _, err := ObjectTags([]byte(`{"a":{"__php__":"O:bad"}}`), Limits{}); err == nil {
		t.Error("a malformed tag gave no error")
	}
}
