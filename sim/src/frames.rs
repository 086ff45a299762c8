//! Frame helpers of the simulated scheduler side: cheap type sniffing for traces, the
//! `pkg.install` / `pkg.uninstall` frames it pushes, and the corruption of dispatches.

use astra_core::rng::Rng;
use astra_core::scheduler::scheduler_sender;
use astra_core::v1::codec::{encode, payload_map};
use astra_core::v1::envelope::{AckField, Envelope};
use astra_core::v1::payloads::{PkgInstallPayload, PkgUninstallPayload};
use astra_core::v1::types::FrameType;
use astra_core::worker::Incoming;

/// The `type` of an encoded frame without parsing it (both codecs write `type` first).
pub fn sniff_type(text: &str) -> &str {
    const P: &str = "{\"type\":\"";
    let Some(r) = text.strip_prefix(P) else {
        return "?";
    };
    // A byte loop rather than `split('"')`: types are a dozen bytes, too short for the
    // searcher's set-up to pay, and this runs two or three times per delivered frame.
    // `"` is ASCII, so its index is a char boundary.
    let end = r.bytes().position(|b| b == b'"').unwrap_or(r.len());
    &r[..end]
}

fn envelope(
    kind: FrameType,
    id: String,
    ts: String,
    payload: serde_json::Map<String, serde_json::Value>,
) -> String {
    encode(&Envelope {
        kind: kind.as_str().into(),
        id,
        ts,
        corr: None,
        seq: None,
        tenant: "default".into(),
        sender: scheduler_sender(),
        ack: Some(AckField {
            for_id: None,
            request: Some(true),
        }),
        flags: None,
        payload,
    })
}

pub fn pkg_install(id: String, ts: String, name: &str, version: &str) -> String {
    let p = PkgInstallPayload {
        name: Some(name.into()),
        package: None,
        version: version.into(),
        url: None,
        sha256: None,
    };
    envelope(FrameType::PkgInstall, id, ts, payload_map(&p))
}

pub fn pkg_uninstall(id: String, ts: String, name: &str, version: Option<&str>) -> String {
    let p = PkgUninstallPayload {
        name: Some(name.into()),
        package: None,
        version: version.map(str::to_string),
    };
    envelope(FrameType::PkgUninstall, id, ts, payload_map(&p))
}

/// A damaged copy of a frame: truncated, a renamed or mistyped field, an emptied id, or a
/// binary frame. The worker must answer or ignore it, never panic.
pub fn corrupt(rng: &mut Rng, text: &str) -> Incoming {
    let t = match rng.below(6) {
        0 => {
            let mut cut = rng.below(text.len() as u64) as usize;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_string()
        }
        1 => text.replacen("\"node_type\":", "\"node_tipe\":", 1),
        2 => text.replacen("\"run_id\":\"", "\"run_id\":\"\",\"x\":\"", 1),
        3 => text.replacen("\"seq\":", "\"seq\":-", 1),
        4 => text.replacen("\"payload\":{", "\"payload\":{\"bogus\":[1,2],", 1),
        _ => return Incoming::Binary(text.len()),
    };
    Incoming::Text(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::v1::codec::{decode, DEFAULT_MAX_FRAME_BYTES};

    /// The byte loop reads what `split('"').next()` read, edge cases included.
    #[test]
    fn sniff_matches_the_split_rule() {
        let rule = |t: &str| -> String {
            t.strip_prefix("{\"type\":\"")
                .and_then(|r| r.split('"').next())
                .unwrap_or("?")
                .to_string()
        };
        for t in [
            "{\"type\":\"ack\",\"id\":\"x\"}",
            "{\"type\":\"cmd.dispatch\"",
            "{\"type\":\"",
            "{\"type\":\"no-quote",
            "{\"type\":\"\u{e9}t\u{e9}\"",
            "{\"type\":\"\"",
            "{\"id\":\"1\"}",
            "",
        ] {
            assert_eq!(sniff_type(t), rule(t), "{t:?}");
        }
    }

    #[test]
    fn pkg_frames_decode_strictly_and_sniff() {
        let t = pkg_install(
            "i1".into(),
            "2025-11-03T13:20:00.000000+00:00".into(),
            "p",
            "1",
        );
        assert!(decode(&t, DEFAULT_MAX_FRAME_BYTES).is_ok(), "{t}");
        assert_eq!(sniff_type(&t), "pkg.install");
        let u = pkg_uninstall(
            "i2".into(),
            "2025-11-03T13:20:00.000000+00:00".into(),
            "p",
            None,
        );
        assert!(decode(&u, DEFAULT_MAX_FRAME_BYTES).is_ok(), "{u}");
    }
}
