//! `impush setup` and `impush publish`: the broker side of the CLI.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use impush_amqp::{Outgoing, Publisher, Topology, protobuf_properties};
use impush_proto::Event;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn load(config: &Path) -> anyhow::Result<impush_config::Config> {
    impush_config::Config::load(config).with_context(|| format!("loading {}", config.display()))
}

pub fn setup(config: &Path, reset: bool) -> anyhow::Result<ExitCode> {
    let config = load(config)?;
    let tls = config.amqp_tls()?;
    let topology = Topology::new(&config.amqp);
    runtime()?.block_on(async {
        let connection = impush_amqp::connect_any(&config.amqp.addresses(), &tls).await?;
        let channel = connection.create_channel().await?;
        if reset {
            topology.delete(&channel).await?;
            println!(
                "deleted every queue and exchange of prefix {:?}",
                config.amqp.prefix
            );
        }
        topology.declare(&channel).await?;
        let _ = connection.close(200, "done".into()).await;
        anyhow::Ok(())
    })?;
    println!(
        "declared {} and {} with their queues ({:?} queues, {} retry steps)",
        topology.events_exchange(),
        topology.push_exchange(),
        config.amqp.queue_type,
        topology.retry_steps()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates every line; errors name the line.
pub fn read_events(input: impl BufRead) -> Result<Vec<Event>, Vec<String>> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(err) => {
                errors.push(format!("line {}: unreadable: {err}", index + 1));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match Event::from_json_line(&line) {
            Ok(event) => events.push(event),
            Err(err) => errors.push(format!("line {}: {err}", index + 1)),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

pub fn publish(config: &Path, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load(config)?;
    let events = match file {
        Some(path) => read_events(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => read_events(std::io::stdin().lock()),
    };
    let events = match events {
        Ok(events) => events,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("impush: nothing published: {} bad line(s)", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let tls = config.amqp_tls()?;
    let topology = Topology::new(&config.amqp);
    let count = events.len();
    runtime()?.block_on(async {
        let connection = impush_amqp::connect_any(&config.amqp.addresses(), &tls).await?;
        let channel = connection.create_channel().await?;
        topology.declare(&channel).await?;
        let publisher = Publisher::open(&connection).await?;
        let messages = events
            .into_iter()
            .map(|event| Outgoing {
                mandatory: true,
                exchange: topology.events_exchange(),
                routing_key: event.kind().routing_key().to_owned(),
                body: event.encode_to_vec(),
                properties: protobuf_properties(event.kind().type_name()),
            })
            .collect::<Vec<_>>();
        for chunk in messages.chunks(1000) {
            publisher.publish_all(chunk.to_vec()).await?;
        }
        let _ = connection.close(200, "done".into()).await;
        anyhow::Ok(())
    })?;
    println!(
        "published {count} event(s) to {}",
        topology.events_exchange()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_validated_and_bad_lines_are_named() {
        let input = concat!(
            r#"{"@type":"PushSettings","userId":"u","openPush":"OPEN_PUSH_DISABLED","atMs":"1"}"#,
            "\n\nnot json\n",
            r#"{"@type":"Nope"}"#,
            "\n",
            r#"{"@type":"impush.v1.PresenceChanged","userId":"u","deviceId":"d","state":"PRESENCE_STATE_BACKGROUND","unread":2,"atMs":"5"}"#,
            "\n"
        );
        let errors = read_events(input.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("line 3:"), "{errors:?}");
        assert!(errors[1].starts_with("line 4:"), "{errors:?}");
    }

    #[test]
    fn a_bad_field_is_named_with_its_line() {
        let input = concat!(
            r#"{"@type":"OfflineMessage","msgId":"m","receiverId":"r"}"#,
            "\n",
            r#"{"@type":"OfflineMessage","msgId":"m2","elems":[{"text":{"text":"hi"}},{"image":{"url":7}}]}"#,
            "\n"
        );
        let errors = read_events(input.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("line 2:"), "{errors:?}");
        assert!(
            errors[0].contains("field `elems[1].image.url`"),
            "{errors:?}"
        );
    }

    #[test]
    fn good_lines_become_events_with_their_routing_keys() {
        let input = r#"{"@type":"OfflineMessage","msgId":"m","receiverId":"r","elems":[{"text":{"text":"hi"}}]}"#;
        let events = read_events(input.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind().routing_key(), "message.offline");
    }
}
