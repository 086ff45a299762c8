//! Splits a `command` string into argv without a shell: whitespace separates words, single
//! quotes are literal, double quotes allow `\"` and `\\`, a backslash outside quotes escapes
//! the next character. Unquoted shell syntax (pipes, redirects, substitutions, globs,
//! separators) is refused rather than passed literally, so nobody mistakes it for a shell.

/// Characters that mean something to a shell and nothing here.
const SHELL_SYNTAX: &[char] = &[
    ';', '|', '&', '<', '>', '(', ')', '$', '`', '*', '?', '\n', '#',
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error("uses shell syntax ({0:?}) but runs without a shell; pass shell text as `script` instead (which needs `sh` in the tool allowlist), or quote the character")]
    ShellSyntax(char),
    #[error("has an unterminated {0} quote")]
    Unterminated(&'static str),
    #[error("is empty")]
    Empty,
}

pub fn split(command: &str) -> Result<Vec<String>, ArgvError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() && c != '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(ArgvError::Unterminated("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(ArgvError::Unterminated("double")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(ArgvError::Unterminated("double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(ch) => cur.push(ch),
                    None => cur.push('\\'),
                }
            }
            '~' if !in_word => return Err(ArgvError::ShellSyntax('~')),
            c if SHELL_SYNTAX.contains(&c) => return Err(ArgvError::ShellSyntax(c)),
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(ArgvError::Empty);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            split("echo  a 'b c' \"d \\\"e\\\"\" f\\ g").unwrap(),
            vec!["echo", "a", "b c", "d \"e\"", "f g"]
        );
        assert_eq!(split("printf '%s;|$'").unwrap(), vec!["printf", "%s;|$"]);
        assert_eq!(split("a ''").unwrap(), vec!["a", ""]);
    }

    #[test]
    fn shell_syntax_is_refused() {
        for (cmd, c) in [
            ("ls; rm -rf /", ';'),
            ("cat x | sh", '|'),
            ("echo $HOME", '$'),
            ("echo `id`", '`'),
            ("ls *.txt", '*'),
            ("cat ~/x", '~'),
            ("a > b", '>'),
        ] {
            assert_eq!(split(cmd), Err(ArgvError::ShellSyntax(c)), "{cmd}");
        }
        assert_eq!(split("echo 'x"), Err(ArgvError::Unterminated("single")));
        assert_eq!(split("   "), Err(ArgvError::Empty));
    }
}
