//! Turning measurements into what people read: the table of `make bench` (each figure as a
//! ratio to the bare relay of the same repetition, since absolute figures on a shared
//! machine move run to run), its CSV, and the PNG plots of the bench and of the soak run.
//! Plots embed their font (DejaVu Sans) so they render where no system font is installed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::measure::Measurement;

/// The name of the reference row.
pub const RELAY: &str = "relay";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {source}")]
    Parse {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
    #[error("drawing {path}: {message}")]
    Draw { path: String, message: String },
    #[error("{path}: {message}")]
    Soak { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn draw_error(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Draw {
        path: path.display().to_string(),
        message,
    }
}

pub fn read_measurements(path: &Path) -> Result<Vec<Measurement>, ReportError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|source| ReportError::Parse {
                path: path.display().to_string(),
                line: n + 1,
                source,
            })
        })
        .collect()
}

/// The relay rate of each repetition.
fn relay_by_rep(measurements: &[Measurement]) -> BTreeMap<u32, f64> {
    measurements
        .iter()
        .filter(|m| m.name == RELAY)
        .map(|m| (m.rep, m.notifications_per_s))
        .collect()
}

fn ratio(m: &Measurement, relays: &BTreeMap<u32, f64>) -> Option<f64> {
    relays
        .get(&m.rep)
        .filter(|r| **r > 0.0)
        .map(|r| m.notifications_per_s / r)
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// One line of the summary: a stream in one mode over every repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub name: String,
    pub mode: String,
    pub reps: usize,
    pub notifications_per_s: f64,
    pub min_per_s: f64,
    pub max_per_s: f64,
    pub ratio: Option<f64>,
    pub offered_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The worst of every repetition.
    pub max_ms: Option<u64>,
}

pub fn summarise(measurements: &[Measurement]) -> Vec<Summary> {
    let relays = relay_by_rep(measurements);
    let mut keys: Vec<(String, String)> = Vec::new();
    for m in measurements {
        let key = (m.name.clone(), m.mode.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(name, mode)| {
            let rows: Vec<&Measurement> = measurements
                .iter()
                .filter(|m| m.name == name && m.mode == mode)
                .collect();
            let mut rates: Vec<f64> = rows.iter().map(|m| m.notifications_per_s).collect();
            let mut ratios: Vec<f64> = rows.iter().filter_map(|m| ratio(m, &relays)).collect();
            let pick = |f: fn(&Measurement) -> Option<u64>| {
                let mut values: Vec<f64> =
                    rows.iter().filter_map(|m| f(m)).map(|v| v as f64).collect();
                median(&mut values)
            };
            let (p50_ms, p90_ms, p99_ms) =
                (pick(|m| m.p50_ms), pick(|m| m.p90_ms), pick(|m| m.p99_ms));
            Summary {
                reps: rows.len(),
                min_per_s: rates.iter().copied().fold(f64::INFINITY, f64::min),
                max_per_s: rates.iter().copied().fold(0.0, f64::max),
                notifications_per_s: median(&mut rates).unwrap_or(0.0),
                ratio: median(&mut ratios),
                offered_rate: rows.iter().find_map(|m| m.offered_rate),
                p50_ms,
                p90_ms,
                p99_ms,
                max_ms: rows.iter().filter_map(|m| m.max_ms).max(),
                name,
                mode,
            }
        })
        .collect()
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

/// The table `make bench` prints (and the README quotes).
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    out.push_str("| stream | mode | reps | notifications/s (median; min–max) | × relay | p50 ms | p90 ms | p99 ms | max ms |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for s in summaries {
        let mode = match s.offered_rate {
            Some(rate) => format!("{rate:.0} msg/s offered"),
            None => "as fast as possible".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} ({:.0}–{:.0}) | {} | {} | {} | {} | {} |\n",
            s.name,
            mode,
            s.reps,
            s.notifications_per_s,
            s.min_per_s,
            s.max_per_s,
            s.ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}")),
            ms(s.p50_ms),
            ms(s.p90_ms),
            ms(s.p99_ms),
            s.max_ms.map_or_else(|| "-".into(), |v| v.to_string()),
        ));
    }
    out
}

/// Whether a watched process is an impush worker (as opposed to the broker, Redis, the
/// simulator or the load generator): its CPU goes into the `workers` column.
fn is_worker(process: &str) -> bool {
    ["router", "sender", "ingest"]
        .iter()
        .any(|kind| process.starts_with(kind))
}

/// The CPU table: for each stream run flat out, the median over repetitions of each watched
/// process's CPU time per notification, with the impush workers' sum first. Empty when no
/// run watched a process.
pub fn cpu_table(measurements: &[Measurement]) -> String {
    let rows: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.mode == "max" && !m.cpu.is_empty())
        .collect();
    let mut processes: Vec<String> = Vec::new();
    let mut streams: Vec<String> = Vec::new();
    for m in &rows {
        if !streams.contains(&m.name) {
            streams.push(m.name.clone());
        }
        for p in &m.cpu {
            if !processes.contains(&p.process) {
                processes.push(p.process.clone());
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "CPU time per notification, µs (user + system from /proc, median over repetitions)\n\n| stream | workers |",
    );
    for p in &processes {
        out.push_str(&format!(" {p} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(processes.len()));
    out.push('\n');
    for stream in &streams {
        let runs: Vec<&&Measurement> = rows.iter().filter(|m| m.name == *stream).collect();
        // Runs without any worker (the relay) have no workers' sum.
        let mut workers: Vec<f64> = runs
            .iter()
            .filter(|m| m.cpu.iter().any(|p| is_worker(&p.process)))
            .map(|m| {
                m.cpu
                    .iter()
                    .filter(|p| is_worker(&p.process))
                    .map(|p| p.us_per_notification)
                    .sum()
            })
            .collect();
        let cell = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
        out.push_str(&format!("| {stream} | {} |", cell(median(&mut workers))));
        for process in &processes {
            let mut values: Vec<f64> = runs
                .iter()
                .flat_map(|m| m.cpu.iter().filter(|p| p.process == *process))
                .map(|p| p.us_per_notification)
                .collect();
            out.push_str(&format!(" {} |", cell(median(&mut values))));
        }
        out.push('\n');
    }
    out
}

/// One CSV row per measurement, each with its ratio to its own repetition's relay and the
/// run's context columns (`key=value` pairs such as the broker version and queue type).
pub fn write_csv(
    path: &Path,
    measurements: &[Measurement],
    context: &[(String, String)],
) -> Result<(), ReportError> {
    let relays = relay_by_rep(measurements);
    let mut file = std::fs::File::create(path).map_err(io(path))?;
    let mut header = String::from(
        "rep,name,mode,messages,notifications,expected,notifications_per_s,messages_per_s,ratio_to_relay,offered_rate,p50_ms,p90_ms,p99_ms,max_ms,cpu_us_per_notification",
    );
    for (key, _) in context {
        header.push(',');
        header.push_str(key);
    }
    writeln!(file, "{header}").map_err(io(path))?;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for m in measurements {
        // `process=µs` pairs separated by `;`, so the column count stays fixed.
        let cpu: Vec<String> = m
            .cpu
            .iter()
            .map(|p| format!("{}={:.1}", p.process, p.us_per_notification))
            .collect();
        let mut row = format!(
            "{},{},{},{},{},{},{:.1},{:.1},{},{},{},{},{},{},{}",
            m.rep,
            m.name,
            m.mode,
            m.messages,
            m.notifications,
            m.expected,
            m.notifications_per_s,
            m.messages_per_s,
            ratio(m, &relays)
                .map(|r| format!("{r:.3}"))
                .unwrap_or_default(),
            m.offered_rate
                .map(|r| format!("{r:.0}"))
                .unwrap_or_default(),
            opt(m.p50_ms),
            opt(m.p90_ms),
            opt(m.p99_ms),
            opt(m.max_ms),
            cpu.join(";"),
        );
        for (_, value) in context {
            row.push(',');
            row.push_str(value);
        }
        writeln!(file, "{row}").map_err(io(path))?;
    }
    Ok(())
}

fn register_font() {
    for style in [FontStyle::Normal, FontStyle::Bold] {
        // Registering the same embedded font twice only replaces it.
        let _ = plotters::style::register_font("sans-serif", style, dejavu::sans::regular());
    }
}

/// Reads one figure of a row.
type Pick<T> = fn(&T) -> Option<f64>;
/// Reads one figure of a soak sample.
type Measure = fn(&SoakSample) -> f64;
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Left: throughput of each stream as fast as possible (bars: medians; dots: repetitions),
/// the relay first. Right: latency percentiles of each stream at its offered rate.
pub fn plot_bench(
    path: &Path,
    measurements: &[Measurement],
    title: &str,
) -> Result<(), ReportError> {
    register_font();
    let failed = draw_error(path);
    let summaries = summarise(measurements);
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| failed(e.to_string()))?;
    let (left, right) = root.split_horizontally(700);

    let max_rows: Vec<&Summary> = summaries.iter().filter(|s| s.mode == "max").collect();
    let names: Vec<String> = max_rows.iter().map(|s| s.name.clone()).collect();
    let top = max_rows.iter().map(|s| s.max_per_s).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("notifications/s, as fast as possible", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(max_rows.len() as f64 - 0.5), 0f64..top)
        .map_err(|e| failed(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(max_rows.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| failed(e.to_string()))?;
    for (i, s) in max_rows.iter().enumerate() {
        let x = i as f64;
        let colour = if s.name == RELAY {
            COLOURS[3]
        } else {
            COLOURS[0]
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, s.notifications_per_s)],
                colour.mix(0.7).filled(),
            )))
            .map_err(|e| failed(e.to_string()))?;
        let label = match s.ratio {
            Some(r) if s.name != RELAY => format!("{:.0} ({r:.2}× relay)", s.notifications_per_s),
            _ => format!("{:.0}", s.notifications_per_s),
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x - 0.3, s.notifications_per_s + top * 0.03),
                ("sans-serif", 13),
            )))
            .map_err(|e| failed(e.to_string()))?;
        let reps = measurements
            .iter()
            .filter(|m| m.name == s.name && m.mode == "max")
            .map(|m| Circle::new((x, m.notifications_per_s), 3, BLACK.filled()));
        chart.draw_series(reps).map_err(|e| failed(e.to_string()))?;
    }

    let rate_rows: Vec<&Summary> = summaries.iter().filter(|s| s.mode == "rate").collect();
    let rate_names: Vec<String> = rate_rows.iter().map(|s| s.name.clone()).collect();
    let slowest = rate_rows
        .iter()
        .filter_map(|s| s.max_ms)
        .max()
        .unwrap_or(10) as f64
        * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption("latency at half the maximum rate, ms", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(
            -0.5f64..(rate_rows.len() as f64 - 0.5),
            0f64..slowest.max(1.0),
        )
        .map_err(|e| failed(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rate_rows.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                rate_names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| failed(e.to_string()))?;
    let percentiles: [(&str, Pick<Summary>); 4] = [
        ("p50", |s| s.p50_ms),
        ("p90", |s| s.p90_ms),
        ("p99", |s| s.p99_ms),
        ("max", |s| s.max_ms.map(|v| v as f64)),
    ];
    for (k, (label, value)) in percentiles.iter().enumerate() {
        let colour = COLOURS[k];
        let offset = -0.3 + 0.15 * k as f64;
        chart
            .draw_series(rate_rows.iter().enumerate().filter_map(|(i, s)| {
                let v = value(s)?;
                let x = i as f64 + offset;
                Some(Rectangle::new([(x, 0.0), (x + 0.14, v)], colour.filled()))
            }))
            .map_err(|e| failed(e.to_string()))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| failed(e.to_string()))?;
    root.present().map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// One sample of the soak run: `t_s,process,rss_kb,fds,tcp` in the CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakSample {
    pub t_s: f64,
    pub process: String,
    pub rss_kb: u64,
    pub fds: u64,
    pub tcp: u64,
}

pub fn read_soak(path: &Path) -> Result<Vec<SoakSample>, ReportError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let bad = |line: usize, message: &str| ReportError::Soak {
        path: path.display().to_string(),
        message: format!("line {line}: {message}"),
    };
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            let [t_s, process, rss_kb, fds, tcp] = fields.as_slice() else {
                return Err(bad(n + 1, "expected t_s,process,rss_kb,fds,tcp"));
            };
            let number = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad(n + 1, "not a number"))
            };
            Ok(SoakSample {
                t_s: t_s.trim().parse().map_err(|_| bad(n + 1, "bad t_s"))?,
                process: (*process).to_owned(),
                rss_kb: number(rss_kb)?,
                fds: number(fds)?,
                tcp: number(tcp)?,
            })
        })
        .collect()
}

/// Resident memory (MB) and open descriptors of each process over the soak run.
pub fn plot_soak(path: &Path, samples: &[SoakSample], title: &str) -> Result<(), ReportError> {
    register_font();
    let failed = draw_error(path);
    let mut processes: Vec<&str> = Vec::new();
    for s in samples {
        if !processes.contains(&s.process.as_str()) {
            processes.push(&s.process);
        }
    }
    let end = samples.iter().map(|s| s.t_s).fold(1.0, f64::max);
    let top_mb = samples
        .iter()
        .map(|s| s.rss_kb as f64 / 1024.0)
        .fold(1.0, f64::max)
        * 1.2;
    let top_fds = samples.iter().map(|s| s.fds as f64).fold(1.0, f64::max) * 1.2;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| failed(e.to_string()))?;
    let (left, right) = root.split_horizontally(700);
    let panels: [(&Area<'_>, &str, f64, Measure); 2] = [
        (&left, "resident memory (VmRSS), MB", top_mb, |s| {
            s.rss_kb as f64 / 1024.0
        }),
        (&right, "open file descriptors", top_fds, |s| s.fds as f64),
    ];
    for (area, caption, top, value) in panels {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end, 0f64..top)
            .map_err(|e| failed(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| failed(e.to_string()))?;
        for (k, process) in processes.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    samples
                        .iter()
                        .filter(|s| s.process == *process)
                        .map(|s| (s.t_s, value(s))),
                    colour.stroke_width(2),
                ))
                .map_err(|e| failed(e.to_string()))?
                .label(*process)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| failed(e.to_string()))?;
    }
    root.present().map_err(|e| failed(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, rep: u32, rate: f64) -> Measurement {
        Measurement {
            name: name.into(),
            mode: "max".into(),
            rep,
            messages: 10,
            notifications: 10,
            expected: 10,
            notifications_per_s: rate,
            messages_per_s: rate,
            offered_rate: None,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            max_ms: None,
            cpu: Vec::new(),
        }
    }

    #[test]
    fn the_cpu_table_gives_each_process_its_median_and_sums_the_workers() {
        let with_cpu = |rep, router, sender, broker| Measurement {
            cpu: vec![
                crate::cpu::ProcessCpu {
                    process: "router".into(),
                    us_per_notification: router,
                },
                crate::cpu::ProcessCpu {
                    process: "sender-apns".into(),
                    us_per_notification: sender,
                },
                crate::cpu::ProcessCpu {
                    process: "rabbitmq".into(),
                    us_per_notification: broker,
                },
            ],
            ..m("c2c", rep, 1_000.0)
        };
        let rows = [
            with_cpu(1, 10.0, 20.0, 90.0),
            with_cpu(2, 30.0, 40.0, 80.0),
            with_cpu(3, 20.0, 30.0, 100.0),
        ];
        let table = cpu_table(&rows);
        assert!(
            table.contains("| stream | workers | router | sender-apns | rabbitmq |"),
            "{table}"
        );
        assert!(
            table.contains("| c2c | 50.0 | 20.0 | 30.0 | 90.0 |"),
            "{table}"
        );
        assert_eq!(cpu_table(&[m("c2c", 1, 1.0)]), "");
    }

    #[test]
    fn each_figure_is_divided_by_the_relay_of_its_own_repetition() {
        let rows = [
            m(RELAY, 1, 10_000.0),
            m("c2c", 1, 6_000.0),
            m(RELAY, 2, 20_000.0),
            m("c2c", 2, 10_000.0),
        ];
        let summaries = summarise(&rows);
        let c2c = summaries.iter().find(|s| s.name == "c2c").unwrap();
        assert_eq!(c2c.ratio, Some(0.55), "median of 0.6 and 0.5");
        assert_eq!(c2c.notifications_per_s, 8_000.0);
        assert_eq!((c2c.min_per_s, c2c.max_per_s), (6_000.0, 10_000.0));
    }
}
