//! Rule 3: sessions keyed by worker id in registration order, handshake/register rules, and
//! the superseded-session bug with and without reproduction.

use super::super::*;
use super::harness::*;
use serde_json::json;

#[test]
fn register_before_handshake_is_acked_then_closed() {
    let mut h = H::default_cfg();
    h.connect(1);
    let out = h.frame(1, &register("rg", "w1", &[PKG]));
    assert_eq!(acks_for(&out), vec!["rg"]);
    let close_pos = out
        .iter()
        .position(|a| matches!(a, SchedAction::Close { .. }))
        .unwrap();
    let ack_pos = out
        .iter()
        .position(|a| matches!(a, SchedAction::Send { .. }))
        .unwrap();
    assert!(ack_pos < close_pos, "ack first: {out:?}");
    assert_eq!(
        closes(&out),
        vec![(ConnId(1), 1011, "handshake required".into())]
    );
    assert!(h.s.sessions().is_empty());
    assert!(
        h.frame(1, &handshake("hs", "w1", "default")).is_empty(),
        "closed conn is not read"
    );
}

#[test]
fn heartbeat_before_handshake_is_accepted() {
    let mut h = H::default_cfg();
    h.connect(1);
    let out = h.frame(1, &with_ack_request(heartbeat("hb")));
    assert_eq!(acks_for(&out), vec!["hb"]);
    assert!(closes(&out).is_empty());
    // And the connection still works afterwards.
    h.frame(1, &handshake("hs", "w1", "default"));
    assert_eq!(h.s.sessions().len(), 1);
}

#[test]
fn session_carries_handshake_tenant_and_register_replaces_packages() {
    let mut h = H::default_cfg();
    h.connect(1);
    h.frame(1, &handshake("hs", "w1", "acme"));
    let s = &h.s.sessions()[0];
    assert_eq!(
        (
            s.worker_id.as_str(),
            s.conn,
            s.tenant.as_str(),
            s.registered
        ),
        ("w1", ConnId(1), "acme", false)
    );
    h.frame(1, &register("r1", "w1", &[PKG, ("other", "2")]));
    assert_eq!(h.s.sessions()[0].packages.len(), 2);
    h.frame(1, &register("r2", "w1", &[("other", "3")]));
    let s = &h.s.sessions()[0];
    assert!(s.registered && s.has_package("other", "3") && !s.has_package(PKG.0, PKG.1));
}

#[test]
fn repeated_handshake_on_same_conn_wipes_packages_without_closing() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let out = h.frame(1, &handshake("hs2", "w1", "default"));
    assert!(closes(&out).is_empty());
    assert!(h.s.sessions()[0].packages.is_empty() && !h.s.sessions()[0].registered);
    // So a run finds no worker until the next register.
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    assert!(dispatches(&out).is_empty());
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, SchedEvent::DispatchPending { .. })));
}

#[test]
fn replacing_a_session_keeps_its_registration_position() {
    let mut h = H::new(SchedulerConfig {
        superseded_bug: false,
        ..Default::default()
    });
    h.worker(1, "w1", &[PKG]);
    h.worker(2, "w2", &[PKG]);
    // w1 moves to conn 3: it keeps first place, so it still wins the routing.
    h.worker(3, "w1", &[PKG]);
    let order: Vec<(&str, ConnId)> =
        h.s.sessions()
            .iter()
            .map(|s| (s.worker_id.as_str(), s.conn))
            .collect();
    assert_eq!(order, vec![("w1", ConnId(3)), ("w2", ConnId(2))]);
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    assert_eq!(dispatches(&out)[0].3, ConnId(3));
}

/// Worker w1 on conn 1, reconnects on conn 2 while conn 1 is still held.
fn supersede(bug: bool) -> (H, Vec<SchedAction>) {
    let mut h = H::new(SchedulerConfig {
        superseded_bug: bug,
        ..Default::default()
    });
    h.worker(1, "w1", &[PKG]);
    let mut out = h.worker(2, "w1", &[PKG]);
    assert_eq!(
        closes(&out),
        vec![(ConnId(1), 1011, "superseded session".into())]
    );
    assert_eq!(h.s.sessions()[0].conn, ConnId(2));
    // The old socket is no longer read.
    assert!(h.frame(1, &heartbeat("late")).is_empty());
    out.extend(h.input(SchedInput::Disconnected(ConnId(1))));
    (h, out)
}

#[test]
fn superseded_cleanup_removes_the_new_session_with_the_bug() {
    let (mut h, out) = supersede(true);
    assert!(
        h.s.sessions().is_empty(),
        "the old conn's cleanup removed w1's new session"
    );
    assert!(events(&out).contains(&SchedEvent::SessionRemoved {
        worker_id: "w1".into(),
        owner: ConnId(2),
        by: ConnId(1)
    }));
    // conn 2 stays open and acked, but gets no work.
    let out = h.frame(2, &with_ack_request(heartbeat("hb")));
    assert_eq!(acks_for(&out), vec!["hb"]);
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    assert!(dispatches(&out).is_empty());
    // A register alone cannot bring it back: acked, nothing stored.
    let out = h.frame(2, &register("rg", "w1", &[PKG]));
    assert_eq!(acks_for(&out), vec!["rg"]);
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, SchedEvent::RegisterLost { .. })));
    // The workaround: handshake + register again on the same socket; the queued node is
    // picked up at its next retry (1 s).
    h.frame(2, &handshake("hs-again", "w1", "default"));
    h.frame(2, &register("rg-again", "w1", &[PKG]));
    let out = h.run_until(secs(1));
    assert_eq!(dispatches(&out).len(), 1);
    assert_eq!(dispatches(&out)[0].3, ConnId(2));
}

#[test]
fn superseded_cleanup_keeps_the_new_session_without_the_bug() {
    let (mut h, out) = supersede(false);
    assert_eq!(h.s.sessions().len(), 1);
    assert_eq!(h.s.sessions()[0].conn, ConnId(2));
    assert!(!events(&out)
        .iter()
        .any(|e| matches!(e, SchedEvent::SessionRemoved { .. })));
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    assert_eq!(dispatches(&out).len(), 1);
    assert_eq!(dispatches(&out)[0].3, ConnId(2));
}

#[test]
fn disconnect_removes_only_that_connections_session() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    h.worker(2, "w2", &[PKG]);
    h.input(SchedInput::Disconnected(ConnId(1)));
    let ids: Vec<&str> =
        h.s.sessions()
            .iter()
            .map(|s| s.worker_id.as_str())
            .collect();
    assert_eq!(ids, vec!["w2"]);
    // A spurious second disconnect changes nothing.
    h.input(SchedInput::Disconnected(ConnId(1)));
    assert_eq!(h.s.sessions().len(), 1);
}

#[test]
fn heartbeat_updates_the_session_and_pkg_event_is_recorded() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    h.advance_to(secs(3));
    h.frame(1, &heartbeat("hb"));
    assert_eq!(
        h.s.session("w1").and_then(|s| s.last_heartbeat),
        Some(secs(3))
    );
    let out = h.frame(
        1,
        &json!({"type": "pkg.event", "id": "pe", "ts": TS, "tenant": "default",
                "sender": {"role": "worker", "id": "w1"},
                "payload": {"name": "p", "version": "1", "status": "failed", "details": {"error": "sha256"}}}),
    );
    assert!(
        matches!(events(&out).as_slice(), [SchedEvent::PkgEvent { worker_id: Some(w), .. }] if w == "w1")
    );
    let rec = &h.s.pkg_events()[0];
    assert_eq!((rec.name.as_str(), rec.at), ("p", secs(3)));
    assert_eq!(rec.details.as_ref().unwrap()["error"], "sha256");
}

#[test]
fn inject_sends_raw_frames_and_recognises_their_ack() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let install = json!({"type": "pkg.install", "id": "inj-1", "ts": TS, "tenant": "default",
        "sender": {"role": "scheduler", "id": "scheduler-control"}, "ack": {"request": true},
        "payload": {"name": "p", "version": "2"}})
    .to_string();
    let out = h.input(SchedInput::InjectToWorker {
        worker_id: "w1".into(),
        text: install.clone(),
    });
    assert_eq!(
        out,
        vec![SchedAction::Send {
            conn: ConnId(1),
            text: install.clone()
        }]
    );
    let out = h.frame(1, &ack("a", "inj-1"));
    assert_eq!(
        events(&out),
        vec![SchedEvent::InjectedAcked {
            conn: ConnId(1),
            for_id: "inj-1".into()
        }]
    );
    let out = h.input(SchedInput::InjectToWorker {
        worker_id: "nobody".into(),
        text: install,
    });
    assert_eq!(
        events(&out),
        vec![SchedEvent::InjectUndeliverable {
            worker_id: "nobody".into()
        }]
    );
}
