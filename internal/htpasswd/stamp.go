package htpasswd

import (
	"io/fs"

	"github.com/sessiongate/sessiongate/internal/fileid"
)

// stampOf identifies a version of the file: a rename over it (how editors
// and htpasswd replace it) changes the inode even within one mtime tick,
// and an edit in place whose size and mtime were kept (cp -p over it)
// still moves the ctime.
func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	st.ino, st.change = fileid.Of(fi)
	return st
}
