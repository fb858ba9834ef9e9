//! Round trips shared between callers: on one Redis server, every batch a process's tasks
//! run while a round trip is under way waits for it and then goes out together with the
//! others, as one pipeline (at most [`MAX_IN_FLIGHT`] round trips at once). At a low rate
//! each batch still leaves alone and at once; under load, the router's reads and badge
//! bumps and the senders' claims and delivery records of many notifications share one
//! round trip, so Redis reads, parses and answers one socket event instead of dozens. The
//! same self-clocking as the router's bundles of PushJobs (`impush-router/src/bundle.rs`).
//!
//! Each caller gets exactly its own replies, in its own order; a command's error stays its
//! own reply (`Value::ServerError`), and only a failure of the whole round trip (the
//! connection lost) fails every caller in it. A Redis Cluster is not coalesced here: its
//! batches already split per node (`cluster.rs`), and one node's outage must not fail a
//! batch whose keys live elsewhere.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, RedisError, Value};
use tokio::sync::{mpsc, oneshot};

use crate::connection::count_round_trip;

/// Round trips under way at once: the next pipeline gathers while one is answered.
const MAX_IN_FLIGHT: usize = 2;
/// Commands one shared pipeline carries at most (a bound on its size and latency).
const MAX_COMMANDS: usize = 4_096;

type Reply = Result<Vec<Value>, RedisError>;

struct Request {
    cmds: Vec<Cmd>,
    reply: oneshot::Sender<Reply>,
}

/// The handle callers share; the task behind it ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Coalescer {
    requests: mpsc::UnboundedSender<Request>,
}

impl Coalescer {
    /// Starts the task that runs shared pipelines on `con` (on the current tokio runtime).
    pub(crate) fn start(con: ConnectionManager) -> Coalescer {
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(serve(con, queue));
        Coalescer { requests }
    }

    /// Runs `cmds` in the next round trip and returns their replies in order.
    pub(crate) async fn run(&self, cmds: Vec<Cmd>) -> Reply {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { cmds, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> RedisError {
    RedisError::from((
        ErrorKind::Io,
        "the Redis round-trip task stopped (the runtime is shutting down)",
    ))
}

async fn serve(con: ConnectionManager, mut queue: mpsc::UnboundedReceiver<Request>) {
    let mut running = FuturesUnordered::new();
    let mut open = true;
    while open || !running.is_empty() {
        tokio::select! {
            // Finished round trips first: they make room for the next pipeline.
            biased;
            Some(()) = running.next(), if !running.is_empty() => {}
            next = queue.recv(), if open && running.len() < MAX_IN_FLIGHT => match next {
                Some(first) => {
                    let mut requests = vec![first];
                    let mut commands = requests[0].cmds.len();
                    while commands < MAX_COMMANDS {
                        let Ok(more) = queue.try_recv() else { break };
                        commands += more.cmds.len();
                        requests.push(more);
                    }
                    running.push(round_trip(con.clone(), requests, commands));
                }
                None => open = false,
            },
        }
    }
}

/// One pipeline for every request, its replies handed back to each.
async fn round_trip(mut con: ConnectionManager, mut requests: Vec<Request>, commands: usize) {
    count_round_trip(commands);
    let mut pipe = redis::pipe();
    let mut sizes = Vec::with_capacity(requests.len());
    for request in &mut requests {
        sizes.push(request.cmds.len());
        for cmd in std::mem::take(&mut request.cmds) {
            pipe.add_command(cmd);
        }
    }
    match con.req_packed_commands(&pipe, 0, commands).await {
        Ok(replies) if replies.len() == commands => {
            let mut replies = replies.into_iter();
            for (request, size) in requests.into_iter().zip(sizes) {
                let own: Vec<Value> = replies.by_ref().take(size).collect();
                // A caller that gave up (its task cancelled) no longer wants the answer.
                let _ = request.reply.send(Ok(own));
            }
        }
        Ok(replies) => {
            let error = RedisError::from((
                ErrorKind::Client,
                "a pipeline's reply count did not match its commands",
                format!("{} replies for {commands} commands", replies.len()),
            ));
            for request in requests {
                let _ = request.reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            for request in requests {
                let _ = request.reply.send(Err(error.clone()));
            }
        }
    }
}
