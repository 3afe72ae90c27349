//! What a benchmark reads of the processes it runs, from `/proc` (Linux).

use std::collections::HashMap;

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat` (Linux, at
/// the kernel's usual 100 ticks a second); 0 when it cannot be read.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name and state.
    (tick(11) + tick(12)) / 100.0
}

/// Resident memory of a process in MiB, from `/proc/<pid>/status`; 0 when it cannot be read.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The processes of the PostgreSQL server (every process named `postgres`).
pub fn postgres_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .collect()
}

/// CPU seconds each of a set of processes has used so far, by pid: taken twice, the difference
/// keeps a process born in between (whole) and forgets one that ended (its time goes with it).
pub struct PidCpu(HashMap<u32, f64>);

impl PidCpu {
    pub fn of(pids: &[u32]) -> Self {
        PidCpu(pids.iter().map(|p| (*p, cpu_seconds(*p))).collect())
    }

    /// PostgreSQL's processes as they are now: the services' pools open connections as load
    /// needs them, so a list taken before a run misses the backends that did much of its work.
    pub fn postgres() -> Self {
        Self::of(&postgres_pids())
    }

    /// CPU seconds used since `earlier`.
    pub fn since(&self, earlier: &PidCpu) -> f64 {
        self.0
            .iter()
            .map(|(pid, cpu)| cpu - earlier.0.get(pid).copied().unwrap_or(0.0))
            .sum()
    }
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`, in seconds (at
/// the kernel's usual 100 ticks a second): what the processes a bench names do not account for
/// — the bench itself, the kernel's network stack, everything else running — shows here.
#[derive(Clone, Copy, Default)]
pub struct MachineCpu {
    pub user: f64,
    pub system: f64,
    /// Interrupt and softirq time: loopback networking is mostly here, charged to no process.
    pub irq: f64,
    pub idle: f64,
    pub iowait: f64,
    pub steal: f64,
    /// The CPUs `/proc/stat` counts (its `cpuN` lines), which the times above are summed over.
    pub cores: usize,
}

impl MachineCpu {
    /// Zero when `/proc/stat` cannot be read.
    pub fn now() -> Self {
        let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
            return Self::default();
        };
        let ticks: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse::<f64>().unwrap_or(0.0) / 100.0)
            .collect();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
        let cores = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        // user nice system idle iowait irq softirq steal …
        MachineCpu {
            user: at(0) + at(1),
            system: at(2),
            irq: at(5) + at(6),
            idle: at(3),
            iowait: at(4),
            steal: at(7),
            cores,
        }
    }

    /// The time between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        MachineCpu {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
            irq: self.irq - earlier.irq,
            idle: self.idle - earlier.idle,
            iowait: self.iowait - earlier.iowait,
            steal: self.steal - earlier.steal,
            cores: self.cores,
        }
    }

    /// CPU seconds spent working (not idle, not waiting for I/O).
    pub fn busy(&self) -> f64 {
        self.user + self.system + self.irq + self.steal
    }
}

impl std::fmt::Display for MachineCpu {
    /// As percentages of one core over the interval `self` spans (its own total), so the
    /// figures sit beside per-process ones: "busy 196 % of 200 % (user 160, system 30, …)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cores = self.cores.max(1) as f64;
        let span = (self.busy() + self.idle + self.iowait) / cores;
        if span <= 0.0 {
            return write!(f, "unknown (/proc/stat unreadable)");
        }
        let pct = |s: f64| s / span * 100.0;
        write!(
            f,
            "busy {:.0} % of {:.0} % (user {:.0}, system {:.0}, interrupts {:.0}, steal {:.0}), idle {:.0} %, waiting for I/O {:.0} %",
            pct(self.busy()),
            cores * 100.0,
            pct(self.user),
            pct(self.system),
            pct(self.irq),
            pct(self.steal),
            pct(self.idle),
            pct(self.iowait)
        )
    }
}
