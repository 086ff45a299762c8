//! `hostname()`: the machine name reported in the handshake.

/// The system host name, or `"localhost"` if it cannot be read or is empty.
pub fn hostname() -> String {
    read()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(unix)]
fn read() -> Option<String> {
    // 256 covers POSIX HOST_NAME_MAX (255) plus the terminating NUL.
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and gethostname writes at most
    // that many; we look for the NUL ourselves because truncation may omit it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).trim().to_string())
}

#[cfg(not(unix))]
fn read() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_empty_and_clean() {
        let h = super::hostname();
        assert!(!h.is_empty());
        assert!(!h.contains('\0'));
    }
}
