package tempfile

import (
	"io"
	"os"
	"testing"
)

// The file works as a file, and its directory keeps no name for it.
func TestUnlinkedLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	f, err := Unlinked(dir, "spool-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("names left in the directory: %v", ents)
	}
	if _, err := f.WriteString("kept"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF || string(b) != "kept" {
		t.Fatalf("read back %q %v", b, err)
	}
	if _, err := Unlinked(dir+"/missing", "spool-*"); err == nil {
		t.Fatal("no error for a missing directory")
	}
}
