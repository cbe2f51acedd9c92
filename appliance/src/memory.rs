//! Where the server process's memory is, for `gannet store-stats` (the soak samples it):
//! resident memory split into anonymous and file-backed pages (the kernel's word), the
//! memory mimalloc has committed, and glibc's heap. mimalloc serves every allocation,
//! Rust's and (through `malloc`, which it overrides) RocksDB's C++ code's; glibc's heap
//! should stay empty, and is reported to show that it does. (Before the override, a
//! soak's resident size grew with the free bytes of glibc's arenas: fragmentation of
//! RocksDB's block cache churn.)

use serde_json::{Map, Value};

/// The process's memory figures, in bytes, as JSON fields.
pub(crate) fn figures() -> Map<String, Value> {
    let mut fields = Map::new();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for (key, field) in [
            ("RssAnon:", "rss_anon_bytes"),
            ("RssFile:", "rss_file_bytes"),
        ] {
            if let Some(kib) = status_kib(&status, key) {
                fields.insert(field.into(), (kib * 1024).into());
            }
        }
    }
    let mut committed = 0usize;
    // SAFETY: every out-parameter but one is null, which mi_process_info allows; the
    // one is a valid usize.
    unsafe {
        libmimalloc_sys::mi_process_info(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut committed,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
    fields.insert("heap_committed_bytes".into(), committed.into());
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's counters (it takes each arena's
        // lock in turn); it has no preconditions.
        let heap = unsafe { libc::mallinfo2() };
        // `arena`: bytes taken from the system by sbrk and arena mappings; `hblkhd`:
        // chunks mapped one by one; `uordblks`/`fordblks`: of `arena`, in use and free.
        fields.insert("c_heap_bytes".into(), (heap.arena + heap.hblkhd).into());
        fields.insert(
            "c_heap_in_use_bytes".into(),
            (heap.uordblks + heap.hblkhd).into(),
        );
        fields.insert("c_heap_free_bytes".into(), heap.fordblks.into());
    }
    fields
}

/// The figure of a `/proc/PID/status` line such as `RssAnon:  1234 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_status_line() {
        let status = "Name:\tgannet\nRssAnon:\t  1234 kB\nRssFile:\t 56 kB\n";
        assert_eq!(status_kib(status, "RssAnon:"), Some(1234));
        assert_eq!(status_kib(status, "RssFile:"), Some(56));
        assert_eq!(status_kib(status, "RssShmem:"), None);
    }

    #[test]
    fn this_process_has_resident_memory_and_a_heap() {
        let fields = figures();
        assert!(
            fields["rss_anon_bytes"].as_u64().unwrap_or(0) > 0,
            "{fields:?}"
        );
        assert!(
            fields["rss_file_bytes"].as_u64().unwrap_or(0) > 0,
            "{fields:?}"
        );
        assert!(fields["c_heap_bytes"].is_u64(), "{fields:?}");
        assert!(fields["heap_committed_bytes"].is_u64(), "{fields:?}");
    }
}
