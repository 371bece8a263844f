package bodyread

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFill(t *testing.T) {
	buf := make([]byte, 4)
	if n, err := Fill(iotest.OneByteReader(strings.NewReader("abcdef")), buf); n != 4 || err != nil || string(buf) != "abcd" {
		t.Errorf("full buffer: %d %v %q", n, err, buf)
	}
	if n, err := Fill(strings.NewReader("ab"), buf); n != 2 || err != io.EOF {
		t.Errorf("short body: %d %v, want 2 io.EOF", n, err)
	}
	// A chunked body cut short: the reader's error is handed on, never
	// turned into io.EOF as if the body had ended.
	cut := io.MultiReader(strings.NewReader("a"), iotest.ErrReader(io.ErrUnexpectedEOF))
	if n, err := Fill(cut, buf); n != 1 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut body: %d %v, want 1 io.ErrUnexpectedEOF", n, err)
	}
}
