//! Resident memory from `/proc`: this process's current and peak, other processes' current, and
//! a sampler that follows the sum over a changing set of processes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A `kB` field (`VmRSS`, `VmHWM`, ...) of `/proc/<pid>/status`, in bytes; `None` for this
/// process when `pid` is `None`, or when the process is gone.
pub fn status_bytes(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    parse_field(&text, field)
}

fn parse_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// CPU time (user plus system) process `pid` has used so far, from `/proc/<pid>/stat`; `None`
/// when the process is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&text).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// CPU time the calling thread has used so far, in nanoseconds from `/proc/thread-self/schedstat`
/// (finer than the clock ticks of [`cpu_time`]); `None` when unreadable.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// Clock ticks per second in `/proc/<pid>/stat`: fixed at 100 by the Linux ABI.
const USER_HZ: u64 = 100;

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A field of this process's `/proc/self/status` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("could not read {field} from /proc/self/status")]
pub struct OwnStatusError {
    /// The field (`VmRSS`, `VmHWM`).
    pub field: &'static str,
}

fn own_status_bytes(field: &'static str) -> Result<u64, OwnStatusError> {
    status_bytes(None, field).ok_or(OwnStatusError { field })
}

/// This process's resident memory now, in bytes.
pub fn rss() -> Result<u64, OwnStatusError> {
    own_status_bytes("VmRSS")
}

/// This process's peak resident memory (`VmHWM`), in bytes.
pub fn peak_rss() -> Result<u64, OwnStatusError> {
    own_status_bytes("VmHWM")
}

/// Resets this process's peak resident memory to its current value (Linux 4.0 and later).
pub fn reset_peak() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

/// Samples, on its own thread, the resident memory of this process plus the processes in a
/// shared set, and keeps the largest sum seen.
pub struct RssSampler {
    pids: Arc<Mutex<HashSet<u32>>>,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling every `interval`.
    pub fn start(interval: Duration) -> std::io::Result<Self> {
        let pids = Arc::new(Mutex::new(HashSet::new()));
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, k, s) = (Arc::clone(&pids), Arc::clone(&peak), Arc::clone(&stop));
        let thread =
            std::thread::Builder::new().name("rss-sampler".to_string()).spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    let live: Vec<u32> =
                        p.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
                    let children: u64 =
                        live.iter().filter_map(|pid| status_bytes(Some(*pid), "VmRSS")).sum();
                    k.fetch_max(children + rss().unwrap_or(0), Ordering::Relaxed);
                    std::thread::sleep(interval);
                }
            })?;
        Ok(RssSampler { pids, peak, stop, thread: Some(thread) })
    }

    /// Follows `pid` from now on.
    pub fn add(&self, pid: u32) {
        self.pids.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
    }

    /// Stops following `pid`.
    pub fn remove(&self, pid: u32) {
        self.pids.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
    }

    /// The largest sum seen so far, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_field(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_field(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_field(status, "VmSwap"), None);
        // Other tests run beside this one, so the two readings are not compared.
        assert!(rss().is_ok_and(|r| r > 0));
        assert!(peak_rss().is_ok_and(|p| p > 0));
    }

    #[test]
    fn reads_cpu_ticks_after_a_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(10));
        assert_eq!(parse_cpu_ticks("42 (x) S 1"), None);
        assert!(cpu_time(std::process::id()).is_some());
    }
}
