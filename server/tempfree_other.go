//go:build !(linux || darwin)

package server

// tempDirFree cannot tell here.
func tempDirFree(string) (int64, bool) { return 0, false }
