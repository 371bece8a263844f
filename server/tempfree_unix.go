//go:build linux || darwin

package server

import "syscall"

// tempDirFree is the space unprivileged writers have left in dir's file
// system.
func tempDirFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
