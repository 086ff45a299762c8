//! Minimal URL checks for the scheduler endpoints (scheme, host, port, path).
//!
//! Only what the worker needs: we never resolve or fetch here, so a full URL parser would
//! be a dependency for little gain.

/// The WebSocket endpoint the c4bf80a scheduler serves.
pub const WS_ENDPOINT_PATH: &str = "/ws/worker";

/// A URL split at the authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitUrl {
    /// Lower-cased.
    pub scheme: String,
    pub authority: String,
    /// Path, query and fragment as written (may be empty).
    pub rest: String,
}

impl SplitUrl {
    pub(crate) fn path(&self) -> &str {
        let end = self.rest.find(['?', '#']).unwrap_or(self.rest.len());
        &self.rest[..end]
    }
}

/// Splits `url` if its scheme is one of `schemes` and it has a valid host (and port, if
/// any). Rejects whitespace, user info and fragments-in-authority.
pub(crate) fn split(url: &str, schemes: &[&str]) -> Option<SplitUrl> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, after) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !schemes.contains(&scheme.as_str()) {
        return None;
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    valid_authority(authority).then(|| SplitUrl {
        scheme,
        authority: authority.to_string(),
        rest: rest.to_string(),
    })
}

fn valid_authority(a: &str) -> bool {
    if a.contains('@') {
        return false;
    }
    let (host, port) = if let Some(inner) = a.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let Some((addr, tail)) = inner.split_once(']') else {
            return false;
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match tail {
            "" => return true,
            t => match t.strip_prefix(':') {
                Some(p) => ("v6", Some(p)),
                None => return false,
            },
        }
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'));
    let port_ok = match port {
        None => true,
        Some(p) => {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n > 0)
        }
    };
    host_ok && port_ok
}

/// Checks a scheduler WebSocket URL. Returns the URL to use and whether `/ws/worker` was
/// added because the URL had no path at all.
pub(crate) fn ws_url(url: &str) -> Option<(String, bool)> {
    let u = split(url, &["ws", "wss"])?;
    if u.rest.contains('#') {
        // RFC 6455 forbids fragments in WebSocket URIs.
        return None;
    }
    if u.path().is_empty() {
        Some((
            format!(
                "{}://{}{}{}",
                u.scheme, u.authority, WS_ENDPOINT_PATH, u.rest
            ),
            true,
        ))
    } else {
        Some((format!("{}://{}{}", u.scheme, u.authority, u.rest), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls() {
        assert_eq!(
            ws_url("ws://h:8080/ws/worker"),
            Some(("ws://h:8080/ws/worker".into(), false))
        );
        assert_eq!(ws_url("WSS://h"), Some(("wss://h/ws/worker".into(), true)));
        assert_eq!(
            ws_url("ws://h:1?x=1"),
            Some(("ws://h:1/ws/worker?x=1".into(), true))
        );
        assert_eq!(
            ws_url("ws://[::1]:9/p"),
            Some(("ws://[::1]:9/p".into(), false))
        );
        for bad in [
            "http://h/ws/worker",
            "ws://",
            "ws:///ws/worker",
            "ws://h:/x",
            "ws://h:99999/x",
            "ws://h:0/x",
            "ws://u:p@h/x",
            "ws://h/x#frag",
            "ws://h x/y",
            "localhost:8080",
            "ws://[nope]/x",
            "ws://h:8a/x",
        ] {
            assert_eq!(ws_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        assert!(split("https://api.example.com/api/v1", &["http", "https"]).is_some());
        assert!(split("ws://api.example.com/api/v1", &["http", "https"]).is_none());
    }
}
