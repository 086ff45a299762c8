//! Metadata filters (splai-worker.md §6.5 HEAD): a document matches when its metadata has
//! every filter key with an equal value, compared trimmed, case-insensitively, as printed
//! text (strings as themselves, other JSON values in their JSON spelling).

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// (key, lower-cased trimmed value), sorted by key.
    terms: Vec<(String, String)>,
}

fn printed(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_lowercase(),
        other => other.to_string().trim().to_lowercase(),
    }
}

impl Filter {
    pub fn new(terms: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut terms: Vec<(String, String)> = terms
            .into_iter()
            .map(|(k, v)| (k, v.trim().to_lowercase()))
            .collect();
        terms.sort();
        terms.dedup();
        Filter { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.terms
            .iter()
            .all(|(k, want)| metadata.get(k).is_some_and(|v| printed(v) == *want))
    }

    /// The filter as reported in the output (`filters`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.terms
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_every_term_case_insensitively_as_printed_text() {
        let f = Filter::new([
            ("tenant".to_string(), " Acme ".to_string()),
            ("n".to_string(), "1".to_string()),
        ]);
        let meta = |v: Value| v.as_object().cloned().unwrap();
        assert!(f.matches(&meta(json!({"tenant": "ACME", "n": 1, "x": "y"}))));
        assert!(f.matches(&meta(json!({"tenant": "acme ", "n": "1"}))));
        assert!(!f.matches(&meta(json!({"tenant": "acme"}))));
        assert!(!f.matches(&meta(json!({"tenant": "other", "n": 1}))));
        assert!(Filter::default().matches(&Map::new()));
    }
}
