//! What every vendor client shares: the HTTP client settings, one POST and its answer,
//! `Retry-After`, transport errors as reasons, and the log line of each outcome.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::auth::Attempt;
use crate::util::short_token;
use crate::{ClientError, Outcome, SendResult};

/// A vendor's answer, before the vendor module's auth rules have had their say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Final for this request.
    Done(Outcome),
    /// The vendor refused our auth token as expired: refresh it and send once more. The
    /// reason is what to report if that is not possible or does not help.
    RefreshAuth(String),
}

impl Answer {
    /// The outcome to report: a refusal of the auth token that stands is `Rejected`.
    pub(crate) fn into_outcome(self) -> Outcome {
        match self {
            Answer::Done(outcome) => outcome,
            Answer::RefreshAuth(reason) => Outcome::Rejected { reason },
        }
    }

    /// This answer to a one-target request sent with an auth token, with its HTTP status.
    pub(crate) fn into_attempt(self, status: u16) -> Attempt<(u16, Outcome)> {
        match self {
            Answer::Done(outcome) => Attempt::Done((status, outcome)),
            refused @ Answer::RefreshAuth(_) => {
                Attempt::TokenRefused((status, refused.into_outcome()))
            }
        }
    }
}

/// One vendor response, read to the end.
pub(crate) struct Exchange {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// The builder every vendor client starts from: `timeout` bounds each request from connect
/// to the last byte of the answer (`sender.request_timeout_ms`).
pub(crate) fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("impush/", env!("CARGO_PKG_VERSION")))
}

/// A credential's settings and the URL it sends to: its `base_url`, or `default` (the
/// vendor's production host) when none is configured.
pub(crate) fn settings_and_base_url(
    config: &impush_config::Config,
    business_id: u64,
    default: &str,
) -> Result<(impush_config::VendorSettings, String), ClientError> {
    let settings = config
        .vendors
        .get(&business_id)
        .cloned()
        .unwrap_or_default();
    let url = if settings.base_url.trim().is_empty() {
        default.to_owned()
    } else {
        base_url(business_id, &settings.base_url)?
    };
    Ok((settings, url))
}

/// The base URL without its trailing slash, checked to be `http://` or `https://`.
pub(crate) fn base_url(business_id: u64, base_url: &str) -> Result<String, ClientError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(ClientError::Credential {
            business_id,
            field: "base_url",
            message: format!("{base_url:?} is not an http:// or https:// URL"),
        }),
    }
}

/// POSTs `body` with the request's own headers, `content_type` and, when given, an
/// `authorization` value. Errors are transport errors, as a reason (never with the URL,
/// which may hold a device token).
pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    content_type: &'static str,
    headers: &[(&'static str, String)],
    authorization: Option<&str>,
    body: Vec<u8>,
) -> Result<Exchange, String> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| transport_reason(&e))?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_reason(&e))?
        .to_vec();
    Ok(Exchange {
        status,
        retry_after,
        body,
    })
}

/// The same outcome for every target.
pub(crate) fn all(status: u16, count: usize, outcome: Outcome) -> SendResult {
    SendResult {
        status,
        outcomes: vec![outcome; count],
    }
}

/// A transport failure as a short reason: `timeout`, or the kind and the innermost cause.
/// reqwest's own message carries the URL, so it is not used.
pub(crate) fn transport_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timeout".to_owned();
    }
    let kind = if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "transport"
    };
    let mut cause = None;
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    match cause {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// The `Retry-After` of a response: delay-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// `120` → 120 s; `Wed, 21 Oct 2015 07:28:00 GMT` → the time left until then (zero when
/// past). Anything else is ignored.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7), the only form
/// senders may generate.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|n| n.parse::<u32>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s);
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Logs an answer at debug level, the token shortened; deliveries at trace level.
pub(crate) fn log_outcome(
    vendor: &'static str,
    business_id: u64,
    token: &str,
    status: u16,
    outcome: &Outcome,
) {
    let token = short_token(token);
    match outcome {
        Outcome::Delivered => tracing::trace!(vendor, business_id, token, status, "delivered"),
        _ => tracing::debug!(
            vendor,
            business_id,
            token,
            status,
            ?outcome,
            "not delivered"
        ),
    }
}

/// Seconds since the Unix epoch, for JWT `iat` claims.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch, for the timestamps auth signs cover.
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(
            parse_retry_after("120", at(0)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        // 1994-11-06T08:49:37Z is 784111777.
        let now = at(784_111_777 - 30);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at(1_445_412_480 - 5)),
            Some(Duration::from_secs(5))
        );
        // Leap day.
        assert_eq!(
            parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", at(1_709_164_800)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_retry_after_date_in_the_past_means_now() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(2_000_000_000)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn unreadable_retry_after_is_ignored() {
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, at(0)), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, at(0)), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, at(0)), Some(Duration::from_secs(7)));
    }

    #[test]
    fn base_urls_must_be_http() {
        assert_eq!(
            base_url(1, "http://127.0.0.1:8700/apns/").unwrap(),
            "http://127.0.0.1:8700/apns"
        );
        assert_eq!(
            base_url(1, "https://api.push.apple.com").unwrap(),
            "https://api.push.apple.com"
        );
        for bad in ["", "ftp://x", "127.0.0.1:8700", "https://"] {
            let err = base_url(7, bad).unwrap_err().to_string();
            assert!(
                err.contains("credential 7") && err.contains("base_url"),
                "{err}"
            );
        }
    }
}
