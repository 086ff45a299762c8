//! The envelope part of the fast path: its fields, `sender` and `ack`, each as strict as
//! `Envelope`'s serde derive (unknown key, duplicate, wrong type: not sure).

use super::{Seen, P, R};
use crate::v1::codec::Inbound;
use crate::v1::envelope::{AckField, Envelope, Role, Sender};
use crate::v1::types::FrameType;
use serde_json::Map;

impl P<'_> {
    // ------------------------------------------------------------------------------------
    // envelope

    /// The whole text as one frame, or `None` ("not sure").
    pub(super) fn frame(&mut self) -> R<Inbound> {
        self.frame_or(|| Err(())).ok()
    }

    /// The whole text as one frame, else `fallback()`'s answer.
    ///
    /// The envelope in the order both encoders write it (`Envelope`'s field order, no
    /// whitespace between keys) has its keys matched as bytes instead of read and dispatched
    /// one by one: a tenth of every decode. The values go through the same readers as in
    /// [`Self::any_order_frame`], which a text in any other shape falls back to (nothing here
    /// is kept then), so the frame is the one the walk reads.
    ///
    /// The frame is built once, in the place it is returned in: this function's callers
    /// return its answer as is, and every way out that is not the frame in encoder order is a
    /// call returned as is too (a tail call). Built and then handed up through `Option`s, an
    /// `Inbound` (some 400 bytes) was copied twice more per decode by `memcpy` calls.
    #[inline(always)]
    pub(super) fn frame_or<E>(
        &mut self,
        fallback: impl FnOnce() -> Result<Inbound, E>,
    ) -> Result<Inbound, E> {
        let (open, depth) = (self.i, self.depth);
        // Not in encoder order, or not read by this path: the walk from the start decides.
        macro_rules! or_walk {
            ($e:expr) => {
                match $e {
                    Some(v) => v,
                    None => return self.walk_or(open, depth, fallback),
                }
            };
        }
        or_walk!(self.want(b"{\"type\":"));
        or_walk!(self.enter());
        let (kind, ft) = match self.known_type() {
            Some(known) => known,
            None => {
                let kind = or_walk!(self.string());
                let ft = or_walk!(FrameType::parse(&kind));
                (kind, ft)
            }
        };
        or_walk!(self.want(b",\"id\":"));
        let id = or_walk!(self.string_here());
        or_walk!(self.want(b",\"ts\":"));
        // Read and validated at once (what `validate_envelope` wants of it), without the
        // escape scan; a stamp `stamp` declines is read by the walk.
        let ts = or_walk!(self.stamp_string());
        let corr = if self.exact(b",\"corr\":") {
            or_walk!(self.opt_string())
        } else {
            None
        };
        let seq = if self.exact(b",\"seq\":") {
            or_walk!(self.opt_u64())
        } else {
            None
        };
        or_walk!(self.want(b",\"tenant\":"));
        let tenant = or_walk!(self.string_here());
        or_walk!(self.want(b",\"sender\":"));
        let sender = or_walk!(self.sender());
        let ack = if self.exact(b",\"ack\":") {
            or_walk!(self.ack_field())
        } else {
            None
        };
        let flags = if self.exact(b",\"flags\":") {
            or_walk!(self.flags())
        } else {
            None
        };
        or_walk!(self.want(b",\"payload\":"));
        let body = or_walk!(self.body(ft));
        or_walk!(self.want(b"}"));
        self.depth -= 1;
        // The walk would read this same object, to the same end: text after it, or a field
        // value `validate_envelope` refuses (`ts` was validated as it was read), is refused
        // there as well, so the fallback answers at once.
        self.ws();
        let fields_ok =
            crate::v1::codec::envelope_fields_ok(&kind, &id, &tenant, &sender.id, flags.as_deref());
        if self.i != self.b.len() || !fields_ok {
            return fallback();
        }
        Ok(Inbound {
            env: Envelope {
                kind,
                id,
                ts,
                corr,
                seq,
                tenant,
                sender,
                ack,
                flags,
                payload: Map::new(),
            },
            body,
        })
    }

    /// The frame read by [`Self::any_order_frame`] from `open`, if it is the whole text; else
    /// `fallback()`'s answer. Out of line: the walk is the rare case.
    #[inline(never)]
    fn walk_or<E>(
        &mut self,
        open: usize,
        depth: u32,
        fallback: impl FnOnce() -> Result<Inbound, E>,
    ) -> Result<Inbound, E> {
        self.i = open;
        self.depth = depth;
        if let Some(f) = self.any_order_frame() {
            self.ws();
            if self.i == self.b.len() {
                return Ok(f);
            }
        }
        fallback()
    }

    /// The `type` value as both encoders write it, one of the known names in quotes with
    /// nothing before it, matched as bytes instead of scanned and parsed; `None`, with
    /// nothing consumed, for any other text (which [`Self::string`] then reads). Such a
    /// value is a plain string whose text is exactly the name, so the frame is the same.
    /// Picked by its first letter. The name is copied from the
    /// literal of its own branch, a copy of known length the compiler writes inline (one
    /// `memcpy` call a frame less than copying `FrameType::as_str`).
    #[inline(always)]
    fn known_type(&mut self) -> Option<(String, FrameType)> {
        macro_rules! try_type {
            ($name:literal, $ft:expr) => {
                if self.exact(concat!("\"", $name, "\"").as_bytes()) {
                    return Some((String::from($name), $ft));
                }
            };
        }
        // The first letter picks the few names that can match (each still matched whole).
        match self.b.get(self.i + 1) {
            Some(b'c') => {
                try_type!("cmd.dispatch", FrameType::Dispatch);
                try_type!("command.error", FrameType::CommandError);
            }
            Some(b'r') => {
                try_type!("result", FrameType::Result);
                try_type!("register", FrameType::Register);
            }
            Some(b'a') => try_type!("ack", FrameType::Ack),
            Some(b'h') => {
                try_type!("heartbeat", FrameType::Heartbeat);
                try_type!("handshake", FrameType::Handshake);
            }
            Some(b'f') => try_type!("feedback", FrameType::Feedback),
            Some(b'p') => {
                try_type!("pkg.event", FrameType::PkgEvent);
                try_type!("pkg.install", FrameType::PkgInstall);
                try_type!("pkg.uninstall", FrameType::PkgUninstall);
            }
            _ => {}
        }
        None
    }

    /// The envelope's keys in any order, each once.
    fn any_order_frame(&mut self) -> R<Inbound> {
        let (mut kind, mut id, mut ts, mut tenant) = (None, None, None, None);
        let (mut corr, mut seq, mut sender, mut ack, mut flags) = (None, None, None, None, None);
        let mut body = None;
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "type" => {
                    seen.first(0)?;
                    kind = Some(p.string()?);
                }
                "id" => {
                    seen.first(1)?;
                    id = Some(p.string()?);
                }
                "ts" => {
                    seen.first(2)?;
                    ts = Some(p.string()?);
                }
                "corr" => {
                    seen.first(3)?;
                    corr = p.opt_string()?;
                }
                "seq" => {
                    seen.first(4)?;
                    seq = p.opt_u64()?;
                }
                "tenant" => {
                    seen.first(5)?;
                    tenant = Some(p.string()?);
                }
                "sender" => {
                    seen.first(6)?;
                    sender = Some(p.sender()?);
                }
                "ack" => {
                    seen.first(7)?;
                    ack = p.ack_field()?;
                }
                "flags" => {
                    seen.first(8)?;
                    flags = p.flags()?;
                }
                "payload" => {
                    seen.first(9)?;
                    // Only frames that name their type first are read here.
                    let ft = FrameType::parse(kind.as_deref()?)?;
                    body = Some(p.body(ft)?);
                }
                _ => return None,
            }
            Some(())
        })?;
        let env = Envelope {
            kind: kind?,
            id: id?,
            ts: ts?,
            corr,
            seq,
            tenant: tenant?,
            sender: sender?,
            ack,
            flags,
            payload: Map::new(),
        };
        crate::v1::codec::validate_envelope(&env).ok()?;
        Some(Inbound { env, body: body? })
    }

    /// The `flags` value: `null` or an array of strings.
    fn flags(&mut self) -> R<Option<Vec<String>>> {
        if self.null() {
            Some(None)
        } else {
            self.array(P::string).map(Some)
        }
    }

    /// `text` next, as is, or `None` with nothing consumed.
    ///
    /// Always inline, as [`Self::exact`]: every caller passes a literal, which the compiler
    /// then compares in a few word loads instead of a call to `memcmp` (44 instructions a
    /// call out of line, 12 k calls in 20 simulated seeds).
    #[inline(always)]
    pub(super) fn want(&mut self, text: &[u8]) -> R<()> {
        self.exact(text).then_some(())
    }

    /// Reads `text` if it comes next, as is (no whitespace inside).
    #[inline(always)]
    pub(super) fn exact(&mut self, text: &[u8]) -> bool {
        let hit = self.b.get(self.i..).is_some_and(|r| r.starts_with(text));
        if hit {
            self.i += text.len();
        }
        hit
    }

    /// `sender` as both encoders write it, `{"role":"…","id":"…"}` with a plain id, read
    /// without the generic object walk (a visible share of every decode); `None`, with
    /// nothing consumed, for any other text. The walk gives the same value for this text.
    fn compact_sender(&mut self) -> R<Sender> {
        let open = self.i;
        let role = if self.exact(b"{\"role\":\"worker\",\"id\":") {
            Role::Worker
        } else if self.exact(b"{\"role\":\"scheduler\",\"id\":") {
            Role::Scheduler
        } else {
            return None;
        };
        let id = self.plain_str_here().filter(|_| self.exact(b"}"));
        let Some(id) = id else {
            self.i = open;
            return None;
        };
        Some(Sender {
            role,
            id: id.to_string(),
        })
    }

    fn sender(&mut self) -> R<Sender> {
        self.ws();
        if let Some(s) = self.compact_sender() {
            return Some(s);
        }
        let (mut role, mut id) = (None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "role" => {
                    seen.first(0)?;
                    role = Some(match p.plain_str()? {
                        "scheduler" => Role::Scheduler,
                        "worker" => Role::Worker,
                        _ => return None,
                    });
                }
                "id" => {
                    seen.first(1)?;
                    id = Some(p.string()?);
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(Sender {
            role: role?,
            id: id?,
        })
    }

    fn ack_field(&mut self) -> R<Option<AckField>> {
        if self.null() {
            return Some(None);
        }
        // The worker's own form, read as the walk below would read it.
        if self.exact(b"{\"request\":true}") {
            return Some(Some(AckField {
                for_id: None,
                request: Some(true),
            }));
        }
        let mut a = AckField::default();
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "for" => {
                    seen.first(0)?;
                    a.for_id = p.opt_string()?;
                }
                "request" => {
                    seen.first(1)?;
                    a.request = p.opt_bool()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(Some(a))
    }
}
