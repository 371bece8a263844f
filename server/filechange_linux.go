package server

import (
	"io/fs"
	"syscall"
)

// changeNanos is the file's status change time (ctime) in nanoseconds, 0
// when unknown. Unlike the mtime, no tool sets it: writing, replacing or
// extracting a file moves it to the present.
func changeNanos(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
