//! The results table: printed, and written as Markdown with the machine and the date.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub benchmark: String,
    /// The measurement.
    pub measured: String,
    /// The baseline it is compared with, measured in the same run.
    pub baseline: String,
    /// measured / baseline (or the ratio the goal is stated in).
    pub ratio: String,
    /// The goal, if one applies.
    pub goal: String,
    /// Whether the goal holds.
    pub holds: Option<bool>,
}

impl Row {
    /// A row without a goal.
    pub fn plain(benchmark: &str, measured: String, baseline: String, ratio: String) -> Row {
        Row {
            benchmark: benchmark.to_string(),
            measured,
            baseline,
            ratio,
            goal: String::new(),
            holds: None,
        }
    }

    /// A row of two times and their ratio, with no goal.
    pub fn times(benchmark: &str, measured: Duration, baseline: Duration) -> Row {
        Row::plain(
            benchmark,
            duration(measured),
            duration(baseline),
            ratio(measured.as_secs_f64(), baseline.as_secs_f64()),
        )
    }

    /// Adds the goal and whether it holds.
    pub fn goal(mut self, goal: &str, holds: bool) -> Row {
        self.goal = goal.to_string();
        self.holds = Some(holds);
        self
    }
}

/// Rows and notes of a whole run.
#[derive(Debug, Default)]
pub struct Report {
    /// The table.
    pub rows: Vec<Row>,
    /// Observations under the table.
    pub notes: Vec<String>,
    /// Charts drawn beside the table: title and file name (in the table's directory).
    pub figures: Vec<(String, String)>,
}

const HEADERS: [&str; 6] = ["benchmark", "measured", "baseline", "ratio", "goal", "holds"];

fn cells(row: &Row) -> [String; 6] {
    let holds = match row.holds {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "",
    };
    [
        row.benchmark.clone(),
        row.measured.clone(),
        row.baseline.clone(),
        row.ratio.clone(),
        row.goal.clone(),
        holds.to_string(),
    ]
}

impl Report {
    /// The table as aligned text.
    pub fn text(&self) -> String {
        let rows: Vec<[String; 6]> = self.rows.iter().map(cells).collect();
        let mut widths = HEADERS.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let padded: Vec<String> =
                cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&mut out, &HEADERS.map(str::to_string));
        line(&mut out, &widths.map(|w| "-".repeat(w)));
        for row in &rows {
            line(&mut out, row);
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        out
    }

    /// The whole document for `docs/benchmarks.md`.
    pub fn markdown(&self, command: &str, machine: &str, remaining: &str) -> String {
        let mut out = String::from("# Benchmarks\n\n");
        let _ = writeln!(
            out,
            "Measured on {} ({machine}) with `{command}`. Every ratio compares two numbers \
             measured in the same run; the table is written by the bench itself.\n",
            today()
        );
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(HEADERS.len()));
        for row in self.rows.iter().map(cells) {
            let escaped: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", escaped.join(" | "));
        }
        if !self.figures.is_empty() {
            out.push_str("\n## Cost growth\n\n");
            for (title, file) in &self.figures {
                let _ = writeln!(out, "![{title}]({file})\n");
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\n## Notes from this run\n\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out.push('\n');
        out.push_str(remaining);
        out
    }
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (y, m, d) = accessgov_mock::seed::civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Cores and CPU model of this machine.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(String::new(), |kib| format!(", {} GiB", (kib + (1 << 19)) >> 20));
    format!("{cores} cores, {model}{memory}")
}

/// A duration in the unit that reads best.
pub fn duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// `a / b` with two decimals.
pub fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 { "-".to_string() } else { format!("{:.2}", a / b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_micros(42)), "42.0 µs");
        assert_eq!(duration(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(ratio(3.0, 2.0), "1.50");
        assert_eq!(today().len(), 10);
        let report = Report {
            rows: vec![Row::plain("a|b", "1".into(), "2".into(), "0.50".into()).goal("< 1", true)],
            notes: vec!["n".into()],
            figures: vec![("CPU".into(), "cpu.svg".into())],
        };
        assert!(report.text().contains("yes"));
        let markdown = report.markdown("cmd", "m", "");
        assert!(markdown.contains("a\\|b") && markdown.contains("![CPU](cpu.svg)"));
    }
}
