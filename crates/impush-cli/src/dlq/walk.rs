//! A walk through a dead-letter queue that takes messages without removing them.
//!
//! Each message is taken with `basic.get` and left unacknowledged, so it is invisible to the
//! rest of the walk and every message present at the start is seen exactly once. A message
//! leaves the queue only when it is acked (`remove`); everything else is given back with
//! `basic.nack` and requeue, one at a time and in order, at the end (`finish`).
//!
//! Giving back keeps the order only if the walk went through the whole queue: a quorum
//! queue puts returned messages behind those still ready (seen on RabbitMQ 3.10), so a walk
//! that stopped early would rotate the queue. `finish` therefore takes the rest first,
//! unless told to give up (a second SIGINT).
//!
//! It is a nack and never a reject on purpose: from RabbitMQ 4.0, quorum queues count
//! rejects, not nacks, against the delivery limit (20 by default), and a DLQ has no
//! dead-letter exchange of its own, so a counted return could at last drop a message only
//! because it was browsed. If the process dies instead, the broker returns the
//! unacknowledged messages when it notices the connection is gone.

use std::collections::BTreeSet;
use std::time::Duration;

use impush_amqp::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions,
};
use impush_amqp::{AmqpError, Channel, Connection, Delivery};
use indicatif::ProgressBar;

use super::DlqError;

/// How long `finish` waits for given-back messages to show; they are safe either way.
const RETURN_WAIT: Duration = Duration::from_secs(10);

/// Messages given back before waiting for the queue to show them: well under the 32
/// pending commands after which RabbitMQ's quorum queue client starts buffering.
const RETURN_CHUNK: u32 = 16;

pub struct Walk {
    channel: Channel,
    queue: String,
    length: u32,
    left: u32,
    taken: BTreeSet<u64>,
}

impl Walk {
    /// Opens the walk over the messages `queue` holds now; its channel is in confirm mode,
    /// so it can also publish what it moves.
    pub async fn open(connection: &Connection, queue: &str) -> Result<Walk, DlqError> {
        let length = impush_amqp::queue_length(connection, queue)
            .await?
            .ok_or_else(|| DlqError::QueueAbsent(queue.to_owned()))?;
        let channel = connection.create_channel().await.map_err(AmqpError::from)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(AmqpError::from)?;
        Ok(Walk {
            channel,
            queue: queue.to_owned(),
            length,
            left: length,
            taken: BTreeSet::new(),
        })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Messages in the queue when the walk began.
    pub fn length(&self) -> u32 {
        self.length
    }

    /// The next message; `None` once every message present at the start was seen (those
    /// dead-lettered during the walk wait for the next run).
    pub async fn next(&mut self) -> Result<Option<Delivery>, DlqError> {
        if self.left == 0 {
            return Ok(None);
        }
        let got = self
            .channel
            .basic_get(
                self.queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(AmqpError::from)?;
        match got {
            Some(message) => {
                self.left -= 1;
                self.taken.insert(message.delivery.delivery_tag);
                Ok(Some(message.delivery))
            }
            None => {
                self.left = 0;
                Ok(None)
            }
        }
    }

    /// Removes a taken message from the queue for good.
    pub async fn remove(&mut self, delivery_tag: u64) -> Result<(), DlqError> {
        self.channel
            .basic_ack(delivery_tag, BasicAckOptions { multiple: false })
            .await
            .map_err(AmqpError::from)?;
        self.taken.remove(&delivery_tag);
        Ok(())
    }

    /// Takes the messages not seen yet, so that giving back keeps the order.
    pub async fn take_rest(
        &mut self,
        bar: &ProgressBar,
        give_up: impl Fn() -> bool,
    ) -> Result<(), DlqError> {
        while !give_up() && self.next().await?.is_some() {
            bar.inc(1);
        }
        Ok(())
    }

    /// Gives back every taken message not removed, in order, and closes the channel.
    pub async fn finish(
        mut self,
        connection: &Connection,
        bar: &ProgressBar,
        give_up: impl Fn() -> bool,
    ) -> Result<(), DlqError> {
        self.take_rest(bar, &give_up).await?;
        // Returns go a small chunk at a time, waiting until the queue shows each chunk: the
        // quorum queue client of RabbitMQ 3.10 buffers commands once a few dozen are
        // pending and sends the buffered returns in no particular order (seen with a
        // multiple nack, with back-to-back nacks and on channel close, from about 30
        // messages on), while returns that never queue up keep their order.
        let before = impush_amqp::queue_length(connection, &self.queue)
            .await?
            .unwrap_or(0);
        let mut given_back = 0u32;
        for tag in self.taken.iter().take_while(|_| !give_up()) {
            self.channel
                .basic_nack(
                    *tag,
                    BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    },
                )
                .await
                .map_err(AmqpError::from)?;
            given_back += 1;
            if given_back.is_multiple_of(RETURN_CHUNK) {
                self.wait_until_shown(connection, before + given_back)
                    .await?;
            }
        }
        // Given up, the channel's close returns the rest at once, in whatever order.
        self.channel
            .close(200, "done".into())
            .await
            .map_err(AmqpError::from)?;
        let taken = u32::try_from(self.taken.len()).unwrap_or(u32::MAX);
        self.wait_until_shown(connection, before + taken).await?;
        Ok(())
    }

    /// Waits, a little, until the queue holds `ready` messages; a run started right after
    /// this one must see all that this one gave back.
    async fn wait_until_shown(&self, connection: &Connection, ready: u32) -> Result<(), DlqError> {
        let deadline = tokio::time::Instant::now() + RETURN_WAIT;
        while tokio::time::Instant::now() < deadline {
            match impush_amqp::queue_length(connection, &self.queue).await? {
                Some(now) if now < ready => tokio::time::sleep(Duration::from_millis(2)).await,
                _ => break,
            }
        }
        Ok(())
    }
}
