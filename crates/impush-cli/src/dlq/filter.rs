//! What a dead-letter command acts on: which queue (a vendor's DLQ or the events DLQ) and
//! which of its messages (reason, time of death), as the command line names them.

use impush_amqp::{DeadLetterHeaders, Topology};
use impush_core::{Vendor, vendor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DlqError;

/// One dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Vendor(Vendor),
    /// `<prefix>.dlq.events`: events the ingest or router could not take.
    Events,
}

impl Target {
    /// Every dead-letter queue of a prefix, vendors first.
    pub fn all() -> impl Iterator<Item = Target> {
        vendor::ALL
            .into_iter()
            .map(Target::Vendor)
            .chain(std::iter::once(Target::Events))
    }

    /// Exactly the names `impush-sender --vendor` takes, or `events`.
    pub fn parse(name: &str) -> Result<Target, DlqError> {
        if name == "events" {
            return Ok(Target::Events);
        }
        vendor::parse(name)
            .map(Target::Vendor)
            .ok_or_else(|| DlqError::UnknownVendor(name.to_owned()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Vendor(v) => vendor::name(v),
            Target::Events => "events",
        }
    }

    pub fn queue(self, topology: &Topology) -> String {
        match self {
            Target::Vendor(v) => topology.dlq(v),
            Target::Events => topology.events_dlq(),
        }
    }
}

/// Which dead letters a command selects; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `x-impush-reason`, exactly.
    pub reason: Option<String>,
    /// Dead at or after this instant (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Dead before this instant, so that consecutive ranges never select a message twice.
    pub until_ms: Option<u64>,
}

impl Filter {
    pub fn matches(&self, headers: &DeadLetterHeaders) -> bool {
        let reason_ok = self
            .reason
            .as_deref()
            .is_none_or(|wanted| headers.reason.as_deref() == Some(wanted));
        // A message without a time of death cannot be placed in a range: a range leaves it.
        let since_ok = self
            .since_ms
            .is_none_or(|since| headers.dead_at_ms.is_some_and(|at| at >= since));
        let until_ok = self
            .until_ms
            .is_none_or(|until| headers.dead_at_ms.is_some_and(|at| at < until));
        reason_ok && since_ok && until_ok
    }
}

/// An instant as RFC 3339 (`2026-11-22T03:00:00Z`, any offset) or ms since the epoch.
pub fn parse_instant(flag: &'static str, text: &str) -> Result<u64, DlqError> {
    let bad = || DlqError::BadInstant {
        flag,
        text: text.to_owned(),
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
    u64::try_from(instant.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

/// ms since the epoch as RFC 3339 UTC, for people reading `list` and `inspect`.
pub fn format_instant(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|instant| instant.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead(reason: &str, at: Option<u64>) -> DeadLetterHeaders {
        DeadLetterHeaders {
            reason: Some(reason.to_owned()),
            dead_at_ms: at,
            ..DeadLetterHeaders::default()
        }
    }

    #[test]
    fn vendor_names_are_the_lower_case_sender_names_or_events() {
        assert_eq!(
            Target::parse("apns").ok(),
            Some(Target::Vendor(Vendor::Apns))
        );
        assert_eq!(Target::parse("events").ok(), Some(Target::Events));
        assert!(matches!(
            Target::parse("APNS"),
            Err(DlqError::UnknownVendor(name)) if name == "APNS"
        ));
        assert!(Target::parse("nokia").is_err());
        assert_eq!(
            Target::all().count(),
            vendor::ALL.len() + 1,
            "every vendor and the events DLQ"
        );
    }

    #[test]
    fn instants_are_rfc3339_with_any_offset_or_ms_since_the_epoch() {
        assert_eq!(
            parse_instant("--since", "1700000000000").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_instant("--since", "2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_instant("--since", "2023-11-15T06:13:20.5+08:00").ok(),
            Some(1_700_000_000_500)
        );
        for bad in ["", "yesterday", "2023-11-14", "-5", "1969-12-31T23:59:59Z"] {
            assert!(parse_instant("--since", bad).is_err(), "{bad:?} is refused");
        }
        assert_eq!(format_instant(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_filter_selects_by_reason_and_a_half_open_time_range() {
        let filter = Filter {
            reason: Some("retries_exhausted".into()),
            since_ms: Some(100),
            until_ms: Some(200),
        };
        assert!(filter.matches(&dead("retries_exhausted", Some(100))));
        assert!(filter.matches(&dead("retries_exhausted", Some(199))));
        assert!(
            !filter.matches(&dead("retries_exhausted", Some(200))),
            "until is exclusive"
        );
        assert!(!filter.matches(&dead("retries_exhausted", Some(99))));
        assert!(!filter.matches(&dead("BadTopic", Some(150))));
        assert!(!filter.matches(&dead("retries_exhausted", None)));
        assert!(Filter::default().matches(&DeadLetterHeaders::default()));
    }
}
