// Package fileid tells versions of a file apart beyond its size and mtime,
// which tools restore (cp -p, tar, rsync -t) and which cannot tell two
// writes within one clock tick apart.
package fileid

import (
	"io/fs"
	"syscall"
)

// Of gives the file's inode number and status change time (ctime) in
// nanoseconds, zeros when unknown. Unlike the mtime, no tool sets the
// ctime: writing, replacing or extracting a file moves it to the present.
// Its clock ticks coarsely (a few ms), so files written in one tick share
// it; their inodes tell them apart when they were replaced, not edited.
func Of(fi fs.FileInfo) (ino uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), st.Ctim.Nano()
	}
	return 0, 0
}
