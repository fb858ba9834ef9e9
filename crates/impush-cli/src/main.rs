//! `impush`: the operator's and IM developer's command line.

mod config_cmd;
mod dlq;
mod publish;
mod render;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "impush", version, about = "Offline push for IM services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Declare the exchanges and queues (idempotent; every worker also does it at start).
    Setup {
        #[arg(
            long,
            env = "IMPUSH_CONFIG",
            default_value = "deploy/local/impush.toml"
        )]
        config: PathBuf,
        /// Delete every queue and exchange of the configured prefix first, with whatever
        /// they hold (for local stacks and tests; never on a fleet in use).
        #[arg(long)]
        reset: bool,
    },
    /// Publish events written as canonical proto3 JSON, one a line with an "@type", to
    /// `impush.events`. Every line is validated before anything is sent.
    Publish {
        #[arg(
            long,
            env = "IMPUSH_CONFIG",
            default_value = "deploy/local/impush.toml"
        )]
        config: PathBuf,
        /// Input file (default: standard input).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Dead letters: list, inspect, replay or purge what is in the dead-letter queues.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Preview the decision, notification and exact vendor payload for JSON lines, with no
    /// broker or Redis. Input and output: one JSON object a line.
    Render {
        /// Config file whose credentials and templates to use (default: the built-in
        /// local-stack samples, business_id 1 APNs … 8 TPNS).
        #[arg(long, env = "IMPUSH_CONFIG")]
        config: Option<PathBuf>,
        /// Input file (default: standard input).
        #[arg(long)]
        file: Option<PathBuf>,
        /// `json`: one object a line (the contract); `table`: for people.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Decide as of this instant, ms since the epoch (default: each message's
        /// send_time_ms, i.e. as if pushed at once).
        #[arg(long)]
        now_ms: Option<i64>,
    },
    /// Show or check the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the effective configuration (file + IMPUSH__* environment overrides +
    /// defaults) with passwords and secrets replaced by `***`.
    Show {
        #[arg(
            long,
            env = "IMPUSH_CONFIG",
            default_value = "deploy/local/impush.toml"
        )]
        config: PathBuf,
    },
    /// Validate the configuration and load every credential's secrets, as the workers do at
    /// start; exit 0 when they would start.
    Check {
        #[arg(
            long,
            env = "IMPUSH_CONFIG",
            default_value = "deploy/local/impush.toml"
        )]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Table,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup { config, reset } => publish::setup(&config, reset),
        Command::Publish { config, file } => publish::publish(&config, file.as_deref()),
        Command::Dlq { command } => dlq::run(command),
        Command::Render {
            config,
            file,
            format,
            now_ms,
        } => run_render(config, file, format, now_ms),
        Command::Config { action } => match action {
            ConfigAction::Show { config } => config_cmd::show(&config),
            ConfigAction::Check { config } => config_cmd::check(&config),
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("impush: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run_render(
    config: Option<PathBuf>,
    file: Option<PathBuf>,
    format: Format,
    now_ms: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let config = match config {
        Some(path) => impush_config::Config::load(&path)?,
        None => impush_config::Config::sample()?,
    };
    let input: Box<dyn BufRead> = match &file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let wall_clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let mut out = std::io::stdout().lock();
    let mut bad_lines = 0usize;
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match render::render_line(&line, &config, now_ms, wall_clock) {
            Ok(rendered) => match format {
                Format::Json => writeln!(out, "{}", rendered.output)?,
                Format::Table => write!(out, "{}", render::format_table(index + 1, &rendered))?,
            },
            Err(err) => {
                bad_lines += 1;
                eprintln!("line {}: {err}", index + 1);
            }
        }
    }
    out.flush()?;
    Ok(if bad_lines == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
