//! `impush dlq`: the on-call engineer's dead-letter tool. `list` counts dead letters per
//! queue and reason, `inspect` shows them decoded, `replay` puts them back to work, and
//! `purge` deletes them; all but `list` act on one queue, selected by `--vendor`, and on
//! the messages the filters select.
//!
//! Only `replay` and `purge` remove anything, and a message leaves its DLQ only after its
//! new copy is confirmed by RabbitMQ (replay) or the deletion is confirmed by a person
//! (purge). Everything else is given back to the DLQ in order (see `walk`).

mod filter;
mod show;
mod walk;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use impush_amqp::options::BasicPublishOptions;
use impush_amqp::{
    AMQPValue, AmqpError, BasicProperties, Connection, DeadLetterHeaders, Delivery, Topology,
    headers,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prost::Message;
use serde_json::{Value, json};
use tokio::sync::watch;

use filter::{Filter, Target, format_instant, parse_instant};
use show::Body;
use walk::Walk;

/// Messages published before their confirms are awaited together. A batch is what
/// `replay` finishes when interrupted.
const REPLAY_BATCH: usize = 64;

/// How long to wait for RabbitMQ to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Exit status of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// What can stop a dead-letter command; each is reported as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(
        "unknown vendor {0:?}: expected {known} or events",
        known = impush_core::vendor::ALL.map(impush_core::vendor::name).join(", ")
    )]
    UnknownVendor(String),
    #[error("{flag} {text:?}: expected RFC 3339 (2026-11-22T03:00:00Z) or ms since the epoch")]
    BadInstant { flag: &'static str, text: String },
    #[error("loading {path}: {source}")]
    Config {
        path: String,
        source: impush_config::ConfigError,
    },
    #[error("cannot reach RabbitMQ at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("queue {0} does not exist: the topology is not declared (run `impush setup`)")]
    QueueAbsent(String),
    #[error("{0}")]
    Broker(#[from] AmqpError),
    #[error("RabbitMQ refused to take a replayed message on {0}; it stays in the DLQ")]
    Refused(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Options every dead-letter command takes.
#[derive(clap::Args)]
pub struct Common {
    /// The config file whose `[amqp]` url and prefix to use.
    #[arg(
        long,
        env = "IMPUSH_CONFIG",
        default_value = "deploy/local/impush.toml"
    )]
    config: PathBuf,
}

/// Which dead letters of the queue to act on.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// Only messages with this `x-impush-reason` (e.g. retries_exhausted, BadTopic).
    #[arg(long)]
    reason: Option<String>,
    /// Only messages dead-lettered at or after this instant: RFC 3339 or ms since the epoch.
    #[arg(long)]
    since: Option<String>,
    /// Only messages dead-lettered before this instant: RFC 3339 or ms since the epoch.
    #[arg(long)]
    until: Option<String>,
}

impl FilterArgs {
    fn parse(&self) -> Result<Filter, DlqError> {
        Ok(Filter {
            reason: self.reason.clone(),
            since_ms: self
                .since
                .as_deref()
                .map(|t| parse_instant("--since", t))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|t| parse_instant("--until", t))
                .transpose()?,
        })
    }
}

#[derive(clap::Subcommand)]
pub enum DlqCommand {
    /// Count dead letters per queue and reason (every DLQ, or the one of --vendor).
    List {
        #[command(flatten)]
        common: Common,
        /// A vendor as `impush-sender --vendor` names it (`apns`, `fcm`, …), or `events`.
        #[arg(long)]
        vendor: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// `table` for people, `json` for one object a line.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show dead letters decoded, with their headers, as JSON lines; removes nothing.
    Inspect {
        #[command(flatten)]
        common: Common,
        /// A vendor as `impush-sender --vendor` names it (`apns`, `fcm`, …), or `events`.
        #[arg(long)]
        vendor: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back to work with a fresh retry budget: PushJobs to their vendor's
    /// queue, events to the queue they came from. Safe to interrupt and run again.
    Replay {
        #[command(flatten)]
        common: Common,
        /// A vendor as `impush-sender --vendor` names it (`apns`, `fcm`, …), or `events`.
        #[arg(long)]
        vendor: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay at most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// Show what would move and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters for good, after typing the queue name (or --yes).
    Purge {
        #[command(flatten)]
        common: Common,
        /// A vendor as `impush-sender --vendor` names it (`apns`, `fcm`, …), or `events`.
        #[arg(long)]
        vendor: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Delete at most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// Show what would be deleted and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (for scripts).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

pub fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(dispatch(command));
    // A confirmation prompt may still be reading standard input; it must not hold the exit.
    runtime.shutdown_background();
    Ok(result?)
}

async fn dispatch(command: DlqCommand) -> Result<ExitCode, DlqError> {
    match command {
        DlqCommand::List {
            common,
            vendor,
            filter,
            format,
        } => {
            let targets = match vendor {
                Some(name) => vec![Target::parse(&name)?],
                None => Target::all().collect(),
            };
            let filter = filter.parse()?;
            let session = Session::open(&common.config).await?;
            list(&session, &targets, &filter, format).await
        }
        DlqCommand::Inspect {
            common,
            vendor,
            filter,
            limit,
        } => {
            let target = Target::parse(&vendor)?;
            let filter = filter.parse()?;
            let session = Session::open(&common.config).await?;
            inspect(&session, target, &filter, limit).await
        }
        DlqCommand::Replay {
            common,
            vendor,
            filter,
            limit,
            dry_run,
        } => {
            let target = Target::parse(&vendor)?;
            let filter = filter.parse()?;
            let session = Session::open(&common.config).await?;
            replay(&session, target, &filter, limit, dry_run).await
        }
        DlqCommand::Purge {
            common,
            vendor,
            filter,
            limit,
            dry_run,
            yes,
        } => {
            let target = Target::parse(&vendor)?;
            let filter = filter.parse()?;
            let session = Session::open(&common.config).await?;
            purge(&session, target, &filter, limit, dry_run, yes).await
        }
    }
}

/// The broker connection and names for one run, and whether it was asked to stop.
struct Session {
    connection: Connection,
    topology: Topology,
    /// SIGINT and SIGTERM received so far.
    signals: watch::Receiver<u32>,
}

impl Session {
    async fn open(path: &Path) -> Result<Session, DlqError> {
        let config_error = |source| DlqError::Config {
            path: path.display().to_string(),
            source,
        };
        let config = impush_config::Config::load(path).map_err(config_error)?;
        let tls = config.amqp_tls().map_err(config_error)?;
        let address = without_credentials(&config.amqp.url);
        let connect = impush_amqp::connect_with_tls(&config.amqp.url, &tls);
        let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => {
                return Err(DlqError::Unreachable {
                    address,
                    reason: err.to_string(),
                });
            }
            Err(_) => {
                return Err(DlqError::Unreachable {
                    address,
                    reason: format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()),
                });
            }
        };
        Ok(Session {
            connection,
            topology: Topology::new(&config.amqp),
            signals: count_signals(),
        })
    }

    /// The first signal stops the work after the message (or replay batch) in hand.
    fn stopped(&self) -> bool {
        *self.signals.borrow() >= 1
    }

    /// A second one also gives up keeping the DLQ's order (see `walk`), to exit at once.
    fn gave_up(&self) -> bool {
        *self.signals.borrow() >= 2
    }
}

/// The broker's address without user and password, for error messages.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

/// Counts SIGINT and SIGTERM; the commands check the count between messages.
fn count_signals() -> watch::Receiver<u32> {
    use tokio::signal::unix::{SignalKind, signal};
    let (sender, receiver) = watch::channel(0);
    tokio::spawn(async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            sender.send_modify(|count| *count += 1);
            if *sender.borrow() == 1 {
                eprintln!(
                    "\nimpush: stopping after the message in hand, giving the rest back in \
                     order (interrupt again to skip keeping the order)"
                );
            }
        }
    });
    receiver
}

/// A progress bar with rate and ETA on standard error, when that is a terminal.
fn progress(length: u32, verb: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(u64::from(length)), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} messages, {per_sec}, ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(verb);
    bar
}

/// Writes one JSON line to standard output without tearing the progress bar.
fn emit(bar: &ProgressBar, line: &Value) -> Result<(), DlqError> {
    bar.suspend(|| writeln!(std::io::stdout().lock(), "{line}"))?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Dead letters of one queue and reason.
#[derive(Default)]
struct ReasonCount {
    count: u64,
    oldest_ms: Option<u64>,
    newest_ms: Option<u64>,
}

async fn list(
    session: &Session,
    targets: &[Target],
    filter: &Filter,
    format: ListFormat,
) -> Result<ExitCode, DlqError> {
    let mut rows: Vec<(Target, String, String, ReasonCount)> = Vec::new();
    for &target in targets {
        let queue = target.queue(&session.topology);
        let mut walk = Walk::open(&session.connection, &queue).await?;
        let bar = progress(walk.length(), "counting");
        let mut counts: BTreeMap<String, ReasonCount> = BTreeMap::new();
        while !session.stopped() {
            let Some(delivery) = walk.next().await? else {
                break;
            };
            bar.inc(1);
            let dead = DeadLetterHeaders::read(&delivery.properties);
            if !filter.matches(&dead) {
                continue;
            }
            let entry = counts
                .entry(dead.reason.unwrap_or_else(|| "(none)".to_owned()))
                .or_default();
            entry.count += 1;
            if let Some(at) = dead.dead_at_ms {
                entry.oldest_ms = Some(entry.oldest_ms.map_or(at, |o| o.min(at)));
                entry.newest_ms = Some(entry.newest_ms.map_or(at, |n| n.max(at)));
            }
        }
        walk.finish(&session.connection, &bar, || session.gave_up())
            .await?;
        bar.finish_and_clear();
        rows.extend(
            counts
                .into_iter()
                .map(|(reason, count)| (target, queue.clone(), reason, count)),
        );
    }
    let mut out = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            for (target, queue, reason, count) in &rows {
                let line = json!({
                    "queue": queue,
                    "vendor": target.name(),
                    "reason": reason,
                    "count": count.count,
                    "oldest_dead_at_ms": count.oldest_ms,
                    "newest_dead_at_ms": count.newest_ms,
                });
                writeln!(out, "{line}")?;
            }
        }
        ListFormat::Table => {
            writeln!(
                out,
                "{:<8} {:<28} {:>8}  {:<24} newest dead at",
                "vendor", "reason", "count", "oldest dead at"
            )?;
            for (target, _, reason, count) in &rows {
                let at = |ms: Option<u64>| ms.map_or_else(|| "-".to_owned(), format_instant);
                writeln!(
                    out,
                    "{:<8} {:<28} {:>8}  {:<24} {}",
                    target.name(),
                    reason,
                    count.count,
                    at(count.oldest_ms),
                    at(count.newest_ms)
                )?;
            }
            let total: u64 = rows.iter().map(|row| row.3.count).sum();
            writeln!(out, "{total} dead letter(s) in {} queue(s)", targets.len())?;
        }
    }
    Ok(if session.stopped() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn inspect(
    session: &Session,
    target: Target,
    filter: &Filter,
    limit: usize,
) -> Result<ExitCode, DlqError> {
    let queue = target.queue(&session.topology);
    let mut walk = Walk::open(&session.connection, &queue).await?;
    let bar = progress(walk.length(), "reading");
    let mut position = 0u32;
    let mut shown = 0usize;
    while shown < limit && !session.stopped() {
        let Some(delivery) = walk.next().await? else {
            break;
        };
        position += 1;
        bar.inc(1);
        if !filter.matches(&DeadLetterHeaders::read(&delivery.properties)) {
            continue;
        }
        let body = Body::decode(target, &delivery);
        emit(
            &bar,
            &show::inspect_line(&queue, position, &delivery, &body),
        )?;
        shown += 1;
    }
    walk.finish(&session.connection, &bar, || session.gave_up())
        .await?;
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

/// A dead letter ready to go back to work.
struct Move {
    delivery_tag: u64,
    exchange: String,
    routing_key: String,
    body: Vec<u8>,
    properties: BasicProperties,
    summary: Value,
}

/// Where a dead letter goes back to, and its body with a fresh retry budget; `Err` says
/// why it cannot be replayed (it then stays in the DLQ).
fn plan_move(
    target: Target,
    topology: &Topology,
    delivery: &Delivery,
    now_ms: i64,
) -> Result<(String, String, Vec<u8>, BasicProperties), String> {
    let properties = replay_properties(&delivery.properties, now_ms);
    match target {
        Target::Vendor(vendor) => {
            // The attempt count lives in the job: reset, the sender gives it a whole retry
            // ladder again. Re-encoding keeps only the fields this build knows, so `impush`
            // is deployed with the fleet it serves (PushJob is internal to impush). A body
            // that is not a PushJob goes back as it is, for the sender to judge (and
            // dead-letter again) like any other.
            let body = match impush_proto::v1::PushJob::decode(delivery.data.as_slice()) {
                Ok(mut job) => {
                    job.attempt = 0;
                    job.encode_to_vec()
                }
                Err(_) => delivery.data.clone(),
            };
            Ok((
                topology.push_exchange(),
                impush_core::vendor::name(vendor).to_owned(),
                body,
                properties,
            ))
        }
        Target::Events => {
            // Only this prefix's own event queues: a header is data, not an address to trust.
            let own = [topology.state_queue(), topology.messages_queue()];
            match impush_amqp::header_str(&delivery.properties, headers::SOURCE_QUEUE) {
                Some(source) if own.iter().any(|q| q == source) => Ok((
                    String::new(),
                    source.to_owned(),
                    delivery.data.clone(),
                    properties,
                )),
                Some(source) => Err(format!("source queue {source:?} is not an event queue")),
                None => Err(format!("no {} header", headers::SOURCE_QUEUE)),
            }
        }
    }
}

/// The dead letter's properties with `x-impush-replayed-at-ms` added. A per-message
/// `expiration` is dropped (its clock started at the first publish, and the retry ladder's
/// expirations must not follow a job back to work), and so is `user_id`, which RabbitMQ
/// refuses unless it names the publishing connection's user.
fn replay_properties(original: &BasicProperties, now_ms: i64) -> BasicProperties {
    let mut table = original.headers().clone().unwrap_or_default();
    table.insert(
        headers::REPLAYED_AT_MS.into(),
        AMQPValue::LongLongInt(now_ms),
    );
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(table);
    if let Some(v) = original.content_type() {
        properties = properties.with_content_type(v.clone());
    }
    if let Some(v) = original.content_encoding() {
        properties = properties.with_content_encoding(v.clone());
    }
    if let Some(v) = original.priority() {
        properties = properties.with_priority(*v);
    }
    if let Some(v) = original.correlation_id() {
        properties = properties.with_correlation_id(v.clone());
    }
    if let Some(v) = original.reply_to() {
        properties = properties.with_reply_to(v.clone());
    }
    if let Some(v) = original.message_id() {
        properties = properties.with_message_id(v.clone());
    }
    if let Some(v) = original.timestamp() {
        properties = properties.with_timestamp(*v);
    }
    if let Some(v) = original.kind() {
        properties = properties.with_type(v.clone());
    }
    if let Some(v) = original.app_id() {
        properties = properties.with_app_id(v.clone());
    }
    if let Some(v) = original.cluster_id() {
        properties = properties.with_cluster_id(v.clone());
    }
    properties
}

fn summary(
    action: &str,
    target: Target,
    delivery: &Delivery,
    dead: &DeadLetterHeaders,
    to: Option<&str>,
) -> Value {
    let body = Body::decode(target, delivery);
    json!({
        "action": action,
        "msg_id": body.msg_id(&delivery.properties),
        "reason": dead.reason,
        "dead_at_ms": dead.dead_at_ms,
        "to": to,
    })
}

/// What a replay or purge did, for its last line.
#[derive(Default)]
struct Tally {
    selected: u64,
    done: u64,
    unmovable: u64,
}

async fn replay(
    session: &Session,
    target: Target,
    filter: &Filter,
    limit: Option<usize>,
    dry_run: bool,
) -> Result<ExitCode, DlqError> {
    let queue = target.queue(&session.topology);
    let mut walk = Walk::open(&session.connection, &queue).await?;
    let bar = progress(
        walk.length(),
        if dry_run { "checking" } else { "replaying" },
    );
    let limit = limit.unwrap_or(usize::MAX);
    let mut tally = Tally::default();
    let mut batch: Vec<Move> = Vec::new();
    let mut failure = None;
    while (tally.selected as usize) < limit && !session.stopped() {
        let Some(delivery) = walk.next().await? else {
            break;
        };
        bar.inc(1);
        let dead = DeadLetterHeaders::read(&delivery.properties);
        if !filter.matches(&dead) {
            continue;
        }
        tally.selected += 1;
        match plan_move(target, &session.topology, &delivery, now_ms()) {
            Ok((exchange, routing_key, body, properties)) => {
                let to = destination(&exchange, &routing_key);
                if dry_run {
                    emit(
                        &bar,
                        &summary("would_replay", target, &delivery, &dead, Some(&to)),
                    )?;
                    continue;
                }
                batch.push(Move {
                    delivery_tag: delivery.delivery_tag,
                    summary: summary("replayed", target, &delivery, &dead, Some(&to)),
                    exchange,
                    routing_key,
                    body,
                    properties,
                });
                if batch.len() >= REPLAY_BATCH
                    && let Err(err) =
                        move_batch(&mut walk, std::mem::take(&mut batch), &bar, &mut tally).await
                {
                    failure = Some(err);
                    break;
                }
            }
            Err(why) => {
                tally.unmovable += 1;
                let mut line = summary("kept", target, &delivery, &dead, None);
                line["why"] = Value::String(why);
                emit(&bar, &line)?;
            }
        }
    }
    // A batch still waiting is published unless the run was interrupted: what was only
    // taken, not sent, goes back to the DLQ with the rest.
    if failure.is_none()
        && !batch.is_empty()
        && !session.stopped()
        && let Err(err) = move_batch(&mut walk, batch, &bar, &mut tally).await
    {
        failure = Some(err);
    }
    let interrupted = session.stopped();
    walk.finish(&session.connection, &bar, || session.gave_up())
        .await?;
    bar.finish_and_clear();
    let left = queue_left(session, &queue).await;
    let verb = if dry_run { "would replay" } else { "replayed" };
    eprintln!(
        "{}{verb} {} of {} selected message(s) from {queue}; {} could not be replayed; {} left in the DLQ{}",
        if interrupted { "interrupted: " } else { "" },
        if dry_run {
            tally.selected - tally.unmovable
        } else {
            tally.done
        },
        tally.selected,
        tally.unmovable,
        left,
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        },
    );
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(if interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

fn destination(exchange: &str, routing_key: &str) -> String {
    if exchange.is_empty() {
        routing_key.to_owned()
    } else {
        format!("{exchange}/{routing_key}")
    }
}

/// The queue's length now, for the last line; unknown if it cannot be read.
async fn queue_left(session: &Session, queue: &str) -> String {
    match impush_amqp::queue_length(&session.connection, queue).await {
        Ok(Some(n)) => n.to_string(),
        _ => "an unknown number".to_owned(),
    }
}

/// Publishes the batch, then removes from the DLQ each message whose copy RabbitMQ
/// confirmed, in order. A refused copy stops the replay; its message stays in the DLQ.
async fn move_batch(
    walk: &mut Walk,
    batch: Vec<Move>,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<(), DlqError> {
    let mut pending = Vec::with_capacity(batch.len());
    for item in batch {
        let confirm = walk
            .channel()
            .basic_publish(
                item.exchange.as_str().into(),
                item.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &item.body,
                item.properties,
            )
            .await
            .map_err(AmqpError::from)?;
        pending.push((
            item.delivery_tag,
            destination(&item.exchange, &item.routing_key),
            item.summary,
            confirm,
        ));
    }
    let mut refused = None;
    for (delivery_tag, to, summary, confirm) in pending {
        let confirmation = confirm.await.map_err(AmqpError::from)?;
        if confirmation.is_nack() || confirmation.take_message().is_some() {
            refused.get_or_insert(to);
            continue;
        }
        walk.remove(delivery_tag).await?;
        tally.done += 1;
        emit(bar, &summary)?;
    }
    match refused {
        Some(to) => Err(DlqError::Refused(to)),
        None => Ok(()),
    }
}

async fn purge(
    session: &Session,
    target: Target,
    filter: &Filter,
    limit: Option<usize>,
    dry_run: bool,
    yes: bool,
) -> Result<ExitCode, DlqError> {
    let queue = target.queue(&session.topology);
    let mut walk = Walk::open(&session.connection, &queue).await?;
    let bar = progress(walk.length(), "selecting");
    let limit = limit.unwrap_or(usize::MAX);
    let mut selected: Vec<(u64, Value)> = Vec::new();
    while selected.len() < limit && !session.stopped() {
        let Some(delivery) = walk.next().await? else {
            break;
        };
        bar.inc(1);
        let dead = DeadLetterHeaders::read(&delivery.properties);
        if filter.matches(&dead) {
            selected.push((
                delivery.delivery_tag,
                summary("purged", target, &delivery, &dead, None),
            ));
        }
    }
    // Every message is taken before asking, so that what is kept goes back in order.
    walk.take_rest(&bar, || session.gave_up()).await?;
    bar.finish_and_clear();
    let interrupted = session.stopped();
    let confirmed = if interrupted || dry_run || selected.is_empty() {
        false
    } else {
        yes || confirm(session, &queue, selected.len()).await?
    };
    let mut removed = 0u64;
    if confirmed {
        for (delivery_tag, summary) in &selected {
            walk.remove(*delivery_tag).await?;
            removed += 1;
            emit(&bar, summary)?;
        }
    } else if dry_run {
        for (_, summary) in &mut selected {
            summary["action"] = Value::String("would_purge".into());
            emit(&bar, summary)?;
        }
    }
    walk.finish(&session.connection, &bar, || session.gave_up())
        .await?;
    let left = queue_left(session, &queue).await;
    if dry_run {
        eprintln!(
            "would purge {} message(s) from {queue} (dry run: nothing changed)",
            selected.len()
        );
    } else if confirmed || selected.is_empty() {
        eprintln!("purged {removed} message(s) from {queue}; {left} left in the DLQ");
    } else {
        eprintln!("not confirmed: nothing purged from {queue}");
        return Ok(if interrupted {
            ExitCode::from(EXIT_INTERRUPTED)
        } else {
            ExitCode::FAILURE
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal for the queue name; anything else, end of input or a signal
/// means no.
async fn confirm(session: &Session, queue: &str, count: usize) -> Result<bool, DlqError> {
    eprint!(
        "This deletes {count} message(s) from {queue} for good. Type the queue name to confirm: "
    );
    std::io::stderr().flush()?;
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    let mut signals = session.signals.clone();
    tokio::select! {
        answer = answer => match answer {
            Ok(Ok(line)) => Ok(line.trim() == queue),
            Ok(Err(err)) => Err(err.into()),
            Err(_) => Ok(false),
        },
        _ = signals.wait_for(|count| *count >= 1) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_never_show_the_broker_password() {
        assert_eq!(
            without_credentials("amqp://guest:s3cret@rabbit.internal:5672/%2f"),
            "amqp://rabbit.internal:5672/%2f"
        );
        assert_eq!(without_credentials("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn a_replayed_message_keeps_its_properties_and_headers_but_not_its_expiry() {
        let mut table = impush_amqp::FieldTable::default();
        table.insert(
            headers::REASON.into(),
            AMQPValue::LongString("BadTopic".into()),
        );
        let original = impush_amqp::protobuf_properties("PushJob")
            .with_message_id("m1".into())
            .with_expiration("5000".into())
            .with_user_id("someone".into())
            .with_headers(table);
        let replayed = replay_properties(&original, 42);
        assert_eq!(
            replayed.message_id().as_ref().map(|v| v.as_str()),
            Some("m1")
        );
        assert_eq!(
            replayed.kind().as_ref().map(|v| v.as_str()),
            Some("PushJob")
        );
        assert_eq!(
            replayed.content_type().as_ref().map(|v| v.as_str()),
            Some("application/x-protobuf")
        );
        assert_eq!(*replayed.delivery_mode(), Some(2));
        assert_eq!(*replayed.expiration(), None);
        assert_eq!(*replayed.user_id(), None);
        assert_eq!(
            impush_amqp::header_str(&replayed, headers::REASON),
            Some("BadTopic")
        );
        assert_eq!(
            impush_amqp::header_u64(&replayed, headers::REPLAYED_AT_MS),
            Some(42)
        );
    }
}
