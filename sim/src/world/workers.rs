//! Worker hosts: boot and crash, feeding inputs, carrying out the machine's actions (sockets,
//! executors, package operations, the durable outbox) and arming its timer.

use super::{Running, Sim};
use crate::event::{Ev, Proc, Rec, SentFrame};
use crate::executor;
use crate::invariants::Cause;
use crate::options::Sabotage;
use astra_core::v1::codec::{DecodeError, Inbound};
use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::TaskKey;
use astra_core::worker::{Action, Input, PackageOp, PackageOpDone, Worker, WorkerConfig};
use astra_core::Instant;
use std::time::Duration;

/// How long a socket's peer takes to notice it died under a partition (20 s ping + 20 s pong).
pub(super) const PING_TIMEOUT: Duration = Duration::from_secs(40);

/// One input to a worker machine.
enum Feed {
    Input(Input),
    Decoded(Result<Inbound, DecodeError>),
}

impl Sim {
    fn proc(&self, w: usize) -> Proc {
        Proc {
            w,
            inc: self.slots[w].inc,
        }
    }

    fn live(&self, p: Proc) -> bool {
        self.slots
            .get(p.w)
            .is_some_and(|s| s.inc == p.inc && s.machine.is_some())
    }

    fn hb_bound(cfg: &WorkerConfig, skew: f64) -> Duration {
        (cfg.heartbeat_interval + cfg.heartbeat_jitter).mul_f64(1.0 + skew)
            + Duration::from_millis(1)
    }

    /// Starts a worker process: fresh machine, outbox restored from disk, inventory, Start.
    pub(super) fn boot(&mut self, w: usize) {
        let seed = self.rng.next_u64();
        let slot = &mut self.slots[w];
        let cfg = WorkerConfig {
            seed,
            ..slot.cfg.clone()
        };
        let bound = Self::hb_bound(&cfg, slot.skew);
        self.checker.new_incarnation(w, cfg.max_parallel, bound);
        slot.machine = Some(Worker::new(cfg));
        let entries = slot.outbox.load();
        let mut inv = slot.packages.inventory().clone();
        if self.opts.sabotage == Sabotage::StaleInventory {
            inv.packages.insert(PackageEntry {
                name: "ghost.pkg".into(),
                version: "9.9.9".into(),
                status: PackageStatus::Installed,
            });
        }
        self.checker.on_restore(w, &entries);
        self.worker_input(w, Input::Restore(entries));
        self.worker_input(w, Input::SetInventory(inv));
        self.worker_input(w, Input::Start);
    }

    /// Kills a worker process: in-flight tasks die, the socket closes, the disk survives.
    pub(super) fn crash(&mut self, w: usize) {
        if self.slots[w].machine.is_none() {
            return;
        }
        self.stats.crashes += 1;
        self.note(Rec::Fault("worker crash", Some(w)));
        let lost = self.checker.unanswered(w);
        self.crash_lost.extend(lost);
        let slot = &mut self.slots[w];
        slot.machine = None;
        slot.inc += 1;
        slot.running.clear();
        slot.pkg_ops.clear();
        slot.connecting = None;
        slot.timer_at = None;
        if self.opts.sabotage == Sabotage::LosingDisk {
            slot.outbox.wipe();
        }
        if let Some(c) = slot.conn.take() {
            // The OS closes the socket; the scheduler notices after the FIN (or a ping timeout).
            self.close_worker_side(c);
        }
        let d = self.between(Duration::from_millis(500), Duration::from_secs(10));
        self.q.push(self.now + d, Ev::WorkerRestart { w });
    }

    pub(super) fn on_worker_restart(&mut self, w: usize) {
        if self.slots[w].machine.is_none() {
            self.boot(w);
        }
    }

    /// Feeds one input and carries out every action it produced, in order.
    pub(super) fn worker_input(&mut self, w: usize, input: Input) {
        self.worker_feed(w, Feed::Input(input));
    }

    /// A frame the simulator already decoded with the worker's limit: `handle_decoded`.
    pub(super) fn worker_decoded(&mut self, w: usize, decoded: Result<Inbound, DecodeError>) {
        self.worker_feed(w, Feed::Decoded(decoded));
    }

    fn worker_feed(&mut self, w: usize, feed: Feed) {
        let finished = match &feed {
            Feed::Input(Input::TaskFinished { task, .. }) => Some(task.clone()),
            _ => None,
        };
        let from_frame = matches!(feed, Feed::Input(Input::Frame(_)) | Feed::Decoded(_));
        let was_tick = matches!(feed, Feed::Input(Input::Tick));
        self.checker.begin_input(w);
        let now = self.now;
        let Some(m) = self.slots[w].machine.as_mut() else {
            return;
        };
        self.inputs += 1;
        match feed {
            Feed::Input(input) => m.handle(now, input),
            Feed::Decoded(decoded) => m.handle_decoded(now, decoded),
        }
        while let Some(a) = self.slots[w].machine.as_mut().and_then(Worker::poll_action) {
            let cause = match (&finished, from_frame) {
                (Some(k), _) => Cause::Finished(k),
                (None, true) => Cause::Frame,
                _ => Cause::Other,
            };
            self.worker_action(w, a, cause);
        }
        self.rearm_worker(w, was_tick);
    }

    fn rearm_worker(&mut self, w: usize, after_tick: bool) {
        let now = self.now;
        let p = self.proc(w);
        let slot = &mut self.slots[w];
        let Some(m) = slot.machine.as_ref() else {
            return;
        };
        let mut t = m.poll_timeout();
        if after_tick && t.is_some_and(|t| t <= now) {
            // A deadline the tick did not clear: do not spin at one instant.
            self.stats.timer_spins += 1;
            t = Some(now + Duration::from_millis(1));
        }
        if t == slot.timer_at {
            return;
        }
        slot.timer_at = t;
        slot.timer_token += 1;
        if let Some(t) = t {
            let wait = t - now;
            let fire = t + wait.mul_f64(slot.skew);
            let token = slot.timer_token;
            self.q.push(fire.max(now), Ev::WorkerTimer { p, token });
        }
    }

    pub(super) fn on_worker_timer(&mut self, p: Proc, token: u64) {
        if !self.live(p) || self.slots[p.w].timer_token != token {
            return;
        }
        self.slots[p.w].timer_at = None;
        self.worker_input(p.w, Input::Tick);
    }

    fn worker_action(&mut self, w: usize, a: Action, cause: Cause<'_>) {
        self.hash.u64(w as u64);
        if self.opts.debug {
            eprintln!("{:?} w{w}.{} {a:?}", self.now, self.slots[w].inc);
        }
        match a {
            Action::Connect => {
                self.hash.u64(1);
                let conn = self.alloc_conn();
                self.slots[w].connecting = Some(conn);
                let d = self.latency() * 2;
                let p = self.proc(w);
                self.q.push(self.now + d, Ev::ConnectDone { p, conn });
            }
            Action::Send(f) => {
                self.hash.str(f.text());
                let inv = self.slots[w].packages.inventory();
                // Invariant (4) on every frame sent; its decode is the scheduler's, reused.
                let read = self.checker.on_sent(w, self.now, f.text(), inv);
                if let Some(c) = self.slots[w].conn {
                    let frame = SentFrame {
                        text: f.into_text(),
                        read,
                        max: self.checker.max_frame_bytes(),
                    };
                    self.send_to_sched(c, frame);
                }
            }
            Action::Close { code, .. } => {
                self.hash.u64(2);
                self.hash.u64(code as u64);
                if let Some(c) = self.slots[w].conn.take() {
                    self.close_worker_side(c);
                }
            }
            Action::StartTask(spec) => {
                self.hash.u64(3);
                self.hash.str(&spec.key.run_id);
                self.hash.str(&spec.key.task_id);
                self.stats.tasks_started += 1;
                self.checker.on_start(w, self.now, &spec);
                self.start_task(w, &spec);
            }
            Action::CancelTask { task, .. } => {
                self.hash.u64(4);
                let p = self.proc(w);
                if let Some(r) = self.slots[w].running.get_mut(&task) {
                    r.outcome = executor::cancelled(0);
                    let exec = r.exec;
                    let at = self.now + Duration::from_millis(1);
                    let key = Box::new(task);
                    self.q.push(at, Ev::TaskDone { p, key, exec });
                }
            }
            Action::Package { op_id, op } => {
                self.hash.u64(5);
                self.hash.u64(op_id);
                self.slots[w].pkg_ops.insert(op_id, op);
                let d = self.between(Duration::from_millis(100), Duration::from_secs(3));
                let p = self.proc(w);
                self.q.push(self.now + d, Ev::PkgDone { p, op_id });
            }
            Action::Persist(e) => {
                self.hash.u64(6);
                self.hash.str(&e.id);
                self.checker.on_persist(w, self.now, &e, cause);
                self.slots[w].outbox.persist(e);
                if self.opts.sabotage == Sabotage::LosingDisk && self.rng.chance(0.2) {
                    // The lying disk's host also dies soon after writing.
                    self.q
                        .push(self.now + Duration::from_micros(10), Ev::WorkerCrash { w });
                }
            }
            Action::Forget { id } => {
                self.hash.u64(7);
                self.hash.str(&id);
                self.slots[w].outbox.forget(&id);
            }
            Action::State(s) => {
                self.hash.u64(8);
                self.hash.u64(s as u64);
            }
            Action::Log(l) => {
                self.hash.u64(9);
                self.hash.str(l.message);
            }
            Action::Stopped => self.hash.u64(10),
        }
    }

    fn start_task(&mut self, w: usize, spec: &astra_core::work::TaskSpec) {
        let plan = executor::plan(spec, &mut self.rng, &self.swarm.faults);
        self.next_exec += 1;
        let exec = self.next_exec;
        let p = self.proc(w);
        let mut feedback = Vec::new();
        for (n, (at, fb)) in plan.feedback.into_iter().enumerate() {
            feedback.push(fb);
            let key = Box::new(spec.key.clone());
            self.q
                .push(self.now + at, Ev::TaskFeedback { p, key, exec, n });
        }
        if self.opts.sabotage != Sabotage::HangingExecutor {
            let key = Box::new(spec.key.clone());
            self.q
                .push(self.now + plan.duration, Ev::TaskDone { p, key, exec });
        }
        self.slots[w].running.insert(
            spec.key.clone(),
            Running {
                exec,
                outcome: plan.outcome,
                feedback,
            },
        );
    }

    pub(super) fn on_task_feedback(&mut self, p: Proc, key: TaskKey, exec: u64, n: usize) {
        if !self.live(p) {
            return;
        }
        let Some(fb) = self.slots[p.w]
            .running
            .get(&key)
            .filter(|r| r.exec == exec)
            .and_then(|r| r.feedback.get(n).cloned())
        else {
            return;
        };
        self.worker_input(
            p.w,
            Input::TaskFeedback {
                task: key,
                feedback: fb,
            },
        );
    }

    pub(super) fn on_task_done(&mut self, p: Proc, key: TaskKey, exec: u64) {
        if !self.live(p) {
            return;
        }
        let slot = &mut self.slots[p.w];
        if slot.running.get(&key).is_none_or(|r| r.exec != exec) {
            return;
        }
        let Some(r) = slot.running.remove(&key) else {
            return;
        };
        self.checker.on_task_end(p.w, &key);
        self.worker_input(
            p.w,
            Input::TaskFinished {
                task: key,
                outcome: r.outcome,
            },
        );
    }

    pub(super) fn on_pkg_done(&mut self, p: Proc, op_id: u64) {
        if !self.live(p) {
            return;
        }
        let Some(op) = self.slots[p.w].pkg_ops.remove(&op_id) else {
            return;
        };
        let ok = self.rng.chance(0.85);
        let store = &mut self.slots[p.w].packages;
        let (name, version, install) = match op {
            PackageOp::Install { name, version, .. } => {
                if ok {
                    store.install(&name, &version);
                }
                (name, version, true)
            }
            PackageOp::Uninstall { name, version } => {
                let v = if ok {
                    store
                        .uninstall(&name, version.as_deref())
                        .into_iter()
                        .next()
                } else {
                    None
                };
                (name, v.or(version).unwrap_or_default(), false)
            }
        };
        let done = PackageOpDone {
            op_id,
            name,
            version,
            install,
            outcome: if ok {
                Ok(())
            } else {
                Err("simulated package operation failure".into())
            },
            inventory: store.inventory().clone(),
        };
        self.worker_input(p.w, Input::PackageOpFinished(done));
    }

    /// True while this worker's current process exists.
    pub(super) fn worker_up(&self, w: usize) -> bool {
        self.slots[w].machine.is_some()
    }

    /// Time of the next instant, for callers that need a strictly later event.
    pub(super) fn soon(&self) -> Instant {
        self.now + Duration::from_micros(1)
    }
}
