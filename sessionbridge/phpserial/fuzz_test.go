package phpserial

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func addSessionSeeds(f *testing.F) {
	for _, c := range sessionCases {
		f.Add([]byte(c.php))
	}
	f.Add([]byte(`a:2:{s:1:"x";a:3:{i:0;i:1;i:1;i:2;i:2;R:4;}s:1:"y";a:2:{i:0;O:8:"stdClass":0:{}i:1;r:7;}}`))
	f.Add([]byte(`a:1:{s:1:"c";C:3:"Foo":5:{hello}}`))
	f.Add([]byte(`a:1:{i:0;O:1:"A":1:{s:1:"s";r:2;}}`))
	f.Add([]byte(`a:1:{i:0;a:1:{i:0;R:2;}}`))
}

// checkDecoded: whatever DecodeSession accepts is a JSON object that
// EncodeSession accepts and that decodes back to the same JSON.
func checkDecoded(t *testing.T, in, j []byte, decode func([]byte, Limits) ([]byte, error)) {
	if !json.Valid(j) || len(j) == 0 || j[0] != '{' {
		t.Fatalf("decode(%q) gave invalid JSON or no object: %s", in, j)
	}
	p, err := EncodeSession(j, Limits{})
	if err != nil {
		t.Fatalf("decode(%q) = %s, which EncodeSession rejects: %v", in, j, err)
	}
	j2, err := DecodeSession(p, Limits{})
	if err != nil {
		t.Fatalf("EncodeSession(%s) = %q, which DecodeSession rejects: %v", j, p, err)
	}
	if !bytes.Equal(j, j2) {
		t.Fatalf("round trip changed the JSON:\n in %q\n j1 %s\n  p %q\n j2 %s", in, j, p, j2)
	}
	h, err := EncodePHPHandler(j, Limits{})
	if err != nil {
		if !errors.Is(err, ErrUnencodable) {
			t.Fatalf("EncodePHPHandler(%s): %v", j, err)
		}
		return
	}
	j3, err := DecodePHPHandler(h, Limits{})
	if err != nil {
		t.Fatalf("EncodePHPHandler(%s) = %q, which DecodePHPHandler rejects: %v", j, h, err)
	}
	// Back in php_serialize form it must be the same PHP data.
	p3, err := EncodeSession(j3, Limits{})
	if err != nil {
		t.Fatalf("EncodeSession(%s): %v", j3, err)
	}
	if j4, err := DecodeSession(p3, Limits{}); err != nil || !bytes.Equal(j4, j) {
		t.Fatalf("php handler round trip changed the data:\n j %s\n h %q\n j3 %s\n j4 %s (%v)", j, h, j3, j4, err)
	}
}

// checkSameLimits: what a decoder accepted under l, EncodeSession takes
// under l too (the gateway gives PHP, under the limits it stored it with,
// what PHP wrote).
func checkSameLimits(t *testing.T, in, j []byte, l Limits) {
	if _, err := EncodeSession(j, l); err != nil {
		t.Fatalf("decode(%q) = %s, which EncodeSession rejects under the same limits: %v", in, j, err)
	}
}

func FuzzDecodeSession(f *testing.F) {
	addSessionSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		l := Limits{MaxBytes: 1 << 16, MaxElements: 10000}
		j, err := DecodeSession(in, l)
		if err != nil {
			return
		}
		checkSameLimits(t, in, j, l)
		checkDecoded(t, in, j, DecodeSession)
	})
}

func FuzzDecodePHPHandler(f *testing.F) {
	f.Add([]byte(`a|i:1;b|s:1:"x";`))
	f.Add([]byte(`a|O:8:"stdClass":0:{}b|r:1;`))
	f.Add([]byte(`k|a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}after|s:1:"x";`))
	f.Add([]byte("\xff|a:1:{i:0;R:1;}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		l := Limits{MaxBytes: 1 << 16, MaxElements: 10000}
		j, err := DecodePHPHandler(in, l)
		if err != nil {
			return
		}
		checkSameLimits(t, in, j, l)
		checkDecoded(t, in, j, DecodePHPHandler)
	})
}

// FuzzEncodeSession: any JSON EncodeSession accepts gives PHP text that
// DecodeSession accepts, and one more round trip is a fixed point.
func FuzzEncodeSession(f *testing.F) {
	for _, c := range sessionCases {
		f.Add([]byte(c.json))
	}
	f.Add([]byte(`{"a":[1,{"b":null}],"c":1.5e300,"d":"\u00e9\ud800","5":NaN}`))
	f.Add([]byte(`{"x":[1,2],"k":{"__php__":"a:3:{i:0;i:1;i:1;i:2;i:2;R:2;}"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := EncodeSession(in, Limits{MaxBytes: 1 << 16, MaxElements: 10000})
		if err != nil {
			return
		}
		j, err := DecodeSession(p, Limits{})
		if err != nil {
			t.Fatalf("EncodeSession(%q) = %q, which DecodeSession rejects: %v", in, p, err)
		}
		checkDecoded(t, p, j, DecodeSession)
	})
}
