//! Event decoding, as ingest and router see it: any bytes under any AMQP `type`, and any
//! JSON line (`impush publish`), either refused with an error or decoded into an event that
//! survives a protobuf and a JSON round trip.

#![no_main]

use impush_proto::{Event, EventKind};
use libfuzzer_sys::fuzz_target;

fn check_round_trips(event: &Event) {
    let bytes = event.encode_to_vec();
    let again = Event::decode(Some(event.kind().type_name()), &bytes)
        .expect("an event's own encoding decodes");
    assert_eq!(
        again.encode_to_vec(),
        bytes,
        "protobuf round trip is stable"
    );
    Event::from_json_value(event.to_json_value()).expect("an event's own JSON parses");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kinds = EventKind::ALL;
    let type_name = match usize::from(selector) % (kinds.len() + 2) {
        i if i < kinds.len() => Some(kinds[i].type_name()),
        i if i == kinds.len() => Some("impush.v1.NoSuchEvent"),
        _ => None,
    };
    if let Ok(event) = Event::decode(type_name, body) {
        check_round_trips(&event);
    }
    if let Ok(line) = std::str::from_utf8(body)
        && let Ok(event) = Event::from_json_line(line)
    {
        check_round_trips(&event);
    }
});
