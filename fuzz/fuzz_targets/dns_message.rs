//! Arbitrary bytes as a DNS message through plugins::dns_wire (every question and record,
//! names and RDATA as text, reverse names), dns's summary and passivedns's answers, and as a
//! TCP stream of length-prefixed messages. Nothing may panic; text is valid UTF-8 and
//! bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::dns_wire::{framed, reverse_address, Entry, Framed, Message};
use qof::plugins::{dns, passivedns};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::new_checked(data) {
        let mut text = String::new();
        for e in m.entries() {
            let Ok(e) = e else { break };
            text.clear();
            match e {
                Entry::Question(q) => q.name.write_text(&mut text),
                Entry::Record(r) => {
                    r.name.write_text(&mut text);
                    let _ = reverse_address(&r.name);
                    if let Ok(d) = r.rdata() {
                        d.write_text(&mut text);
                    }
                }
            }
        }
    }
    for whole in [true, false] {
        if let Some(s) = dns::summarize(data, whole) {
            assert!(s.rdata.len() <= dns::MAX_RDATA_TEXT);
            assert!(s.name.len() <= 4 * 255);
        }
    }
    let mut answers = Vec::new();
    passivedns::answers(data, &mut answers);
    assert!(answers.len() <= passivedns::MAX_ANSWERS);
    let mut at = 0;
    while let Framed::Complete(msg, next) = framed(data, at) {
        let _ = dns::summarize(msg, true);
        at = next;
    }
});
