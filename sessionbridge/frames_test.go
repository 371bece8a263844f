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

// Frame-like text without this request's nonce (a client's input the app
// logs) must not swallow the app's stderr that follows it, however long.
func TestForeignFrameTextDoesNotHideLaterStderr(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	f := newFrameScanner(nonce, testFrameKey)
	var logged strings.Builder
	_, rest := f.feed([]byte("PHP message: login failed for @sg1:mallory"))
	logged.Write(rest)
	for i := 0; i < 100; i++ {
		_, rest = f.feed([]byte(fmt.Sprintf("; PHP message: warning %d %s", i, strings.Repeat("w", 1000))))
		logged.Write(rest)
	}
	logged.Write(f.flushLog())
	for _, want := range []string{"@sg1:mallory", "warning 0 ", "warning 99 "} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("%q missing from the logged stderr (%d bytes logged)", want, logged.Len())
		}
	}
	if f.lost || f.cutShort() {
		t.Errorf("foreign text counted as a lost message: lost %v, cut short %v", f.lost, f.cutShort())
	}
}

// Frame-like text that cannot be this request's frame (its nonce differs
// from the start) is the app's stderr: feed returns it as it comes, so it
// goes through the transport's per-request stderr log budget with the rest.
// Held back until the end of the request instead, up to maxPending of
// stderr came out of flushLog as one line the budget never saw (a client
// whose input the app logs could turn the 4 KiB bound into 64 KiB per
// request), and after everything logged meanwhile.
func TestForeignFrameTextIsNotHeldBack(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	f := newFrameScanner(nonce, testFrameKey)
	var asItCame strings.Builder
	_, rest := f.feed([]byte("PHP message: login failed for @sg1:mallory"))
	asItCame.Write(rest)
	for i := 0; i < 20; i++ {
		_, rest = f.feed([]byte(fmt.Sprintf("; PHP message: warning %d %s", i, strings.Repeat("w", 1000))))
		asItCame.Write(rest)
	}
	for _, want := range []string{"@sg1:mallory", "warning 0 ", "warning 19 "} {
		if !strings.Contains(asItCame.String(), want) {
			t.Errorf("%q not returned by feed as it came (%d bytes returned)", want, asItCame.Len())
		}
	}
	if held := f.flushLog(); len(held) > len(framePrefix)+len(phpMessage)+2 {
		t.Errorf("%d bytes held back to the end of the request", len(held))
	}
	// A frame of this request after such text still comes through.
	msgs, _ := f.feed([]byte("; PHP message: " + phpFrames(nonce, 0, "close", "abc", "", 1000)))
	if len(msgs) != 1 || msgs[0].Op != "close" || f.lost {
		t.Errorf("this request's frame after foreign text: %+v, lost %v, errors %v", msgs, f.lost, f.errs)
	}
}

// FuzzFrameScanner: messages PHP sends over stderr, with the app's own log
// text around them and php-fpm's records cut anywhere, come out whole and
// in order; the scanner never holds more than maxPending back.
func FuzzFrameScanner(f *testing.F) {
	f.Add("hello", `a:1:{s:1:"k";s:1:"v";}`, "bye", uint8(100), []byte{1, 37, 200})
	f.Add("", "", "", uint8(1), []byte{0})
	f.Add("user @sg1:x", "x\x00y", "@sg1:ff#", uint8(7), []byte{3, 5, 250})
	f.Add("PHP message: ; ", "", "; PHP", uint8(255), []byte{})
	f.Fuzz(func(t *testing.T, pre, payload, mid string, chunk uint8, cuts []byte) {
		const nonce = "00112233445566778899aabbccddeeff"
		if strings.Contains(pre+mid, nonce) || strings.Contains(pre+mid, "#") {
			t.Skip("app text that forges this request's frames or ends a frame")
		}
		stream := "PHP message: " + pre + phpFrames(nonce, 0, "write", "abc", payload, int(chunk)+1) +
			"; PHP message: " + mid + phpFrames(nonce, 1, "close", "abc", "", int(chunk)+1)
		sc := newFrameScanner(nonce, testFrameKey)
		var got []message
		for i := 0; len(stream) > 0; i++ {
			n := len(stream)
			if i < len(cuts) {
				n = min(n, int(cuts[i])+1)
			}
			msgs, _ := sc.feed([]byte(stream[:n]))
			got = append(got, msgs...)
			stream = stream[n:]
			if len(sc.pending) > maxPending {
				t.Fatalf("%d bytes held back", len(sc.pending))
			}
		}
		sc.flushLog()
		if len(got) != 2 || got[0].Op != "write" || got[0].ID != "abc" || string(got[0].Payload) != payload ||
			got[1].Op != "close" || got[0].Seq != 0 || got[1].Seq != 1 {
			t.Fatalf("got %+v, errors %v", got, sc.errs)
		}
		if sc.lost || sc.cutShort() {
			t.Fatalf("lost %v, cut short %v, errors %v", sc.lost, sc.cutShort(), sc.errs)
		}
	})
}

// FuzzFrameScannerGarbage: arbitrary stderr and header values are refused
// or logged, never a panic, and never a message without the key.
func FuzzFrameScannerGarbage(f *testing.F) {
	f.Add([]byte("PHP message: @sg1:00112233445566778899aabbccddeeff:0:1:QUJD#; PHP message: x"), []byte{4, 9})
	f.Add([]byte("@sg1:@sg1:@sg1:#"), []byte{1})
	f.Add([]byte("; PHP message: @sg1:00112233445566778899aabbccddeeff:9999999999999999999999:0:AAAA"), []byte{})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		sc := newFrameScanner("00112233445566778899aabbccddeeff", testFrameKey)
		for i := 0; len(data) > 0; i++ {
			n := len(data)
			if i < len(cuts) {
				n = min(n, int(cuts[i])+1)
			}
			if msgs, _ := sc.feed(data[:n]); len(msgs) > 0 {
				t.Fatalf("unsealed message accepted: %+v", msgs)
			}
			if _, ok := sc.headerFrame(string(data[:n])); ok {
				t.Fatal("unsealed header frame accepted")
			}
			data = data[n:]
			if len(sc.pending) > maxPending {
				t.Fatalf("%d bytes held back", len(sc.pending))
			}
		}
		sc.flushLog()
	})
}
