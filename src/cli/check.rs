//! `ringmq check`: is this host ready to run ringmq well? Each check gives a status (ok, warn,
//! fail), what was measured and, unless ok, what to do about it.
//!
//! Checks: kernel io_uring (a real `io_uring_setup` call, so a sysctl or seccomp ban shows),
//! kernel version (glommio needs 5.8+), the memlock and open-files limits, the data
//! directory's filesystem and whether it accepts O_DIRECT (tmpfs does not: glommio then falls
//! back to buffered I/O), free space, CPU count, and a short disk test on the data directory:
//! sequential O_DIRECT writes of 1 MiB (throughput) and 4 KiB write+fdatasync rounds (latency,
//! what `durability=always` pays per group commit). The test file is removed afterwards.
//!
//! Plain blocking std I/O and libc are used on purpose: the check must work (and explain)
//! where glommio itself would fail to start.

use super::output::{Json, Table};
use std::alloc::Layout;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Direct-I/O alignment used by the disk test.
const ALIGN_BYTES: usize = 4096;
/// Memlock per shard below which we warn: glommio registers 10 MiB of I/O buffers per
/// executor and skips the registration (slower I/O) when the limit does not allow it.
const MEMLOCK_PER_SHARD_BYTES: u64 = 16 << 20;
/// Memlock below which glommio refuses to start an executor at all.
const MEMLOCK_MIN_BYTES: u64 = 512 << 10;
/// Open files below which we warn (segments, indexes and connections all take descriptors).
const NOFILE_MIN: u64 = 65_536;
/// Free bytes below which we warn / fail.
const FREE_WARN_BYTES: u64 = 10 << 30;
const FREE_FAIL_BYTES: u64 = 1 << 30;
/// fdatasync rounds of the latency test.
const SYNC_ROUNDS: usize = 32;

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Data directory to check (its nearest existing parent if it does not exist yet).
    #[arg(long, value_name = "DIR", default_value = "./ringmq-data")]
    pub data_dir: PathBuf,
    /// MiB written by the sequential disk test (0 skips the disk test).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub disk_test_mib: u64,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's verdict.
#[derive(Debug, Clone)]
pub struct Finding {
    pub name: &'static str,
    pub status: Status,
    pub value: String,
    pub advice: String,
}

fn finding(name: &'static str, status: Status, value: String, advice: &str) -> Finding {
    Finding {
        name,
        status,
        value,
        advice: if status == Status::Ok {
            String::new()
        } else {
            advice.to_string()
        },
    }
}

/// Run every check; Err is the one-sentence summary when any failed.
pub fn run(a: &CheckArgs) -> Result<(), String> {
    let dir = existing_dir(&a.data_dir);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut findings = vec![
        io_uring(),
        kernel(),
        memlock(cpus as u64),
        nofile(),
        cpu_count(cpus),
        filesystem(&dir),
        free_space(&dir),
        o_direct(&dir),
        quarantine(&a.data_dir),
    ];
    if a.disk_test_mib > 0 {
        findings.extend(disk_test(&dir, a.disk_test_mib));
    }
    print(a, &dir, &findings);
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if failed > 0 {
        return Err(format!(
            "{failed} host check(s) failed; see the advice above"
        ));
    }
    Ok(())
}

fn print(a: &CheckArgs, dir: &Path, findings: &[Finding]) {
    let value = Json::obj([
        ("data_dir", Json::str(dir.display().to_string())),
        (
            "checks",
            Json::Arr(
                findings
                    .iter()
                    .map(|f| {
                        Json::obj([
                            ("check", Json::str(f.name)),
                            ("status", Json::str(f.status.as_str().to_lowercase())),
                            ("value", Json::str(&f.value)),
                            ("advice", Json::str(&f.advice)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]);
    super::emit(a.json, &value, || {
        let mut t = Table::new(&["CHECK", "STATUS", "VALUE"]);
        for f in findings {
            t.row(vec![
                f.name.into(),
                f.status.as_str().into(),
                f.value.clone(),
            ]);
        }
        let mut out = format!(
            "checking {} on the data dir {}\n\n",
            hostname(),
            dir.display()
        );
        out.push_str(&t.render());
        let advice: Vec<&Finding> = findings.iter().filter(|f| !f.advice.is_empty()).collect();
        if !advice.is_empty() {
            out.push_str("\nadvice:\n");
            for f in advice {
                out.push_str(&format!("  {}: {}\n", f.name, f.advice));
            }
        }
        out
    });
}

/// Files that recovery set aside in the partition directories (`partition/file (bytes)`).
pub fn quarantined_files(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(partitions) = std::fs::read_dir(data_dir) else {
        return found;
    };
    for partition in partitions.flatten() {
        let Ok(files) = std::fs::read_dir(partition.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if crate::app::is_quarantine_file(&name) {
                let bytes = file.metadata().map_or(0, |m| m.len());
                let dir = partition.file_name().to_string_lossy().into_owned();
                found.push(format!("{dir}/{name} ({bytes} bytes)"));
            }
        }
    }
    found.sort();
    found
}

fn quarantine(data_dir: &Path) -> Finding {
    let found = quarantined_files(data_dir);
    if found.is_empty() {
        return finding("quarantine", Status::Ok, "none".into(), "");
    }
    finding(
        "quarantine",
        Status::Warn,
        format!("{} file(s): {}", found.len(), found.join(", ")),
        "recovery could not read these synced bytes and set them aside (the broker serves \
         everything else); inspect them, then delete them once no longer needed",
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

/// `dir`, or its nearest existing ancestor.
fn existing_dir(dir: &Path) -> PathBuf {
    let mut d = dir.to_path_buf();
    while !d.is_dir() {
        if !d.pop() || d.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
    }
    d
}

fn io_uring() -> Finding {
    let mut params = [0u8; 120]; // struct io_uring_params
                                 // SAFETY: io_uring_setup reads and writes only `params` (120 bytes, the kernel's
                                 // io_uring_params size); the returned descriptor is closed right away.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: `fd` is the descriptor io_uring_setup just returned to us.
        unsafe { libc::close(fd as libc::c_int) };
        return finding("io_uring", Status::Ok, "available".into(), "");
    }
    let err = std::io::Error::last_os_error();
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let advice = match err.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring: run Linux 5.8 or newer",
        Some(libc::EPERM) if disabled != "0" && !disabled.is_empty() => {
            "io_uring is disabled by sysctl kernel.io_uring_disabled; set it to 0"
        }
        Some(libc::EPERM) => {
            "io_uring is blocked (seccomp or container policy); allow io_uring_setup"
        }
        _ => "io_uring_setup failed; ringmq cannot start without io_uring",
    };
    finding(
        "io_uring",
        Status::Fail,
        format!("unavailable: {err}"),
        advice,
    )
}

fn kernel() -> Finding {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    let status = if version >= (5, 8) {
        Status::Ok
    } else {
        Status::Fail
    };
    finding(
        "kernel",
        status,
        release,
        "glommio needs Linux 5.8 or newer",
    )
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the rlimit struct we pass.
    let rc = unsafe { libc::getrlimit(resource, &mut r) };
    (rc == 0).then_some((r.rlim_cur, r.rlim_max))
}

fn limit_text(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

fn memlock(shards: u64) -> Finding {
    let Some((cur, _)) = rlimit(libc::RLIMIT_MEMLOCK) else {
        return finding(
            "memlock",
            Status::Warn,
            "unknown".into(),
            "could not read RLIMIT_MEMLOCK",
        );
    };
    let need = shards * MEMLOCK_PER_SHARD_BYTES;
    let value = if cur == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        format!(
            "{} MiB (want >= {} MiB for {shards} shard(s))",
            cur >> 20,
            need >> 20
        )
    };
    let status = if cur == libc::RLIM_INFINITY || cur >= need {
        Status::Ok
    } else if cur >= MEMLOCK_MIN_BYTES {
        Status::Warn
    } else {
        Status::Fail
    };
    finding(
        "memlock",
        status,
        value,
        "glommio locks its io_uring buffers (shards do not start below 512 KiB and skip buffer registration below ~10 MiB each): set LimitMEMLOCK=infinity (systemd) or `ulimit -l unlimited`",
    )
}

fn nofile() -> Finding {
    let Some((cur, max)) = rlimit(libc::RLIMIT_NOFILE) else {
        return finding(
            "open files",
            Status::Warn,
            "unknown".into(),
            "could not read RLIMIT_NOFILE",
        );
    };
    let status = if cur >= NOFILE_MIN {
        Status::Ok
    } else {
        Status::Warn
    };
    finding(
        "open files",
        status,
        format!("{} (hard {})", limit_text(cur), limit_text(max)),
        "every segment, index and client takes a descriptor: set LimitNOFILE=1048576 (systemd) or `ulimit -n 1048576`",
    )
}

fn cpu_count(cpus: usize) -> Finding {
    let status = if cpus >= 2 { Status::Ok } else { Status::Warn };
    finding(
        "cpus",
        status,
        format!("{cpus} (default shards: {cpus})"),
        "ringmq runs one shard per CPU; one CPU leaves no room for the OS and interrupts",
    )
}

fn statfs(dir: &Path) -> Option<libc::statfs> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path; statfs writes only `s`.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut s) };
    (rc == 0).then_some(s)
}

/// Name of a filesystem magic number (statfs f_type).
pub fn fs_name(magic: i64) -> &'static str {
    match magic {
        0x5846_5342 => "xfs",
        0xEF53 => "ext4",
        0x0102_1994 => "tmpfs",
        0x9123_683E => "btrfs",
        0x2FC1_2FC1 => "zfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        _ => "other",
    }
}

fn filesystem(dir: &Path) -> Finding {
    let Some(s) = statfs(dir) else {
        return finding(
            "filesystem",
            Status::Warn,
            "unknown".into(),
            "could not statfs the data dir",
        );
    };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs across architectures
    let magic = s.f_type as i64;
    let name = fs_name(magic);
    let status = match name {
        "xfs" | "ext4" => Status::Ok,
        "tmpfs" => Status::Fail,
        _ => Status::Warn,
    };
    let advice = if name == "tmpfs" {
        "tmpfs keeps data in memory and has no O_DIRECT: put the data dir on XFS or ext4"
    } else {
        "ringmq is tested on XFS and ext4 with O_DIRECT; prefer a local XFS or ext4 volume"
    };
    finding(
        "filesystem",
        status,
        format!("{name} (magic {magic:#x})"),
        advice,
    )
}

fn free_space(dir: &Path) -> Finding {
    let Some(s) = statfs(dir) else {
        return finding(
            "free space",
            Status::Warn,
            "unknown".into(),
            "could not statfs the data dir",
        );
    };
    #[allow(clippy::unnecessary_cast)] // statfs field widths differ across architectures
    let free = (s.f_bavail as u64).saturating_mul(s.f_bsize as u64);
    let status = if free < FREE_FAIL_BYTES {
        Status::Fail
    } else if free < FREE_WARN_BYTES {
        Status::Warn
    } else {
        Status::Ok
    };
    finding(
        "free space",
        status,
        format!("{} MiB", free >> 20),
        "segments are 1 GiB by default and preallocated: keep at least 10 GiB free, and set retention.bytes",
    )
}

/// A 4096-aligned, zero-filled buffer for O_DIRECT.
struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> Option<AlignedBuf> {
        let layout = Layout::from_size_align(len, ALIGN_BYTES).ok()?;
        // SAFETY: the layout has a non-zero size (callers pass >= 4096).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(AlignedBuf { ptr, layout })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `layout.size()` initialised (zeroed) bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this same layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

fn test_file(dir: &Path) -> PathBuf {
    dir.join(format!(".ringmq-check-{}", std::process::id()))
}

fn open_direct(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

fn o_direct(dir: &Path) -> Finding {
    let path = test_file(dir);
    let result = open_direct(&path).and_then(|mut f| {
        let buf = AlignedBuf::new(ALIGN_BYTES).ok_or_else(|| std::io::Error::other("alloc"))?;
        f.write_all(buf.bytes())
    });
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(()) => finding("O_DIRECT", Status::Ok, "supported".into(), ""),
        Err(e) => finding(
            "O_DIRECT",
            Status::Fail,
            format!("refused: {e}"),
            "ringmq's segments use direct I/O: use a filesystem that supports O_DIRECT (XFS, ext4)",
        ),
    }
}

fn disk_test(dir: &Path, mib: u64) -> Vec<Finding> {
    let path = test_file(dir);
    let result = disk_rounds(&path, mib);
    let _ = std::fs::remove_file(&path);
    match result {
        Ok((write_mib_s, sync_us)) => vec![
            finding(
                "disk write",
                if write_mib_s >= 200.0 { Status::Ok } else { Status::Warn },
                format!("{write_mib_s:.0} MiB/s sequential O_DIRECT ({mib} MiB)"),
                "below 200 MiB/s the disk, not ringmq, caps produce throughput; use NVMe for the data dir",
            ),
            finding(
                "disk fdatasync",
                if sync_us <= 2_000.0 { Status::Ok } else { Status::Warn },
                format!("{sync_us:.0} us median for a 4 KiB write + fdatasync"),
                "slow syncs make durability=always produce latency high; consider durability=interval:<ms> or a disk with power-loss protection",
            ),
        ],
        Err(e) => vec![finding(
            "disk test",
            Status::Fail,
            format!("failed: {e}"),
            "the data dir must be writable with O_DIRECT",
        )],
    }
}

/// (sequential MiB/s, median fdatasync microseconds).
fn disk_rounds(path: &Path, mib: u64) -> std::io::Result<(f64, f64)> {
    let mut f = open_direct(path)?;
    let chunk = AlignedBuf::new(1 << 20).ok_or_else(|| std::io::Error::other("alloc"))?;
    let start = Instant::now();
    for _ in 0..mib {
        f.write_all(chunk.bytes())?;
    }
    f.sync_data()?;
    let write_mib_s = mib as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let small = AlignedBuf::new(ALIGN_BYTES).ok_or_else(|| std::io::Error::other("alloc"))?;
    let mut rounds = Vec::with_capacity(SYNC_ROUNDS);
    for _ in 0..SYNC_ROUNDS {
        let t = Instant::now();
        f.write_all(small.bytes())?;
        f.sync_data()?;
        rounds.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rounds.sort_by(f64::total_cmp);
    Ok((write_mib_s, rounds[rounds.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_data_dir_is_checked_at_its_parent() {
        let base = std::env::temp_dir();
        assert_eq!(existing_dir(&base.join("no/such/dir")), base);
        assert_eq!(fs_name(0xEF53), "ext4");
        assert_eq!(fs_name(0x0102_1994), "tmpfs");
    }

    #[test]
    fn disk_test_measures_and_cleans_up() {
        let dir = std::env::temp_dir();
        let findings = disk_test(&dir, 2);
        assert!(!test_file(&dir).exists());
        // tmpfs refuses O_DIRECT: then the test reports a failure instead of numbers.
        #[allow(clippy::unnecessary_cast)] // f_type's width differs across architectures
        let magic = statfs(&dir).map_or(0, |s| s.f_type as i64);
        if fs_name(magic) == "tmpfs" {
            assert_eq!(findings[0].status, Status::Fail);
        } else {
            assert_eq!(findings.len(), 2, "{findings:?}");
            assert!(findings[0].value.contains("MiB/s"), "{findings:?}");
        }
        let ok = finding("x", Status::Ok, "v".into(), "advice");
        assert!(ok.advice.is_empty());
    }
}
