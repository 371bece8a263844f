package htpasswd

import (
	"io/fs"
	"syscall"
)

// stampOf identifies a version of the file: a rename over it (how editors
// and htpasswd replace it) changes the inode even within one mtime tick.
func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = s.Ino
	}
	return st
}
