package phpserial

import "testing"

// TestNegativeZeroStaysANumber: -0.0 is a float JSON holds exactly ("-0.0":
// Python, PHP's json_decode, Go and JavaScript all read it back negative),
// so it must not become a tag. As a tag, a -0.0 Django stored came back to
// Django as a dict {"__php__": "d:-0;"} once PHP rewrote the member that
// holds it (a sibling changed), and the view's arithmetic on it failed.
func TestNegativeZeroStaysANumber(t *testing.T) {
	const django = `{"cart":{"balance":-0.0,"items":1}}`
	php, err := EncodeSession([]byte(django), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `a:1:{s:4:"cart";a:2:{s:7:"balance";d:-0;s:5:"items";i:1;}}`; string(php) != want {
		t.Fatalf("EncodeSession = %s, want %s", php, want)
	}
	back, err := DecodeSession(php, Limits{})
	if err != nil || string(back) != django {
		t.Errorf("DecodeSession(%s) = %s, %v; want %s", php, back, err, django)
	}
}
