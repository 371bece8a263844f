package server

import (
	"io/fs"
	"syscall"
)

// fileIdentity is the file's inode number and status change time (ctime)
// in nanoseconds, zeros when unknown. Unlike the mtime, no tool sets the
// ctime: writing, replacing or extracting a file moves it to the present.
// Its clock ticks coarsely (a few ms), so files of two releases written in
// one tick share it; their inodes tell them apart.
func fileIdentity(fi fs.FileInfo) (ino uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), st.Ctim.Nano()
	}
	return 0, 0
}
