//! A publisher with confirms: a message counts as sent only once RabbitMQ confirmed it
//! (written to disk, or replicated for quorum queues). Batches are pipelined: all
//! publishes go out, then all confirms are awaited.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};

use crate::AmqpError;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub properties: BasicProperties,
    /// A mandatory message that no queue would take is an error (never silently dropped).
    /// Only notifications others may or may not listen to (`feedback.token`) are not.
    pub mandatory: bool,
}

#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    pub async fn open(connection: &Connection) -> Result<Publisher, AmqpError> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher { channel })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes one message and waits for its confirm.
    pub async fn publish(&self, message: Outgoing) -> Result<(), AmqpError> {
        self.publish_all(vec![message]).await
    }

    /// Publishes every message, then waits for every confirm.
    pub async fn publish_all(&self, messages: Vec<Outgoing>) -> Result<(), AmqpError> {
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let confirm = self
                .channel
                .basic_publish(
                    message.exchange.as_str().into(),
                    message.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: message.mandatory,
                        ..BasicPublishOptions::default()
                    },
                    &message.body,
                    message.properties,
                )
                .await?;
            pending.push((message.exchange, message.routing_key, confirm));
        }
        for (exchange, routing_key, confirm) in pending {
            let confirmation = confirm.await?;
            if confirmation.is_nack() {
                return Err(AmqpError::Nacked {
                    exchange,
                    routing_key,
                });
            }
            if confirmation.take_message().is_some() {
                return Err(AmqpError::Unroutable {
                    exchange,
                    routing_key,
                });
            }
        }
        Ok(())
    }
}
