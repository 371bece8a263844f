// Package httpfield holds RFC 9110's rules for header field names and
// values, shared by the FastCGI response parser (what PHP sends) and the
// configuration (the headers an operator asks the gateway to add).
package httpfield

// ValidName reports whether name is an RFC 9110 token, as a field name
// or a request method must be.
func ValidName[T string | []byte](name T) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 0x80 || !isTokenChar[c] {
			return false
		}
	}
	return true
}

var isTokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// Control reports a byte a field value may not hold: a control character
// other than HTAB (RFC 9110 5.5).
func Control(c byte) bool {
	return c < 0x20 && c != '\t' || c == 0x7f
}

// ValidValue reports a value without such bytes.
func ValidValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if Control(v[i]) {
			return false
		}
	}
	return true
}

// CDNCacheControl are the fields, in canonical form, that tell one CDN
// how to cache a response, read by that CDN instead of Cache-Control:
// CDN-Cache-Control (RFC 9213, any CDN that follows it),
// Cloudflare-CDN-Cache-Control (Cloudflare only, and ahead of the former)
// and Surrogate-Control (Fastly, Akamai). Whatever keeps a response out of
// shared caches must look at them too.
var CDNCacheControl = [...]string{"Cdn-Cache-Control", "Cloudflare-Cdn-Cache-Control", "Surrogate-Control"}
