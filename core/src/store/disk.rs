//! How much disk the store takes and how much is left on its file system: the commit
//! thread's space check, the admin dashboard and `/metrics` read it.

use std::path::Path;

/// The file system holding a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer may still use.
    pub available: u64,
    /// The file system's size.
    pub total: u64,
}

/// The space of the file system holding `dir`; None when it cannot be asked.
pub fn space(dir: &Path) -> Option<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    Some(DiskSpace {
        available: (stat.f_bavail as u64).saturating_mul(block),
        total: (stat.f_blocks as u64).saturating_mul(block),
    })
}

/// Bytes of the files in `dir` and the directories below it (RocksDB's tables, blob
/// files and logs), to a depth of four; links are not followed.
pub fn size_of(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth: u32) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(m) if m.is_file() => m.len(),
                Ok(m) if m.is_dir() && depth > 0 => walk(&entry.path(), depth - 1),
                _ => 0,
            })
            .sum()
    }
    walk(dir, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_and_its_file_system() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 24]).unwrap();
        assert_eq!(size_of(dir.path()), 1024);
        let fs = space(dir.path()).unwrap();
        assert!(fs.total > 0 && fs.available <= fs.total);
        assert!(space(Path::new("/no/such/dir")).is_none());
        assert_eq!(size_of(Path::new("/no/such/dir")), 0);
    }
}
