package caddyacmegw

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Magic numbers of statfs(2) for file systems that may be shared between
// machines, where a lock on the database file may not hold.
var networkFSMagic = map[uint32]bool{
	unix.NFS_SUPER_MAGIC:   true,
	unix.SMB_SUPER_MAGIC:   true,
	unix.SMB2_SUPER_MAGIC:  true,
	unix.CIFS_SUPER_MAGIC:  true,
	unix.AFS_SUPER_MAGIC:   true,
	unix.CEPH_SUPER_MAGIC:  true,
	unix.FUSE_SUPER_MAGIC:  true,
	unix.V9FS_MAGIC:        true, // 9p, as under WSL 2
	0x01161970:             true, // GFS2
	unix.OCFS2_SUPER_MAGIC: true,
	0x0bd00bd0:             true, // Lustre
	0x47504653:             true, // GPFS
	0x19830326:             true, // BeeGFS
}

// onNetworkFS reports whether dir, or its nearest existing parent, is on a
// network file system.
func onNetworkFS(dir string) bool {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return networkFSMagic[uint32(st.Type)] // Type is 32 bits wide on some platforms
		}
		if !os.IsNotExist(err) {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}
