package wsgi

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
)

// FuzzReadChange: whatever change headers Django (or anything answering in
// its place) sends, readChange returns a change only if it is signed, and
// then with a known op and a bounded expiry; a change signed as the
// middleware signs it comes back as written, its data byte for byte.
func FuzzReadChange(f *testing.F) {
	f.Add("write", "1", "300", []byte(`{"a":1}`), "", uint16(0))
	f.Add("touch", "", "browser", []byte(nil), "1", uint16(1))
	f.Add("delete", "0", "default", []byte(nil), "4097", uint16(2))
	f.Add("write", "", "0300", []byte{0xff, 0}, "-1", uint16(3))
	key := HeaderKey([]byte(testSecret))
	const nonce = "0123456789abcdef0123456789abcdef"
	f.Fuzz(func(t *testing.T, op, rotate, expiry string, data []byte, count string, tamper uint16) {
		h := http.Header{}
		h.Set(hdrOp, op)
		h.Set(hdrRotate, rotate)
		h.Set(hdrExpiry, expiry)
		var signedData []byte
		if op == "write" {
			setData(h, data)
			signedData = data
		}
		h.Set(hdrSignature, ResponseSignature(key, nonce, op, rotate, expiry, signedData))
		c, err := readChange(h, key, nonce)
		if err == nil {
			if c.op != op || c.rotate != (rotate == "1") || !bytes.Equal(c.data, signedData) {
				t.Fatalf("signed %q/%q/%q %q read as %+v", op, rotate, expiry, data, c)
			}
			if c.expiry < 0 || c.expiry > maxExpiry || (c.browser || c.reset) && c.expiry != 0 {
				t.Fatalf("expiry %q read as %+v", expiry, c)
			}
		} else if op == "write" && (rotate == "" || rotate == "1") && (expiry == "" || expiry == "browser" || expiry == "default" || expiry == "600") {
			t.Fatalf("valid signed change %q/%q/%q refused: %v", op, rotate, expiry, err)
		}
		// Tampered headers never yield data the signature does not cover.
		if count != "" {
			h.Set(hdrDataCount, count)
		}
		switch tamper % 3 {
		case 1:
			h.Add(hdrData+strconv.Itoa(int(tamper)), "QQ==")
		case 2:
			h.Set(hdrSignature, ResponseSignature(key, nonce, op, rotate, expiry, append(signedData, 'x')))
		}
		if c, err := readChange(h, key, nonce); err == nil {
			if tamper%3 == 2 {
				t.Fatalf("tampered change accepted: %+v", c)
			}
			if !bytes.Equal(c.data, signedData) {
				t.Fatalf("data %q accepted for signed %q", c.data, signedData)
			}
		}
	})
}
