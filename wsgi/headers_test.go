package wsgi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
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

// TestReadLogins: X-Sessiongate-Logins is taken only when signed for this
// request's nonce, and then only within its bounds; users and hashes come
// back as the middleware wrote them.
func TestReadLogins(t *testing.T) {
	key := HeaderKey([]byte(testSecret))
	const nonce = "0123456789abcdef0123456789abcdef"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	signed := func(value string) http.Header {
		h := http.Header{}
		h.Set(hdrLogins, value)
		h.Set(hdrLoginsSig, LoginsSignature(key, nonce, value))
		return h
	}
	good := b64("42") + ":aa11,bb22 " + b64("jörg@example.org") + ":cc33 " + b64("deleted") + ":"
	got, err := readLogins(signed(good), key, nonce)
	if err != nil {
		t.Fatalf("signed report refused: %v", err)
	}
	want := []userLogins{{"42", []string{"aa11", "bb22"}}, {"jörg@example.org", []string{"cc33"}}, {"deleted", nil}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v, want %+v", got, want)
	}
	if _, err := readLogins(http.Header{}, key, nonce); !errors.Is(err, errNoChange) {
		t.Fatalf("no report: %v, want errNoChange", err)
	}
	otherNonce := signed(good)
	otherNonce.Set(hdrLoginsSig, LoginsSignature(key, "ffffffffffffffffffffffffffffffff", good))
	many := make([]string, maxLoginUsers+1)
	for i := range many {
		many[i] = b64(strconv.Itoa(i)) + ":h"
	}
	unsigned := http.Header{}
	unsigned.Set(hdrLogins, good)
	twice := signed(good)
	twice.Add(hdrLogins, good)
	for name, h := range map[string]http.Header{
		"unsigned":             unsigned,
		"another request's":    otherNonce,
		"signature alone":      {hdrLoginsSig: {"x"}},
		"given twice":          twice,
		"too many users":       signed(strings.Join(many, " ")),
		"too many hashes":      signed(b64("1") + ":" + strings.Repeat("h,", maxLoginHashes) + "h"),
		"empty hash":           signed(b64("1") + ":a,,b"),
		"control byte in hash": signed(b64("1") + ":a\x01"),
		"no user":              signed(":aa"),
		"user not base64":      signed("%%%:aa"),
		"user with a hash tag": signed(b64("{x}") + ":aa"),
		"no colon":             signed(b64("1")),
		"hash over 256 bytes":  signed(b64("1") + ":" + strings.Repeat("a", maxLoginHash+1)),
		"user over 255 bytes":  signed(b64(strings.Repeat("u", 256)) + ":aa"),
	} {
		if got, err := readLogins(h, key, nonce); err == nil || errors.Is(err, errNoChange) {
			t.Errorf("%s report read as %+v, %v; want it refused", name, got, err)
		}
	}
}
