//! Memory and CPU of processes, read from `/proc`: a process with all its descendants (the
//! desktop app's WebKit helpers, say), RSS and PSS (shared pages divided among their users).

use std::path::Path;

use anyhow::{Context, Result};

/// The process and every descendant alive now.
pub fn tree(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat_fields(pid).ok()?.1)))
        .collect();
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    all
}

/// The command name of a process (`comm`).
pub fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_owned()
}

/// Resident set size, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmRSS:")
}

/// Proportional set size, in KiB: the fair share of memory when processes share pages.
pub fn pss_kib(pid: u32) -> Result<u64> {
    rollup_kib(pid, "Pss:")
}

/// A line of `/proc/PID/smaps_rollup` in KiB, e.g. `Pss_Anon:` (heap and stacks) or `Pss_File:`
/// (mapped libraries and files).
pub fn rollup_kib(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    field(&std::fs::read_to_string(&path).with_context(|| path.clone())?, key)
        .with_context(|| format!("no {key} in {path}"))
}

/// CPU time used so far (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    Ok(stat_fields(pid)?.0)
}

/// CPU time used so far by the threads of `pid` whose name (`comm`, 15 bytes) is `thread`.
pub fn thread_ticks(pid: u32, thread: &str) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == thread)
        })
        .filter_map(|t| parse_stat(&std::fs::read_to_string(t.path().join("stat")).ok()?).ok())
        .map(|(ticks, _)| ticks)
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 on Linux unless the kernel says otherwise.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn status_field(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    field(&std::fs::read_to_string(&path).with_context(|| path.clone())?, key)
        .with_context(|| format!("no {key} in {path}"))
}

fn field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// (utime + stime, parent pid) from `/proc/PID/stat`; the name in parentheses may hold spaces.
fn stat_fields(pid: u32) -> Result<(u64, u32)> {
    let path = Path::new("/proc").join(pid.to_string()).join("stat");
    parse_stat(&std::fs::read_to_string(&path)?)
}

/// (utime + stime, parent pid) from the text of a `stat` file (of a process or a thread).
fn parse_stat(text: &str) -> Result<(u64, u32)> {
    let after = text.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let number =
        |i: usize| -> Result<u64> { Ok(fields.get(i).context("short stat")?.parse::<u64>()?) };
    Ok((number(11)? + number(12)?, u32::try_from(number(1)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_finds_a_child() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(pss_kib(me).unwrap() > 0);
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(tree(me).contains(&child.id()));
        assert_eq!(name(child.id()), "sleep");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
