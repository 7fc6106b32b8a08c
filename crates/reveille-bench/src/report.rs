//! What a run found: a table for people, JSON for machines, and the machine it ran on.

use std::fmt::Write as _;

use serde::Serialize;

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub value: String,
    /// The goal from issue #6 / docs/performance.md, when there is one.
    pub goal: Option<String>,
    pub met: Option<bool>,
}

impl Row {
    pub fn info(metric: impl Into<String>, value: impl Into<String>) -> Row {
        Row { metric: metric.into(), value: value.into(), goal: None, met: None }
    }

    pub fn goal(
        metric: impl Into<String>,
        value: impl Into<String>,
        goal: impl Into<String>,
        met: bool,
    ) -> Row {
        Row { metric: metric.into(), value: value.into(), goal: Some(goal.into()), met: Some(met) }
    }
}

/// A finished scenario: its table rows and its full results.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub rows: Vec<Row>,
    pub data: serde_json::Value,
}

/// The table of all outcomes.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<10} {:<52} {:>16}  {:<14} ", "SCENARIO", "METRIC", "VALUE", "GOAL");
    for outcome in outcomes {
        for row in &outcome.rows {
            let verdict = match row.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            };
            let goal = row.goal.as_deref().unwrap_or("");
            let _ = writeln!(
                out,
                "{:<10} {:<52} {:>16}  {:<14} {verdict}",
                outcome.scenario, row.metric, row.value, goal
            );
        }
    }
    out
}

/// What the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub build: &'static str,
    pub measured_at: String,
}

impl Machine {
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: kernel.trim().to_owned(),
            build: if cfg!(debug_assertions) { "debug" } else { "release" },
            measured_at: jiff::Timestamp::now().to_string(),
        }
    }
}

pub fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

pub fn per_second(value: f64) -> String {
    format!("{value:.0}/s")
}

pub fn kib(value: f64) -> String {
    format!("{value:.1} KiB")
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
