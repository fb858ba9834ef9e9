//! `impush-loadgen`: drives the fleet the way IM core would and measures it from the vendor
//! side, for `make bench` and `make soak`.
//!
//! - `register`: the simulated users' devices and presence, straight into Redis.
//! - `run`: a C2C or group stream, as fast as possible or at a rate; one JSON result line.
//! - `relay`: the bare broker relay, the reference every figure is divided by.
//! - `report`: the table, CSV and PNG of a bench's results.
//! - `soak-plot`: the PNG of a soak run's samples.
//! - `cleanup`: removes the Redis keys and queues of the config's prefixes.

mod cpu;
mod measure;
mod population;
mod relay;
mod report;
mod stream;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use impush_amqp::Topology;
use impush_config::Config;
use impush_core::vendor;
use impush_proto::v1::Vendor;
use impush_store::{Endpoint, Store};
use indicatif::ProgressBar;

use crate::measure::{Measurement, Run, SimClient};
use crate::population::{Population, bar_style};
use crate::stream::{Audience, ElemKind, Kind, StreamPlan};

#[derive(Parser)]
#[command(
    name = "impush-loadgen",
    version,
    about = "Load generator and benchmark driver for an impush fleet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registers the users' devices and presence in Redis (through impush-store).
    Register {
        #[command(flatten)]
        base: Base,
    },
    /// Publishes one stream and measures its delivery at the simulator.
    Run(RunArgs),
    /// Measures the bare broker relay (consume A, publish B with confirm, ack A).
    Relay {
        #[command(flatten)]
        base: Base,
        /// Messages relayed.
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        #[arg(long, default_value_t = 500)]
        prefetch: u16,
        /// Message size; defaults to the size of one C2C event of the `run` streams.
        #[arg(long)]
        bytes: Option<usize>,
        /// Repetition number written into the result.
        #[arg(long, default_value_t = 1)]
        rep: u32,
        /// Appends the JSON result line to this file too.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A process whose CPU time per relayed message is reported, `name=pid`.
        #[arg(long = "cpu", value_parser = cpu::parse_watched)]
        cpu: Vec<cpu::Watched>,
    },
    /// Prints the summary table of a results file, writes its CSV and PNG.
    Report {
        /// JSON lines written by `run` and `relay`.
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long)]
        png: Option<PathBuf>,
        #[arg(long, default_value = "impush end to end")]
        title: String,
        /// Context columns for the CSV, `key=value` (broker version, queue type, cores).
        #[arg(long = "context", value_parser = key_value)]
        context: Vec<(String, String)>,
    },
    /// Plots a soak run's samples (`t_s,process,rss_kb,fds,tcp`).
    SoakPlot {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        png: PathBuf,
        #[arg(long, default_value = "impush soak run")]
        title: String,
    },
    /// Deletes the Redis keys and the queues of the config's prefixes.
    Cleanup {
        #[arg(long, env = "IMPUSH_CONFIG")]
        config: PathBuf,
    },
}

/// What every command touching the fleet needs.
#[derive(Args, Clone)]
struct Base {
    #[arg(long, env = "IMPUSH_CONFIG")]
    config: PathBuf,
    /// Users in the simulated population (one device each).
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// The population's vendors, round robin (comma-separated; `all` for the eight).
    #[arg(long, default_value = "all", value_parser = vendors)]
    vendors: VendorList,
}

#[derive(Clone)]
struct VendorList(Vec<Vendor>);

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    base: Base,
    /// The name of this stream in the results (`c2c`, `group`, `mixed`, …).
    #[arg(long)]
    name: String,
    #[arg(long, value_enum)]
    kind: Kind,
    /// C2C receivers are the offline users of these vendors (default: every vendor).
    #[arg(long, value_parser = vendors)]
    to: Option<VendorList>,
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Messages per second; without it, as fast as the broker confirms.
    #[arg(long)]
    rate: Option<f64>,
    /// Publishes awaiting their confirm at once.
    #[arg(long, default_value_t = 1_000)]
    window: usize,
    #[arg(long, default_value_t = 1_000)]
    group_size: usize,
    /// Element kinds the messages cycle through.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "text,image,text,face,custom,sound"
    )]
    elems: Vec<ElemKind>,
    /// impush-sim's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    sim: String,
    /// Stop waiting when nothing was delivered for this many seconds after publishing.
    #[arg(long, default_value_t = 15)]
    settle_s: u64,
    #[arg(long, default_value_t = 1)]
    rep: u32,
    /// Appends the JSON result line to this file too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A process whose CPU time per notification this run reports, `name=pid` (`self` for
    /// the load generator); repeatable.
    #[arg(long = "cpu", value_parser = cpu::parse_watched)]
    cpu: Vec<cpu::Watched>,
}

fn vendors(text: &str) -> Result<VendorList, String> {
    if text == "all" {
        return Ok(VendorList(vendor::ALL.to_vec()));
    }
    text.split(',')
        .map(|name| vendor::parse(name.trim()).ok_or_else(|| format!("unknown vendor {name:?}")))
        .collect::<Result<Vec<_>, _>>()
        .map(VendorList)
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got {text:?}"))
}

impl Base {
    fn load(&self) -> anyhow::Result<Config> {
        Config::load(&self.config).with_context(|| format!("loading {}", self.config.display()))
    }

    fn population(&self) -> Population {
        Population {
            users: self.users,
            vendors: self.vendors.0.clone(),
        }
    }
}

/// The first business_id the config has for `vendor`.
fn business_id_of(config: &Config, vendor: Vendor) -> Option<u64> {
    config
        .credentials
        .iter()
        .filter(|(_, profile)| profile.vendor == vendor)
        .map(|(id, _)| *id)
        .min()
}

fn emit(measurement: &Measurement, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let line = serde_json::to_string(measurement)?;
    println!("{line}");
    if let Some(path) = out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}

fn run_id() -> String {
    format!("lg{}", stream::now_ms())
}

/// The C2C plan the relay's message size is taken from.
fn reference_plan(run_id: String) -> StreamPlan {
    StreamPlan {
        kind: Kind::C2c,
        messages: 1,
        rate: None,
        window: 1,
        group_size: 0,
        elems: vec![ElemKind::Text],
        run_id,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Register { base } => {
            let config = base.load()?;
            let redis = &config.redis;
            let endpoint = Endpoint::from_config(redis.cluster, &redis.url, &redis.urls);
            let store = Store::connect_to(&endpoint, &config.redis_tls()?, &redis.prefix).await?;
            let started = std::time::Instant::now();
            base.population()
                .register(&store, &|v| business_id_of(&config, v), stream::now_ms())
                .await?;
            eprintln!(
                "registered {} devices in {:.1} s",
                base.users,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Run(args) => {
            let config = args.base.load()?;
            let population = args.base.population();
            let receivers =
                population.offline_of(&args.to.as_ref().unwrap_or(&args.base.vendors).0);
            if args.kind == Kind::C2c && receivers.is_empty() {
                anyhow::bail!("no offline user of those vendors in the population");
            }
            let sim = SimClient::new(&args.sim);
            let measurement = Run {
                name: args.name,
                rep: args.rep,
                amqp_url: config.amqp.url.clone(),
                amqp_tls: config.amqp_tls()?,
                topology: Topology::new(&config.amqp),
                audience: Audience {
                    receivers,
                    population,
                },
                plan: StreamPlan {
                    kind: args.kind,
                    messages: args.messages,
                    rate: args.rate,
                    window: args.window,
                    group_size: args.group_size,
                    elems: args.elems,
                    run_id: run_id(),
                },
                sim: &sim,
                settle: Duration::from_secs(args.settle_s),
                watched: args.cpu,
            }
            .measure()
            .await?;
            emit(&measurement, args.out.as_ref())?;
        }
        Command::Relay {
            base,
            messages,
            prefetch,
            bytes,
            rep,
            out,
            cpu: watched,
        } => {
            let config = base.load()?;
            let message_bytes = bytes.unwrap_or_else(|| {
                let audience = Audience {
                    receivers: vec![0],
                    population: base.population(),
                };
                stream::message_bytes(&audience, &reference_plan(run_id()))
            });
            let bar = ProgressBar::new(messages as u64).with_style(bar_style());
            let cpu_before = cpu::snapshot(&watched);
            let rate = relay::relay(
                &relay::RelayPlan {
                    url: config.amqp.url.clone(),
                    tls: config.amqp_tls()?,
                    prefix: config.amqp.prefix.clone(),
                    queue_type: config.amqp.queue_type,
                    messages,
                    message_bytes,
                    prefetch,
                },
                &bar,
            )
            .await?;
            let cpu_after = cpu::snapshot(&watched);
            bar.finish_and_clear();
            eprintln!("relay: {message_bytes}-byte messages, prefetch {prefetch}");
            emit(
                &Measurement {
                    name: report::RELAY.into(),
                    mode: "max".into(),
                    rep,
                    messages: messages as u64,
                    notifications: messages as u64,
                    expected: messages as u64,
                    notifications_per_s: rate,
                    messages_per_s: rate,
                    offered_rate: None,
                    p50_ms: None,
                    p90_ms: None,
                    p99_ms: None,
                    max_ms: None,
                    cpu: cpu::per_notification(&watched, &cpu_before, &cpu_after, messages as u64),
                },
                out.as_ref(),
            )?;
        }
        Command::Report {
            results,
            csv,
            png,
            title,
            context,
        } => {
            let measurements = report::read_measurements(&results)?;
            print!("{}", report::table(&report::summarise(&measurements)));
            let cpu = report::cpu_table(&measurements);
            if !cpu.is_empty() {
                print!("\n{cpu}");
            }
            if let Some(csv) = csv {
                report::write_csv(&csv, &measurements, &context)?;
            }
            if let Some(png) = png {
                report::plot_bench(&png, &measurements, &title)?;
            }
        }
        Command::SoakPlot { csv, png, title } => {
            let samples = report::read_soak(&csv)?;
            report::plot_soak(&png, &samples, &title)?;
        }
        Command::Cleanup { config } => {
            let config =
                Config::load(&config).with_context(|| format!("loading {}", config.display()))?;
            cleanup(&config).await?;
        }
    }
    Ok(())
}

/// Removes what a bench created under the config's prefixes, and nothing else: the
/// topology's queues and exchanges, and the Redis keys starting with `<prefix>:`.
async fn cleanup(config: &Config) -> anyhow::Result<()> {
    let connection = impush_amqp::connect_with_tls(&config.amqp.url, &config.amqp_tls()?).await?;
    let channel = connection.create_channel().await?;
    Topology::new(&config.amqp).delete(&channel).await?;
    let _ = connection.close(200, "cleanup done".into()).await;

    let client = impush_store::client(&config.redis.url, &config.redis_tls()?)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{}:*", config.redis.prefix);
    let mut cursor: u64 = 0;
    let mut removed = 0usize;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut con)
            .await?;
        if !keys.is_empty() {
            removed += keys.len();
            let () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut con)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    eprintln!(
        "removed the queues of {} and {removed} Redis keys",
        config.amqp.prefix
    );
    Ok(())
}
