//! CPU time of the processes a bench watches, read from `/proc/<pid>/stat` (user + system
//! time, fields 14 and 15, in clock ticks; proc(5),
//! https://man7.org/linux/man-pages/man5/proc.5.html) before and after a run and divided
//! by the notifications delivered: steadier on a shared machine than a rate.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A process to watch: its name in the table (`router`, `sender-apns`, `rabbitmq`, …) and
/// its pid; `self` for the load generator itself.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    stat: PathBuf,
}

/// One process's CPU time per notification over one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpu {
    pub process: String,
    pub us_per_notification: f64,
}

/// Parses `name=pid` (pid `self`: this process).
pub fn parse_watched(text: &str) -> Result<Watched, String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("expected name=pid, got {text:?}"))?;
    let pid = pid.trim();
    if pid != "self" && pid.parse::<u32>().is_err() {
        return Err(format!("{pid:?} is not a pid"));
    }
    Ok(Watched {
        name: name.trim().to_owned(),
        stat: PathBuf::from(format!("/proc/{pid}/stat")),
    })
}

/// user + system clock ticks of each watched process; a process that is gone reads as
/// `None` and drops out of the result.
pub fn snapshot(watched: &[Watched]) -> Vec<Option<u64>> {
    watched
        .iter()
        .map(|w| {
            std::fs::read_to_string(&w.stat)
                .ok()
                .and_then(|s| ticks(&s))
        })
        .collect()
}

/// Microseconds of CPU per notification of each process between two snapshots.
pub fn per_notification(
    watched: &[Watched],
    before: &[Option<u64>],
    after: &[Option<u64>],
    notifications: u64,
) -> Vec<ProcessCpu> {
    let ticks_per_s = clock_ticks_per_s();
    watched
        .iter()
        .zip(before.iter().zip(after))
        .filter_map(|(w, (b, a))| Some((w, a.as_ref()?.checked_sub(*b.as_ref()?)?)))
        .map(|(w, used)| ProcessCpu {
            process: w.name.clone(),
            us_per_notification: used as f64 / ticks_per_s * 1e6 / notifications.max(1) as f64,
        })
        .collect()
}

/// `sysconf(_SC_CLK_TCK)` as getconf(1) prints it (unsafe code is forbidden here, so no
/// libc call); 100, the value on every common Linux build, when getconf is missing.
fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|n| *n > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime from one `/proc/<pid>/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its last `)`.
fn ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_ticks_counted_after_the_command_name() {
        let line = "4242 (beam.smp (x) y) S 1 4242 4242 0 -1 4194560 5 0 0 0 1234 567 0 0 20 0 30 0 100 0 0";
        assert_eq!(ticks(line), Some(1801));
    }

    #[test]
    fn this_process_reads_its_own_cpu_time() {
        let watched = vec![parse_watched("loadgen=self").unwrap()];
        let before = snapshot(&watched);
        assert!(before[0].is_some());
        let rows = per_notification(&watched, &before, &before, 10);
        assert_eq!(rows[0].us_per_notification, 0.0);
    }

    #[test]
    fn a_watched_process_is_named_by_name_equals_pid() {
        assert!(parse_watched("router=12").is_ok());
        assert!(parse_watched("router").is_err());
        assert!(parse_watched("router=abc").is_err());
    }
}
