//! What a delivery receipt needs: the devices a message's push reached, read from the list
//! the sender keeps for recalls ([`Store::mark_sent_and_shown`]), so that a receipt naming
//! only a token finds its user and device.

use impush_proto::v1::ShownPush;
use prost::Message;
use redis::Value;

use crate::connection::Batch;
use crate::error::StoreError;
use crate::{Store, reply};

impl Store {
    /// The devices `msg_id`'s push reached (one round trip); empty once the record expired
    /// (`[router] max_age_s` and the retry ladder after the send, see `recall_memory_s`).
    pub async fn shown_pushes(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
    ) -> Result<Vec<ShownPush>, StoreError> {
        const CALL: &str = "shown_pushes";
        let key = self.keys.shown(sdk_app_id, msg_id);
        let mut range = redis::cmd("LRANGE");
        range.arg(&key).arg(0).arg(-1);
        let mut batch = Batch::new();
        batch.add(&key, range);
        let reply = self.run_batch(&batch).await?.into_iter().next();
        let mut pushes = Vec::new();
        for entry in reply::array(CALL, reply.unwrap_or(Value::Nil))? {
            match entry {
                Value::BulkString(bytes) => match ShownPush::decode(bytes.as_slice()) {
                    Ok(push) => pushes.push(push),
                    Err(err) => {
                        tracing::warn!(key = %key, error = %err, "skipping a corrupt shown push");
                    }
                },
                other => {
                    tracing::warn!(key = %key, ?other, "skipping a shown push that is not bytes");
                }
            }
        }
        Ok(pushes)
    }
}
