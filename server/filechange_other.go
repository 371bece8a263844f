//go:build !linux

package server

import "io/fs"

// fileIdentity is the file's inode and status change time where the
// gateway knows how to read them (Linux); elsewhere zeros, and validators
// rest on size and mtime alone.
func fileIdentity(fi fs.FileInfo) (ino uint64, ctime int64) { return 0, 0 }
