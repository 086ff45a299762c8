//! Reading task parameters with the SPLAI executors' conventions (first non-empty of several
//! keys, Go-style booleans, `*_json` strings) and errors that name the field.
//!
//! Where SPLAI takes a JSON document in a string (`texts_json`, `items_json`, ...), a native
//! JSON value is accepted too, since astra parameters are JSON already.

use crate::runner::HandlerError;
use serde_json::{Map, Value};

/// A bad parameter: which field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{field}`: {problem}")]
pub struct ParamError {
    pub field: String,
    pub problem: String,
}

impl ParamError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl From<ParamError> for HandlerError {
    fn from(e: ParamError) -> Self {
        HandlerError::with_code(astra_core::work::task::codes::CMD_INVALID, e.to_string())
    }
}

/// How a JSON value's type is named in an error message ("got a string").
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string parameter, trimmed; absent, null and blank are `None`. Numbers and booleans are
/// accepted in their JSON spelling (SPLAI inputs are all strings).
pub fn string(params: &Map<String, Value>, key: &str) -> Result<Option<String>, ParamError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(v) => Err(ParamError::new(
            key,
            format!("must be a string, got {}", type_name(v)),
        )),
    }
}

/// The first key with a non-empty string value, and that value.
pub fn first_string(
    params: &Map<String, Value>,
    keys: &[&str],
) -> Result<Option<(String, String)>, ParamError> {
    for key in keys {
        if let Some(v) = string(params, key)? {
            return Ok(Some((key.to_string(), v)));
        }
    }
    Ok(None)
}

/// A boolean: JSON true/false, or Go's `strconv.ParseBool` spellings
/// (`1,t,T,TRUE,true,True,0,f,F,FALSE,false,False`). Anything else is an error rather than
/// SPLAI's silent default.
pub fn boolean(params: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ParamError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim() {
            "" => Ok(default),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            other => Err(ParamError::new(
                key,
                format!("must be a boolean (true/false/1/0), got {other:?}"),
            )),
        },
        Some(v) => Err(ParamError::new(
            key,
            format!("must be a boolean, got {}", type_name(v)),
        )),
    }
}

/// A positive integer (number or numeric string) no larger than `max`.
pub fn positive_int(
    params: &Map<String, Value>,
    key: &str,
    default: usize,
    max: usize,
) -> Result<usize, ParamError> {
    let bad = |got: String| {
        ParamError::new(
            key,
            format!("must be an integer between 1 and {max}, got {got}"),
        )
    };
    match params.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n >= 1 && n as u128 <= max as u128 => Ok(n as usize),
            _ => Err(bad(n.to_string())),
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(default),
        Some(Value::String(s)) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad(format!("{s:?}"))),
        },
        Some(v) => Err(bad(type_name(v).to_string())),
    }
}

/// A JSON document given either as a string holding JSON or as a native JSON value.
/// Absent, null and blank strings are `None`.
pub fn json_doc(params: &Map<String, Value>, key: &str) -> Result<Option<Value>, ParamError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| ParamError::new(key, format!("invalid JSON: {e}"))),
        Some(v) => Ok(Some(v.clone())),
    }
}

/// A JSON array of strings (`texts_json`): trimmed, empties dropped.
pub fn string_list(
    params: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, ParamError> {
    let Some(doc) = json_doc(params, key)? else {
        return Ok(None);
    };
    let Value::Array(items) = doc else {
        return Err(ParamError::new(
            key,
            format!("must be a JSON array of strings, got {}", type_name(&doc)),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => out.push(s.trim().to_string()),
            other => {
                return Err(ParamError::new(
                    key,
                    format!("item {i} must be a string, got {}", type_name(other)),
                ))
            }
        }
    }
    Ok(Some(out))
}

/// A JSON object of string → string (`filters_json`). Non-string scalar values are taken in
/// their printed form, as SPLAI compares "as printed text".
pub fn string_map(
    params: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<(String, String)>>, ParamError> {
    let Some(doc) = json_doc(params, key)? else {
        return Ok(None);
    };
    let Value::Object(obj) = doc else {
        return Err(ParamError::new(
            key,
            format!(
                "must be a JSON object of string values, got {}",
                type_name(&doc)
            ),
        ));
    };
    obj.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(_) | Value::Bool(_) => Ok((k, v.to_string())),
            other => Err(ParamError::new(
                key,
                format!("value of {k:?} must be a string, got {}", type_name(&other)),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn first_string_skips_blanks() {
        let m = p(json!({"text": "  ", "prompt": " hi ", "op": "x"}));
        assert_eq!(
            first_string(&m, &["text", "prompt", "op"]).unwrap(),
            Some(("prompt".into(), "hi".into()))
        );
        let e = first_string(&p(json!({"text": [1]})), &["text"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter `text`: must be a string, got an array"
        );
    }

    #[test]
    fn booleans_follow_go_and_reject_garbage() {
        let m = p(json!({"a": "T", "b": false, "c": "nope", "d": ""}));
        assert!(boolean(&m, "a", false).unwrap());
        assert!(!boolean(&m, "b", true).unwrap());
        assert!(boolean(&m, "d", true).unwrap());
        assert!(boolean(&m, "missing", true).unwrap());
        assert!(boolean(&m, "c", true)
            .unwrap_err()
            .to_string()
            .contains("`c`"));
    }

    #[test]
    fn json_docs_accept_strings_and_native_values() {
        let m = p(json!({"s": "[\"a\", \" \", \"b\"]", "n": ["x"], "bad": "[1,", "num": "[1]"}));
        assert_eq!(
            string_list(&m, "s").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(string_list(&m, "n").unwrap(), Some(vec!["x".into()]));
        let e = string_list(&m, "bad").unwrap_err();
        assert!(
            e.to_string().starts_with("parameter `bad`: invalid JSON"),
            "{e}"
        );
        assert!(string_list(&m, "num")
            .unwrap_err()
            .problem
            .contains("item 0"));
    }

    #[test]
    fn positive_ints_are_bounded() {
        let m = p(json!({"a": 3, "b": "4", "c": 0, "d": "x", "e": 1000}));
        assert_eq!(positive_int(&m, "a", 5, 100).unwrap(), 3);
        assert_eq!(positive_int(&m, "b", 5, 100).unwrap(), 4);
        assert_eq!(positive_int(&m, "z", 5, 100).unwrap(), 5);
        for k in ["c", "d", "e"] {
            assert!(positive_int(&m, k, 5, 100).is_err(), "{k}");
        }
    }

    #[test]
    fn string_maps_print_scalars() {
        let m = p(json!({"f": "{\"tenant\": \"a\", \"n\": 1}", "g": "[]"}));
        let mut f = string_map(&m, "f").unwrap().unwrap();
        f.sort();
        assert_eq!(
            f,
            vec![("n".into(), "1".into()), ("tenant".into(), "a".into())]
        );
        assert!(string_map(&m, "g").is_err());
    }
}
