//! The typed payloads of the fast path, one reader per frame type, each as strict as the
//! payload's serde derive; `Validate` then applies the same value rules as the serde path.

use super::{valid, Seen, P, R};
use crate::v1::codec::Body;
use crate::v1::payloads::*;
use crate::v1::types::FrameType;
use std::collections::BTreeMap;

impl P<'_> {
    // ------------------------------------------------------------------------------------
    // payloads

    pub(super) fn body(&mut self, ft: FrameType) -> R<Body> {
        Some(match ft {
            FrameType::Ack => Body::Ack(self.ack_payload()?),
            FrameType::Heartbeat => Body::Heartbeat(valid(self.heartbeat()?)?),
            FrameType::Result => Body::Result(Box::new(valid(
                self.in_order(P::compact_result, P::result)?,
            )?)),
            FrameType::Feedback => Body::Feedback(Box::new(valid(self.feedback()?)?)),
            FrameType::Dispatch => Body::Dispatch(Box::new(valid(
                self.in_order(P::compact_dispatch, P::dispatch)?,
            )?)),
            FrameType::Register => Body::Register(valid(self.register()?)?),
            FrameType::Handshake => Body::Handshake(valid(self.handshake()?)?),
            FrameType::CommandError => Body::CommandError(valid(self.command_error()?)?),
            FrameType::PkgEvent => Body::PkgEvent(valid(self.pkg_event()?)?),
            FrameType::PkgInstall => Body::PkgInstall(valid(self.pkg_install()?)?),
            FrameType::PkgUninstall => Body::PkgUninstall(valid(self.pkg_uninstall()?)?),
        })
    }

    /// `PkgInstallPayload` as its serde derive reads it: unknown keys refused, the optional
    /// strings absent or `null` for `None`, `version` a required string.
    fn pkg_install(&mut self) -> R<PkgInstallPayload> {
        let (mut name, mut package, mut version, mut url, mut sha256) =
            (None, None, None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "name" => {
                    seen.first(0)?;
                    name = p.opt_string()?;
                }
                "package" => {
                    seen.first(1)?;
                    package = p.opt_string()?;
                }
                "version" => {
                    seen.first(2)?;
                    version = Some(p.string()?);
                }
                "url" => {
                    seen.first(3)?;
                    url = p.opt_string()?;
                }
                "sha256" => {
                    seen.first(4)?;
                    sha256 = p.opt_string()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PkgInstallPayload {
            name,
            package,
            version: version?,
            url,
            sha256,
        })
    }

    /// `PkgUninstallPayload` as its serde derive reads it (every field optional).
    fn pkg_uninstall(&mut self) -> R<PkgUninstallPayload> {
        let (mut name, mut package, mut version) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "name" => {
                    seen.first(0)?;
                    name = p.opt_string()?;
                }
                "package" => {
                    seen.first(1)?;
                    package = p.opt_string()?;
                }
                "version" => {
                    seen.first(2)?;
                    version = p.opt_string()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PkgUninstallPayload {
            name,
            package,
            version,
        })
    }

    /// Read leniently by serde (unknown keys ignored); a mistyped known key is left to it.
    fn ack_payload(&mut self) -> R<AckPayload> {
        let mut a = AckPayload {
            ok: None,
            for_id: None,
        };
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "ok" => {
                    seen.first(0)?;
                    a.ok = p.opt_bool()?;
                }
                "for" => {
                    seen.first(1)?;
                    a.for_id = p.opt_string()?;
                }
                _ => {
                    p.value()?;
                }
            }
            Some(())
        })?;
        Some(a)
    }

    fn heartbeat(&mut self) -> R<HeartbeatPayload> {
        let (mut healthy, mut metrics, mut packages) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "healthy" => {
                    seen.first(0)?;
                    healthy = Some(p.bool()?);
                }
                "metrics" => {
                    seen.first(1)?;
                    metrics = Some(p.map()?);
                }
                "packages" => {
                    seen.first(2)?;
                    packages = if p.null() {
                        None
                    } else {
                        let mut drift = None;
                        let mut seen = Seen(0);
                        p.object(|p, k| {
                            (k == "drift").then_some(())?;
                            seen.first(0)?;
                            drift = p.opt_bool()?;
                            Some(())
                        })?;
                        Some(HeartbeatPackages { drift })
                    };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(HeartbeatPayload {
            healthy: healthy?,
            metrics: metrics?,
            packages,
        })
    }

    /// `compact` (a payload in the key order its encoder writes, keys matched as bytes), or
    /// when the text has another shape, `walk` (any order) from the same place. Both use the
    /// same value readers, so they agree wherever `compact` reads anything at all.
    pub(super) fn in_order<T>(
        &mut self,
        compact: fn(&mut Self) -> R<T>,
        walk: fn(&mut Self) -> R<T>,
    ) -> R<T> {
        let (open, depth) = (self.i, self.depth);
        // Returned as it came, not unwrapped and rewrapped (a copy of the whole value).
        let t = compact(self);
        if t.is_some() {
            return t;
        }
        self.i = open;
        self.depth = depth;
        walk(self)
    }

    /// A status name in quotes, matched as bytes: a plain string whose text is the name is
    /// exactly those bytes, and any other text (an escape, another word) is not sure, as
    /// when the string was read and then matched.
    fn status(&mut self) -> R<TaskStatus> {
        self.ws();
        Some(if self.exact(b"\"SUCCEEDED\"") {
            TaskStatus::Succeeded
        } else if self.exact(b"\"FAILED\"") {
            TaskStatus::Failed
        } else if self.exact(b"\"SKIPPED\"") {
            TaskStatus::Skipped
        } else if self.exact(b"\"CANCELLED\"") {
            TaskStatus::Cancelled
        } else {
            return None;
        })
    }

    /// A result as the worker writes it (`ResultPayload`'s field order), without `artifacts`.
    fn compact_result(&mut self) -> R<ResultPayload> {
        self.want(b"{\"run_id\":")?;
        self.enter()?;
        let run_id = self.string_here()?;
        self.want(b",\"task_id\":")?;
        let task_id = self.string_here()?;
        self.want(b",\"status\":")?;
        let status = self.status()?;
        self.want(b",\"result\":")?;
        let result = self.map()?;
        let duration_ms = if self.exact(b",\"duration_ms\":") {
            self.opt_u64()?
        } else {
            None
        };
        let metadata = if self.exact(b",\"metadata\":") {
            self.opt_map()?
        } else {
            None
        };
        let error = match self.exact(b",\"error\":") {
            true if !self.null() => Some(self.result_error()?),
            _ => None,
        };
        self.want(b"}")?;
        self.depth -= 1;
        Some(ResultPayload {
            run_id,
            task_id,
            status,
            result,
            duration_ms,
            metadata,
            artifacts: None,
            error,
        })
    }

    fn result(&mut self) -> R<ResultPayload> {
        let (mut run_id, mut task_id, mut status, mut result) = (None, None, None, None);
        let (mut duration_ms, mut metadata, mut error) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "run_id" => {
                    seen.first(0)?;
                    run_id = Some(p.string()?);
                }
                "task_id" => {
                    seen.first(1)?;
                    task_id = Some(p.string()?);
                }
                "status" => {
                    seen.first(2)?;
                    status = Some(p.status()?);
                }
                "result" => {
                    seen.first(3)?;
                    result = Some(p.map()?);
                }
                "duration_ms" => {
                    seen.first(4)?;
                    duration_ms = p.opt_u64()?;
                }
                "metadata" => {
                    seen.first(5)?;
                    metadata = p.opt_map()?;
                }
                // Artifacts are rare on the wire; serde reads them.
                "artifacts" => {
                    seen.first(6)?;
                    if !p.null() {
                        return None;
                    }
                }
                "error" => {
                    seen.first(7)?;
                    error = if p.null() {
                        None
                    } else {
                        Some(p.result_error()?)
                    };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ResultPayload {
            run_id: run_id?,
            task_id: task_id?,
            status: status?,
            result: result?,
            duration_ms,
            metadata,
            artifacts: None,
            error,
        })
    }

    fn result_error(&mut self) -> R<ResultError> {
        let (mut code, mut message, mut remediation) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "code" => {
                    seen.first(0)?;
                    code = Some(p.string()?);
                }
                "message" => {
                    seen.first(1)?;
                    message = Some(p.string()?);
                }
                "remediation" => {
                    seen.first(2)?;
                    remediation = p.opt_string()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ResultError {
            code: code?,
            message: message?,
            remediation,
        })
    }

    fn feedback(&mut self) -> R<FeedbackPayload> {
        let mut f = FeedbackPayload {
            run_id: String::new(),
            task_id: String::new(),
            stage: None,
            progress: None,
            message: None,
            chunks: None,
            metrics: None,
            metadata: None,
        };
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "run_id" => {
                    seen.first(0)?;
                    f.run_id = p.string()?;
                }
                "task_id" => {
                    seen.first(1)?;
                    f.task_id = p.string()?;
                }
                "stage" => {
                    seen.first(2)?;
                    f.stage = p.opt_string()?;
                }
                "progress" => {
                    seen.first(3)?;
                    f.progress = p.opt_f64()?;
                }
                "message" => {
                    seen.first(4)?;
                    f.message = p.opt_string()?;
                }
                "chunks" => {
                    seen.first(5)?;
                    f.chunks = if p.null() {
                        None
                    } else {
                        Some(p.array(P::chunk)?)
                    };
                }
                "metrics" => {
                    seen.first(6)?;
                    f.metrics = if p.null() {
                        None
                    } else {
                        let mut m = BTreeMap::new();
                        p.object(|p, k| {
                            let v = p.f64()?;
                            m.insert(k.to_string(), v).is_none().then_some(())
                        })?;
                        Some(m)
                    };
                }
                "metadata" => {
                    seen.first(7)?;
                    f.metadata = p.opt_map()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        // Both ids are required.
        (seen.0 & 0b11 == 0b11).then_some(f)
    }

    fn chunk(&mut self) -> R<FeedbackChunk> {
        let mut c = FeedbackChunk {
            channel: FeedbackChannel::Custom,
            index: None,
            mime_type: None,
            text: None,
            data_base64: None,
            metadata: None,
        };
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "channel" => {
                    seen.first(0)?;
                    c.channel = match p.plain_str()? {
                        "stdout" => FeedbackChannel::Stdout,
                        "stderr" => FeedbackChannel::Stderr,
                        "log" => FeedbackChannel::Log,
                        "llm" => FeedbackChannel::Llm,
                        "metric" => FeedbackChannel::Metric,
                        "custom" => FeedbackChannel::Custom,
                        _ => return None,
                    };
                }
                "index" => {
                    seen.first(1)?;
                    c.index = p.opt_u64()?;
                }
                "mime_type" => {
                    seen.first(2)?;
                    c.mime_type = p.opt_string()?;
                }
                "text" => {
                    seen.first(3)?;
                    c.text = p.opt_string()?;
                }
                "data_base64" => {
                    seen.first(4)?;
                    c.data_base64 = p.opt_string()?;
                }
                "metadata" => {
                    seen.first(5)?;
                    c.metadata = p.opt_map()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        // `channel` is required.
        (seen.0 & 1 == 1).then_some(c)
    }

    /// `{"timeout_ms": …}` or `{}`.
    fn constraints(&mut self) -> R<Constraints> {
        let mut c = Constraints::default();
        let mut seen = Seen(0);
        self.object(|p, k| {
            (k == "timeout_ms").then_some(())?;
            seen.first(0)?;
            c.timeout_ms = p.opt_u64()?;
            Some(())
        })?;
        Some(c)
    }

    /// A dispatch as the scheduler writes it (keys sorted, as serde_json's `Map` orders
    /// them), without `affinity`, `priority` or `resource_refs`.
    fn compact_dispatch(&mut self) -> R<DispatchPayload> {
        self.want(b"{\"concurrency_key\":")?;
        self.enter()?;
        let concurrency_key = self.opt_string()?;
        self.want(b",\"constraints\":")?;
        let constraints = self.constraints()?;
        self.want(b",\"node_id\":")?;
        let node_id = self.string_here()?;
        self.want(b",\"node_type\":")?;
        let node_type = self.string_here()?;
        self.want(b",\"package_name\":")?;
        let package_name = self.string_here()?;
        self.want(b",\"package_version\":")?;
        let package_version = self.string_here()?;
        self.want(b",\"parameters\":")?;
        let parameters = self.map()?;
        self.want(b",\"run_id\":")?;
        let run_id = self.string_here()?;
        self.want(b",\"task_id\":")?;
        let task_id = self.string_here()?;
        self.want(b"}")?;
        self.depth -= 1;
        Some(DispatchPayload {
            run_id,
            task_id,
            node_id,
            node_type,
            package_name,
            package_version,
            parameters,
            constraints,
            priority: None,
            concurrency_key,
            resource_refs: None,
            affinity: None,
        })
    }

    fn dispatch(&mut self) -> R<DispatchPayload> {
        let mut s: [Option<String>; 6] = Default::default();
        let (mut parameters, mut constraints) = (None, None);
        let (mut priority, mut concurrency_key) = (None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            let slot = match k {
                "run_id" => 0,
                "task_id" => 1,
                "node_id" => 2,
                "node_type" => 3,
                "package_name" => 4,
                "package_version" => 5,
                "parameters" => {
                    seen.first(6)?;
                    parameters = Some(p.map()?);
                    return Some(());
                }
                "constraints" => {
                    seen.first(7)?;
                    constraints = Some(p.constraints()?);
                    return Some(());
                }
                "priority" => {
                    seen.first(8)?;
                    priority = p.opt_i64()?;
                    return Some(());
                }
                "concurrency_key" => {
                    seen.first(9)?;
                    concurrency_key = p.opt_string()?;
                    return Some(());
                }
                // Rare on the wire; serde reads them.
                "resource_refs" | "affinity" => {
                    seen.first(if k == "affinity" { 10 } else { 11 })?;
                    return p.null().then_some(());
                }
                _ => return None,
            };
            seen.first(slot as u32 + 12)?;
            s[slot] = Some(p.string()?);
            Some(())
        })?;
        let [run_id, task_id, node_id, node_type, package_name, package_version] = s;
        Some(DispatchPayload {
            run_id: run_id?,
            task_id: task_id?,
            node_id: node_id?,
            node_type: node_type?,
            package_name: package_name?,
            package_version: package_version?,
            parameters: parameters?,
            constraints: constraints?,
            priority,
            concurrency_key,
            resource_refs: None,
            affinity: None,
        })
    }

    fn u32(&mut self) -> R<u32> {
        u32::try_from(self.u64()?).ok()
    }

    fn strings(&mut self) -> R<Vec<String>> {
        self.array(P::string)
    }

    fn register(&mut self) -> R<RegisterPayload> {
        let (mut capabilities, mut packages, mut channels) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "capabilities" => {
                    seen.first(0)?;
                    capabilities = Some(p.capabilities()?);
                }
                "packages" => {
                    seen.first(1)?;
                    packages = Some(p.array(P::package_entry)?);
                }
                "channels" => {
                    seen.first(2)?;
                    channels = if p.null() { None } else { Some(p.strings()?) };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(RegisterPayload {
            capabilities: capabilities?,
            packages: packages?,
            channels,
        })
    }

    fn capabilities(&mut self) -> R<Capabilities> {
        let (mut concurrency, mut runtimes, mut features) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "concurrency" => {
                    seen.first(0)?;
                    let (mut max_parallel, mut per_node_limits) = (None, None);
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        match k {
                            "max_parallel" => {
                                seen.first(0)?;
                                max_parallel = Some(p.u32()?);
                            }
                            "per_node_limits" => {
                                seen.first(1)?;
                                per_node_limits = if p.null() {
                                    None
                                } else {
                                    let mut m = BTreeMap::new();
                                    p.object(|p, k| {
                                        let v = p.u32()?;
                                        m.insert(k.to_string(), v).is_none().then_some(())
                                    })?;
                                    Some(m)
                                };
                            }
                            _ => return None,
                        }
                        Some(())
                    })?;
                    concurrency = Some(Concurrency {
                        max_parallel: max_parallel?,
                        per_node_limits,
                    });
                }
                "runtimes" => {
                    seen.first(1)?;
                    runtimes = Some(p.strings()?);
                }
                "features" => {
                    seen.first(2)?;
                    features = Some(p.strings()?);
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(Capabilities {
            concurrency: concurrency?,
            runtimes: runtimes?,
            features: features?,
        })
    }

    fn package_entry(&mut self) -> R<PackageEntry> {
        let (mut name, mut version, mut status) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "name" => {
                    seen.first(0)?;
                    name = Some(p.string()?);
                }
                "version" => {
                    seen.first(1)?;
                    version = Some(p.string()?);
                }
                "status" => {
                    seen.first(2)?;
                    status = Some(match p.plain_str()? {
                        "installed" => PackageStatus::Installed,
                        "missing" => PackageStatus::Missing,
                        "failed" => PackageStatus::Failed,
                        _ => return None,
                    });
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PackageEntry {
            name: name?,
            version: version?,
            status: status?,
        })
    }

    fn handshake(&mut self) -> R<HandshakePayload> {
        let (mut protocol, mut auth, mut worker) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "protocol" => {
                    seen.first(0)?;
                    protocol = Some(p.u32()?);
                }
                "auth" => {
                    seen.first(1)?;
                    let (mut mode, mut token, mut fingerprint) = (None, None, None);
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        match k {
                            "mode" => {
                                seen.first(0)?;
                                mode = Some(match p.plain_str()? {
                                    "token" => AuthMode::Token,
                                    "mtls" => AuthMode::Mtls,
                                    _ => return None,
                                });
                            }
                            "token" => {
                                seen.first(1)?;
                                token = p.opt_string()?;
                            }
                            "fingerprint" => {
                                seen.first(2)?;
                                fingerprint = p.opt_string()?;
                            }
                            _ => return None,
                        }
                        Some(())
                    })?;
                    auth = Some(Auth {
                        mode: mode?,
                        token,
                        fingerprint,
                    });
                }
                "worker" => {
                    seen.first(2)?;
                    let mut s: [Option<String>; 3] = Default::default();
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        let i = match k {
                            "id" => 0,
                            "version" => 1,
                            "hostname" => 2,
                            _ => return None,
                        };
                        seen.first(i as u32)?;
                        s[i] = Some(p.string()?);
                        Some(())
                    })?;
                    let [id, version, hostname] = s;
                    worker = Some(WorkerInfo {
                        id: id?,
                        version: version?,
                        hostname: hostname?,
                    });
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(HandshakePayload {
            protocol: protocol?,
            auth: auth?,
            worker: worker?,
        })
    }

    fn command_error(&mut self) -> R<ErrorPayload> {
        let (mut code, mut message, mut remediation, mut context) = (None, None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "code" => {
                    seen.first(0)?;
                    code = Some(p.string()?);
                }
                "message" => {
                    seen.first(1)?;
                    message = Some(p.string()?);
                }
                "remediation" => {
                    seen.first(2)?;
                    remediation = p.opt_string()?;
                }
                "context" => {
                    seen.first(3)?;
                    context = if p.null() {
                        None
                    } else {
                        let mut c = ErrorContext {
                            where_: None,
                            details: None,
                        };
                        let mut seen = Seen(0);
                        p.object(|p, k| {
                            match k {
                                "where" => {
                                    seen.first(0)?;
                                    c.where_ = p.opt_string()?;
                                }
                                "details" => {
                                    seen.first(1)?;
                                    c.details = p.opt_map()?;
                                }
                                _ => return None,
                            }
                            Some(())
                        })?;
                        Some(c)
                    };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ErrorPayload {
            code: code?,
            message: message?,
            remediation,
            context,
        })
    }

    fn pkg_event(&mut self) -> R<PkgEventPayload> {
        let (mut name, mut version, mut status) = (None, None, None);
        let (mut log_url, mut details) = (None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "name" => {
                    seen.first(0)?;
                    name = Some(p.string()?);
                }
                "version" => {
                    seen.first(1)?;
                    version = Some(p.string()?);
                }
                "status" => {
                    seen.first(2)?;
                    status = Some(match p.plain_str()? {
                        "installed" => PkgEventStatus::Installed,
                        "failed" => PkgEventStatus::Failed,
                        _ => return None,
                    });
                }
                "log_url" => {
                    seen.first(3)?;
                    log_url = p.opt_string()?;
                }
                "details" => {
                    seen.first(4)?;
                    details = p.opt_map()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PkgEventPayload {
            name: name?,
            version: version?,
            status: status?,
            log_url,
            details,
        })
    }
}
