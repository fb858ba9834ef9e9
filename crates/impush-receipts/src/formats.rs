//! Each vendor's delivery receipt as it arrives over HTTP, read into one shape, and the
//! vendor's own authentication of it where it has one. Pure: no I/O, tested by tables.
//!
//! | vendor | body | one receipt per | proof |
//! |---|---|---|---|
//! | Huawei | JSON `{"statuses":[{"token","biTag","status",…}]}` | status entry | `X-HUAWEI-CALLBACK-ID` HMAC |
//! | Honor | as Huawei (unverified) | status entry | URL token |
//! | Xiaomi | form field `data`: JSON `{"<msgId>":{"param","type","targets",…}}` | target | URL token |
//! | OPPO | JSON `[{"registrationIds","param","eventType",…}]` | registration id | URL token |
//! | vivo | JSON `{"<taskId>":{"param","targets"}}` (unverified) | target | URL token |
//!
//! Sources:
//! - Huawei: <https://developer.huawei.com/consumer/cn/doc/HMS-References/push-receiptapi>
//!   (V1 body, the header: `value` = Base64(HMAC-SHA256(callback key, timestamp + nonce +
//!   callback user name))) and
//!   <https://developer.huawei.com/consumer/cn/doc/doccenter-references/api/push-api-msg-receipt>
//!   (V2 body: `deliveryStatus.result`); status codes from
//!   <https://developer.huawei.com/consumer/cn/doc/HMSCore-Guides/msg-receipt-guide-0000001050040176>:
//!   0 delivered; 2 app not installed and 5 token unknown on the device mean the token is
//!   dead; 6 notifications off, 10 inactive device, 15 replaced, 102 frequency-capped, 201
//!   held back and others are reported as `other`.
//! - Honor: no public receipt reference found; its push server API descends from Huawei's,
//!   and we read the same body (unverified). Honor is not known to sign receipts.
//! - Xiaomi: receipts are a form POST whose `data` field is JSON keyed by message id
//!   (<https://blog.csdn.net/zhou_Tian/article/details/108751167>, a Spring handler reading
//!   `data`); `type` is one bit of the requested `callback.type`: 1 delivered, 2 clicked,
//!   16 invalid target device, 32 push disabled by the app, 64 filtered, 128 over the daily
//!   limit (<https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1558>, "消息回执";
//!   the member names `param`, `targets`, `type` are unverified beyond that). Xiaomi signs
//!   nothing.
//! - OPPO: a JSON array POSTed to `call_back_url`, each entry with `messageId`, `appId`,
//!   `taskId`, `registrationIds` (comma separated), `eventTime`, the `param` of
//!   `call_back_parameter` and `eventType` (`push_arrive`)
//!   (<https://www.yimenapp.com/kb-yimen/11083>, a copy of OPPO's "消息回执说明"). Other event
//!   types (`regid_invalid`, `push_click`) are unverified; unknown ones count as `other`.
//!   OPPO signs nothing.
//! - vivo: the request fields are documented (server API 2.9.2, "高级特性extra":
//!   `callback`, `callback.param`, <https://www.yimenapp.com/kb-yimen/12123/>); the receipt
//!   body, a JSON object keyed by taskId holding `param` and comma-separated `targets`, each
//!   an arrival, is unverified. vivo signs nothing.
//!
//! Vendors that sign nothing are given an unguessable receipt URL: its `token` query
//! parameter must equal the credential's `[credentials.receipt] token` (checked by
//! [`token_matches`]).

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use impush_proto::v1::Vendor;
use serde::Deserialize;
use sha2::Sha256;

/// What one receipt says about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Arrived,
    Clicked,
    /// The token is dead: its registration is pruned.
    TokenInvalid,
    /// Anything else the vendor reports (notifications off, frequency cap, …).
    Other,
}

impl Status {
    /// The `status` label of `impush_receipts_total`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Arrived => "arrived",
            Status::Clicked => "clicked",
            Status::TokenInvalid => "token_invalid",
            Status::Other => "other",
        }
    }
}

/// One vendor receipt for one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub token: String,
    /// What the push request asked to be echoed (`<sdk_app_id>:<msg_id>`), empty if none.
    pub param: String,
    pub status: Status,
    /// The vendor's own status, for the outcome's reason (`"2"`, `"16"`, `"push_arrive"`).
    pub vendor_status: String,
}

/// Why a receipt request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the receipt's signature or token does not match")]
    BadSignature,
    #[error("malformed receipt: {0}")]
    Malformed(String),
}

impl Rejection {
    /// The `status` label of `impush_receipts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::BadSignature => "rejected_signature",
            Rejection::Malformed(_) => "malformed",
        }
    }
}

/// The vendors that send receipts impush reads.
pub const RECEIPT_VENDORS: [Vendor; 5] = [
    Vendor::Huawei,
    Vendor::Honor,
    Vendor::Xiaomi,
    Vendor::Oppo,
    Vendor::Vivo,
];

/// The receipts in `body`, as `vendor` sends them.
pub fn parse(vendor: Vendor, body: &[u8]) -> Result<Vec<Receipt>, Rejection> {
    match vendor {
        Vendor::Huawei | Vendor::Honor => parse_statuses(body),
        Vendor::Xiaomi => parse_xiaomi(body),
        Vendor::Oppo => parse_oppo(body),
        Vendor::Vivo => parse_vivo(body),
        Vendor::Unspecified
        | Vendor::Apns
        | Vendor::Fcm
        | Vendor::Meizu
        | Vendor::Tpns
        | Vendor::Harmony => Err(Rejection::Malformed(
            "this vendor sends no receipts impush reads".into(),
        )),
    }
}

fn malformed(err: impl std::fmt::Display) -> Rejection {
    Rejection::Malformed(err.to_string())
}

#[derive(Deserialize)]
struct Statuses {
    statuses: Vec<StatusEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusEntry {
    token: String,
    #[serde(default)]
    bi_tag: String,
    /// V1.
    status: Option<i64>,
    /// V2.
    delivery_status: Option<DeliveryStatus>,
}

#[derive(Deserialize)]
struct DeliveryStatus {
    result: i64,
}

fn parse_statuses(body: &[u8]) -> Result<Vec<Receipt>, Rejection> {
    let statuses: Statuses = serde_json::from_slice(body).map_err(malformed)?;
    statuses
        .statuses
        .into_iter()
        .map(|entry| {
            let code = entry
                .status
                .or(entry.delivery_status.map(|d| d.result))
                .ok_or_else(|| malformed("a status entry has neither status nor deliveryStatus"))?;
            Ok(Receipt {
                token: entry.token,
                param: entry.bi_tag,
                status: huawei_status(code),
                vendor_status: code.to_string(),
            })
        })
        .collect()
}

/// Huawei's receipt status codes (see the module doc).
fn huawei_status(code: i64) -> Status {
    match code {
        0 => Status::Arrived,
        2 | 5 => Status::TokenInvalid,
        _ => Status::Other,
    }
}

#[derive(Deserialize)]
struct XiaomiForm {
    data: String,
}

#[derive(Deserialize)]
struct XiaomiEntry {
    #[serde(default)]
    param: String,
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default)]
    targets: String,
}

fn parse_xiaomi(body: &[u8]) -> Result<Vec<Receipt>, Rejection> {
    let form: XiaomiForm = serde_urlencoded::from_bytes(body).map_err(malformed)?;
    let entries: BTreeMap<String, XiaomiEntry> =
        serde_json::from_str(&form.data).map_err(malformed)?;
    let mut receipts = Vec::new();
    for entry in entries.into_values() {
        let status = match entry.kind {
            1 => Status::Arrived,
            2 => Status::Clicked,
            16 => Status::TokenInvalid,
            _ => Status::Other,
        };
        receipts.extend(each_target(&entry.targets).map(|token| Receipt {
            token,
            param: entry.param.clone(),
            status,
            vendor_status: entry.kind.to_string(),
        }));
    }
    Ok(receipts)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OppoEntry {
    registration_ids: String,
    #[serde(default)]
    param: String,
    event_type: String,
}

fn parse_oppo(body: &[u8]) -> Result<Vec<Receipt>, Rejection> {
    let entries: Vec<OppoEntry> = serde_json::from_slice(body).map_err(malformed)?;
    let mut receipts = Vec::new();
    for entry in entries {
        let status = match entry.event_type.as_str() {
            "push_arrive" => Status::Arrived,
            "push_click" => Status::Clicked,
            "regid_invalid" => Status::TokenInvalid,
            _ => Status::Other,
        };
        receipts.extend(each_target(&entry.registration_ids).map(|token| Receipt {
            token,
            param: entry.param.clone(),
            status,
            vendor_status: entry.event_type.clone(),
        }));
    }
    Ok(receipts)
}

#[derive(Deserialize)]
struct VivoEntry {
    #[serde(default)]
    param: String,
    targets: String,
}

fn parse_vivo(body: &[u8]) -> Result<Vec<Receipt>, Rejection> {
    let entries: BTreeMap<String, VivoEntry> = serde_json::from_slice(body).map_err(malformed)?;
    let mut receipts = Vec::new();
    for entry in entries.into_values() {
        receipts.extend(each_target(&entry.targets).map(|token| Receipt {
            token,
            param: entry.param.clone(),
            status: Status::Arrived,
            vendor_status: "arrived".into(),
        }));
    }
    Ok(receipts)
}

/// The tokens of a comma-separated list (OPPO writes `"r1, r2"`).
fn each_target(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

type HmacSha256 = Hmac<Sha256>;

/// Checks Huawei's `X-HUAWEI-CALLBACK-ID` header (`timestamp=…;nonce=…;value=…`, spaces
/// allowed after the semicolons) against the console's callback user name and key.
pub fn check_huawei_header(header: Option<&str>, user: &str, key: &[u8]) -> Result<(), Rejection> {
    let header = header.ok_or(Rejection::BadSignature)?;
    let mut timestamp = None;
    let mut nonce = None;
    let mut value = None;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("timestamp", v)) => timestamp = Some(v),
            Some(("nonce", v)) => nonce = Some(v),
            // Base64 may end in `=`: everything after the first one is the value.
            Some(("value", v)) => value = Some(v),
            _ => {}
        }
    }
    let (Some(timestamp), Some(nonce), Some(value)) = (timestamp, nonce, value) else {
        return Err(Rejection::BadSignature);
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(value) else {
        return Err(Rejection::BadSignature);
    };
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| Rejection::BadSignature)?;
    mac.update(timestamp.as_bytes());
    mac.update(nonce.as_bytes());
    mac.update(user.as_bytes());
    // Constant time.
    mac.verify_slice(&given)
        .map_err(|_| Rejection::BadSignature)
}

/// Whether the receipt URL's `token` query parameter is the configured one, compared in
/// constant time (an HMAC of each under a fixed key, so lengths leak nothing either).
pub fn token_matches(query: Option<&str>, expected: &str) -> bool {
    let given = query
        .and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()?
                .into_iter()
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value)
        })
        .unwrap_or_default();
    let digest = |s: &str| {
        let mut mac = HmacSha256::new_from_slice(b"impush receipt token").ok()?;
        mac.update(s.as_bytes());
        Some(mac)
    };
    let (Some(expected_mac), Some(given_mac)) = (digest(expected), digest(&given)) else {
        return false;
    };
    let expected_tag = expected_mac.finalize().into_bytes();
    !given.is_empty() && given_mac.verify_slice(&expected_tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(token: &str, param: &str, status: Status, vendor_status: &str) -> Receipt {
        Receipt {
            token: token.into(),
            param: param.into(),
            status,
            vendor_status: vendor_status.into(),
        }
    }

    /// Each vendor's receipt as documented, read into receipts: (vendor, body, expected).
    #[test]
    fn each_vendor_receipt_format_reads_into_one_receipt_per_token() {
        let huawei_v1 = r#"{"statuses":[
            {"biTag":"7:m1","appid":"100","token":"t1","status":0,"timestamp":1489993883189,"requestId":"r"},
            {"biTag":"7:m1","appid":"100","token":"t2","status":2,"timestamp":1489993883189,"requestId":"r"},
            {"biTag":"7:m1","appid":"100","token":"t3","status":6,"timestamp":1489993883189,"requestId":"r"}]}"#;
        let huawei_v2 = r#"{"statuses":[{"token":"t1","pushType":0,"appPackageName":"p",
            "biTag":"7:m1","requestId":"r","deliveryStatus":{"result":5,"timestamp":1}}]}"#;
        let xiaomi = serde_urlencoded::to_string([(
            "data",
            r#"{"msg1":{"param":"7:m1","type":1,"targets":"r1,r2","jobkey":"","barStatus":"Enable","timestamp":1},
                "msg2":{"param":"7:m2","type":16,"targets":"r3"}}"#,
        )])
        .unwrap();
        let oppo = r#"[{"messageId":"m","appId":"a","taskId":"m","registrationIds":"r1, r2",
            "eventTime":"1","param":"7:m1","eventType":"push_arrive"}]"#;
        let vivo = r#"{"task1":{"param":"7:m1","targets":"r1,r2"}}"#;
        let table: [(Vendor, &[u8], Vec<Receipt>); 6] = [
            (
                Vendor::Huawei,
                huawei_v1.as_bytes(),
                vec![
                    receipt("t1", "7:m1", Status::Arrived, "0"),
                    receipt("t2", "7:m1", Status::TokenInvalid, "2"),
                    receipt("t3", "7:m1", Status::Other, "6"),
                ],
            ),
            (
                Vendor::Huawei,
                huawei_v2.as_bytes(),
                vec![receipt("t1", "7:m1", Status::TokenInvalid, "5")],
            ),
            (
                Vendor::Honor,
                huawei_v1.as_bytes(),
                vec![
                    receipt("t1", "7:m1", Status::Arrived, "0"),
                    receipt("t2", "7:m1", Status::TokenInvalid, "2"),
                    receipt("t3", "7:m1", Status::Other, "6"),
                ],
            ),
            (
                Vendor::Xiaomi,
                xiaomi.as_bytes(),
                vec![
                    receipt("r1", "7:m1", Status::Arrived, "1"),
                    receipt("r2", "7:m1", Status::Arrived, "1"),
                    receipt("r3", "7:m2", Status::TokenInvalid, "16"),
                ],
            ),
            (
                Vendor::Oppo,
                oppo.as_bytes(),
                vec![
                    receipt("r1", "7:m1", Status::Arrived, "push_arrive"),
                    receipt("r2", "7:m1", Status::Arrived, "push_arrive"),
                ],
            ),
            (
                Vendor::Vivo,
                vivo.as_bytes(),
                vec![
                    receipt("r1", "7:m1", Status::Arrived, "arrived"),
                    receipt("r2", "7:m1", Status::Arrived, "arrived"),
                ],
            ),
        ];
        for (vendor, body, expected) in table {
            assert_eq!(parse(vendor, body).unwrap(), expected, "{vendor:?}");
        }
    }

    #[test]
    fn a_malformed_receipt_is_refused_as_malformed_for_every_vendor() {
        let bad: [&[u8]; 5] = [b"", b"not json", b"[1,2]", b"data=%7Bnope", b"\xff\xfe"];
        for vendor in RECEIPT_VENDORS {
            for body in bad {
                let got = parse(vendor, body);
                assert!(
                    matches!(got, Err(Rejection::Malformed(_))),
                    "{vendor:?} {body:?}: {got:?}"
                );
            }
        }
        for vendor in [Vendor::Huawei, Vendor::Honor] {
            assert!(matches!(parse(vendor, b"{}"), Err(Rejection::Malformed(_))));
        }
        assert!(matches!(
            parse(Vendor::Huawei, br#"{"statuses":[{"token":"t"}]}"#),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            parse(Vendor::Apns, b"{}"),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn what_the_simulator_sends_reads_back_for_every_vendor() {
        use impush_sim::receipts::{ReceiptStatus, encode};
        let table = [
            (ReceiptStatus::Arrived, Status::Arrived),
            (ReceiptStatus::Clicked, Status::Clicked),
            (ReceiptStatus::TokenInvalid, Status::TokenInvalid),
        ];
        for vendor in RECEIPT_VENDORS {
            let name = impush_core::vendor::name(vendor);
            for (sent, read) in table {
                let (body, _) = encode(name, "7:m", &["a", "b"], sent).unwrap();
                let got = parse(vendor, &body).unwrap();
                let tokens: Vec<&str> = got.iter().map(|r| r.token.as_str()).collect();
                assert_eq!(tokens, ["a", "b"], "{vendor:?}");
                assert!(got.iter().all(|r| r.param == "7:m"), "{vendor:?}");
                // Huawei and Honor report arrivals, not clicks; vivo only arrivals.
                let expected = match (vendor, read) {
                    (Vendor::Huawei | Vendor::Honor, Status::Clicked) => Status::Arrived,
                    (Vendor::Vivo, _) => Status::Arrived,
                    _ => read,
                };
                assert!(
                    got.iter().all(|r| r.status == expected),
                    "{vendor:?} {sent:?}: {got:?}"
                );
            }
        }
    }

    /// Huawei's header: (header, user, key, accepted?).
    #[test]
    fn huawei_receipts_must_carry_the_hmac_of_timestamp_nonce_and_user() {
        let key = b"callback-key";
        // Signed as the simulator signs.
        let good = impush_sim::receipts::huawei_callback_id(
            "callback-key",
            "1563105451261",
            "a07bfa17",
            "impush",
        )
        .unwrap();
        let spaced = good.replace(';', "; ");
        let table = [
            (Some(good.as_str()), "impush", &key[..], true),
            (Some(spaced.as_str()), "impush", &key[..], true),
            (Some(good.as_str()), "someone-else", &key[..], false),
            (Some(good.as_str()), "impush", &b"other-key"[..], false),
            (
                Some("timestamp=1;nonce=2;value=AAAA"),
                "impush",
                &key[..],
                false,
            ),
            (Some("timestamp=1;nonce=2"), "impush", &key[..], false),
            (Some("value=%%%"), "impush", &key[..], false),
            (None, "impush", &key[..], false),
        ];
        for (header, user, key, accepted) in table {
            assert_eq!(
                check_huawei_header(header, user, key).is_ok(),
                accepted,
                "{header:?} {user}"
            );
        }
    }

    #[test]
    fn unsigned_vendors_must_present_the_receipt_url_token() {
        let table = [
            (Some("token=s3cret"), true),
            (Some("a=1&token=s3cret"), true),
            (Some("token=s3cre"), false),
            (Some("token="), false),
            (Some("other=s3cret"), false),
            (None, false),
        ];
        for (query, accepted) in table {
            assert_eq!(token_matches(query, "s3cret"), accepted, "{query:?}");
        }
    }
}
