package sessionbridge

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

var testFrameKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// sealLikePHP encrypts the way prepend.php does with openssl_encrypt:
// iv | tag | ciphertext.
func sealLikePHP(key [32]byte, plain string) []byte {
	block, _ := aes.NewCipher(key[:])
	gcm, _ := cipher.NewGCM(block)
	iv := []byte("twelve bytes")
	out := gcm.Seal(nil, iv, []byte(plain), nil)
	ct, tag := out[:len(out)-16], out[len(out)-16:]
	return append(append(append([]byte(nil), iv...), tag...), ct...)
}

// phpFrames renders a message the way prepend.php does, wrapped the way
// php-fpm wraps error_log() output.
func phpFrames(nonce string, seq int, op, id, payload string, chunk int) string {
	text := base64.StdEncoding.EncodeToString(sealLikePHP(testFrameKey, op+"\n"+id+"\n"+payload))
	var parts []string
	for len(text) > chunk {
		parts = append(parts, text[:chunk])
		text = text[chunk:]
	}
	parts = append(parts, text)
	var b strings.Builder
	for i, p := range parts {
		last := "0"
		if i == len(parts)-1 {
			last = "1"
		}
		fmt.Fprintf(&b, "; PHP message: @sg1:%s:%d:%s:%s#", nonce, seq, last, p)
	}
	return b.String()
}

func TestFrameScannerSplitsAnywhere(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	payload := strings.Repeat("x\x00y", 700)
	stream := "PHP message: hello" + phpFrames(nonce, 0, "write", "abc", payload, 100) + "; PHP message: bye" + phpFrames(nonce, 1, "close", "abc", "", 100)
	for step := 1; step <= len(stream); step += 37 {
		f := newFrameScanner(nonce, testFrameKey)
		var got []message
		var logged strings.Builder
		for i := 0; i < len(stream); i += step {
			msgs, rest := f.feed([]byte(stream[i:min(i+step, len(stream))]))
			got = append(got, msgs...)
			logged.Write(rest)
		}
		if len(f.errs) > 0 {
			t.Fatalf("step %d: errors %v", step, f.errs)
		}
		if len(got) != 2 || got[0].Op != "write" || got[0].ID != "abc" || string(got[0].Payload) != payload || got[1].Op != "close" {
			t.Fatalf("step %d: got %+v", step, got)
		}
		logged.Write(f.flushLog())
		if l := strings.NewReplacer("PHP message: ", "", "; ", "").Replace(logged.String()); l != "hellobye" {
			l := logged.String()
			t.Fatalf("step %d: log text %q", step, l)
		}
	}
}

func TestFrameScannerRejects(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	cases := map[string]string{
		"foreign nonce": phpFrames("ffffffffffffffffffffffffffffffff", 0, "write", "a", "x", 50),
		"truncated":     "PHP message: @sg1:" + nonce + ":0:1:QUJD..." + phpFrames(nonce, 1, "close", "a", "", 50),
		"bad base64":    "PHP message: @sg1:" + nonce + ":0:1:!!!!#",
		"no newline":    "PHP message: @sg1:" + nonce + ":0:1:" + base64.StdEncoding.EncodeToString(sealLikePHP(testFrameKey, "write")) + "#",
		"not sealed":    "PHP message: @sg1:" + nonce + ":0:1:" + base64.StdEncoding.EncodeToString([]byte("write\nabc\na:0:{}0123456789abcdef0123456789")) + "#",
		"wrong key":     "PHP message: @sg1:" + nonce + ":0:1:" + base64.StdEncoding.EncodeToString(sealLikePHP([32]byte{9}, "write\nabc\na:0:{}")) + "#",
	}
	for name, stream := range cases {
		f := newFrameScanner(nonce, testFrameKey)
		msgs, _ := f.feed([]byte(stream))
		for _, m := range msgs {
			if m.Op == "write" {
				t.Errorf("%s: accepted %+v", name, m)
			}
		}
		if len(f.errs) == 0 {
			t.Errorf("%s: no error reported", name)
		}
	}
}

func TestCleanLogKeepsUnprefixedText(t *testing.T) {
	if got := string(cleanLog([]byte("raw stderr; PHP message: a; PHP message: ; "))); got != "raw stderr; PHP message: a" {
		t.Fatalf("got %q", got)
	}
}

func TestIsInternalHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Sessiongate-Data": true, "x_sessiongate_data": true, "X-SESSIONGATE-": true,
		"X-Sessiongat": false, "X-Session": false, "Sessiongate-X": false,
	} {
		if got := isInternalHeader(name); got != want {
			t.Errorf("%q: got %v", name, got)
		}
	}
}

// headerFrameValue renders a message the way prepend.php puts it in the
// FrameHeader response header: the whole message in one frame.
func headerFrameValue(nonce string, seq int, op, id, payload string) string {
	text := base64.StdEncoding.EncodeToString(sealLikePHP(testFrameKey, op+"\n"+id+"\n"+payload))
	return fmt.Sprintf("@sg1:%s:%d:1:%s#", nonce, seq, text)
}

func TestHeaderFrameContinuesStderrSequence(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	f := newFrameScanner(nonce, testFrameKey)
	msgs, _ := f.feed([]byte(phpFrames(nonce, 0, "open", "abc", "", 800)))
	big := strings.Repeat("v", 300<<10) // far over php-fpm's log_limit: headers have none
	m, ok := f.headerFrame(headerFrameValue(nonce, 1, "write", "abc", big))
	if !ok || len(msgs) != 1 || msgs[0].Op != "open" || m.Op != "write" || string(m.Payload) != big || len(f.errs) > 0 {
		t.Fatalf("open %+v, write ok=%v op=%q len=%d, errs %v", msgs, ok, m.Op, len(m.Payload), f.errs)
	}
}

func TestHeaderFrameRejectsForgeries(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	good := headerFrameValue(nonce, 0, "write", "abc", "x")
	for name, v := range map[string]string{
		"foreign nonce": headerFrameValue("ffeeddccbbaa99887766554433221100", 0, "write", "abc", "x"),
		"no prefix":     strings.TrimPrefix(good, "@sg1:"),
		"no end":        strings.TrimSuffix(good, "#"),
		"not sealed":    fmt.Sprintf("@sg1:%s:0:1:%s#", nonce, base64.StdEncoding.EncodeToString([]byte("write\nabc\nx"))),
		"empty":         "",
	} {
		f := newFrameScanner(nonce, testFrameKey)
		if m, ok := f.headerFrame(v); ok || len(f.errs) == 0 {
			t.Errorf("%s: accepted %+v (errs %v)", name, m, f.errs)
		}
	}
}
