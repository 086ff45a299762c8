//! Package lifecycle on the protocol side: `pkg.install` / `pkg.uninstall` become host
//! operations; their outcome becomes a durable `pkg.event` and a fresh `register` so the
//! scheduler learns the new inventory (spec §7.5, R13). The control loop never blocks on them.

use super::frames::Head;
use super::io::{Action, Level, PackageOp, PackageOpDone};
use super::Worker;
use crate::v1::payloads::{
    PkgEventPayload, PkgEventStatus, PkgInstallPayload, PkgUninstallPayload,
};
use crate::v1::types::FrameType;
use crate::work::Inventory;
use serde_json::{Map, Value};

impl Worker {
    pub(super) fn on_pkg_install(&mut self, p: PkgInstallPayload) {
        let name = p.package_name().to_string();
        if self.draining.is_some() {
            return self.emit_pkg_event(
                &name,
                &p.version,
                PkgEventStatus::Failed,
                err_details("worker is draining; package operations are refused"),
            );
        }
        let op = PackageOp::Install {
            name,
            version: p.version,
            url: p.url,
            sha256: p.sha256,
        };
        self.start_package_op(op);
    }

    pub(super) fn on_pkg_uninstall(&mut self, p: PkgUninstallPayload) {
        let name = p.package_name().to_string();
        if self.draining.is_some() {
            let v = p.version.clone().unwrap_or_else(|| "unknown".into());
            return self.emit_pkg_event(
                &name,
                &v,
                PkgEventStatus::Failed,
                err_details("worker is draining; package operations are refused"),
            );
        }
        self.start_package_op(PackageOp::Uninstall {
            name,
            version: p.version,
        });
    }

    fn start_package_op(&mut self, op: PackageOp) {
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        self.pending_ops.insert(op_id, op.clone());
        log!(self, Level::Info, "package operation started", "op_id" => op_id);
        self.push(Action::Package { op_id, op });
    }

    pub(super) fn on_package_done(&mut self, done: PackageOpDone) {
        if self.pending_ops.remove(&done.op_id).is_none() {
            log!(
                self,
                Level::Warn,
                "completion of an unknown package operation",
                "op_id" => done.op_id,
            );
        }
        let details = match (&done.outcome, done.install) {
            (Err(e), _) => err_details(e),
            (Ok(()), true) => Map::new(),
            (Ok(()), false) => {
                let mut m = Map::new();
                m.insert("operation".into(), Value::String("uninstall".into()));
                m.insert("message".into(), Value::String("uninstall-complete".into()));
                m
            }
        };
        // The v1 enum has no "uninstalled": a completed uninstall reports `installed` with
        // details saying what happened, as the Python worker does.
        let status = if done.outcome.is_ok() {
            PkgEventStatus::Installed
        } else {
            PkgEventStatus::Failed
        };
        let name = if done.name.is_empty() {
            "unknown".to_string()
        } else {
            done.name.clone()
        };
        let version = if done.version.is_empty() {
            "unknown".to_string()
        } else {
            done.version.clone()
        };
        self.emit_pkg_event(&name, &version, status, details);
        self.set_inventory(done.inventory);
    }

    fn emit_pkg_event(
        &mut self,
        name: &str,
        version: &str,
        status: PkgEventStatus,
        details: Map<String, Value>,
    ) {
        let payload = PkgEventPayload {
            name: if name.is_empty() {
                "unknown".into()
            } else {
                name.to_string()
            },
            version: if version.is_empty() {
                "unknown".into()
            } else {
                version.to_string()
            },
            status,
            log_url: None,
            details: (!details.is_empty()).then_some(details),
        };
        let frame = self.build_frame(Head::new(FrameType::PkgEvent).request_ack(), &payload);
        self.emit_durable(frame, None);
    }

    pub(super) fn on_set_inventory(&mut self, inv: Inventory) {
        self.set_inventory(inv);
    }

    fn set_inventory(&mut self, inv: Inventory) {
        let changed = inv.packages != self.inventory.packages;
        self.inventory = inv;
        if changed && self.draining.is_none() {
            self.reregister();
        }
    }
}

fn err_details(msg: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "error".into(),
        Value::String(if msg.is_empty() {
            "package operation failed".into()
        } else {
            msg.to_string()
        }),
    );
    m
}
