package adminops

import (
	"io/fs"
	"path/filepath"
	"syscall"
)

// Disk is the data directory's use of its disk, in bytes.
type Disk struct {
	Store int64 `json:"store"`
	Media int64 `json:"media"`
	// Free is what the node's account may still write; Total the size of
	// the file system.
	Free  int64 `json:"free"`
	Total int64 `json:"total"`
}

// DiskOf measures the data directory: the store's size (given, the store
// knows it best), the files under media/, and the file system's space.
func DiskOf(dataDir string, storeBytes int64) Disk {
	d := Disk{Store: storeBytes}
	filepath.WalkDir(filepath.Join(dataDir, "media"), func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				d.Media += info.Size()
			}
		}
		return nil
	})
	var st syscall.Statfs_t
	if syscall.Statfs(dataDir, &st) == nil {
		d.Free, d.Total = int64(st.Bavail)*int64(st.Bsize), int64(st.Blocks)*int64(st.Bsize)
	}
	return d
}
