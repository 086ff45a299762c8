//! The `retrieval` executor (splai-worker.md §6.5 HEAD), ranking by real embeddings.
//!
//! Inputs: query `query`, else `text`, else `prompt`; documents `documents_json` (array of
//! `{id, text, metadata}`; empty texts dropped; a missing id becomes `doc-<position>`), else
//! `documents` (one per line, id `doc-<line>`); `top_k` (default 5); filters `filters_json`
//! (object of string values), else `tenant` / `data_classification` when present; backend
//! `retrieval_backend`, else `local`; model `embedding_model`, else the default.
//!
//! Without `index`, the given documents are ranked on their own (SPLAI's behaviour). With
//! `index` (a name), the documents are upserted into that persistent index under the
//! index dir, and the query runs against the whole index; a task with only `index` and
//! `query` searches what earlier tasks stored. Scores are exact cosines (see [`Index`]).
//! Outputs: `documents` (`id, score, vector_score, text, metadata`), `query`, `backend`,
//! `top_k`, `filters`, `model`, and with an index `index`, `upserted`, `replaced`,
//! `index_size`.

use super::filter::Filter;
use super::index::{self, Document, Index};
use crate::ai::artifact;
use crate::ai::embed::{ModelCache, DEFAULT_BATCH, DEFAULT_EMBEDDING_MODEL};
use crate::ai::params::{self, ParamError};
use crate::ai::settings::AiSettings;
use crate::runner::{ExecutionContext, Handler, HandlerError, HandlerOutput};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

const MAX_TOP_K: usize = 1000;
const MAX_DOCS_PER_TASK: usize = 10_000;
/// Directory name under the runner's data dir; never produced by id sanitising (leading dot).
pub const INDEX_DIR_NAME: &str = ".ai-index";

pub struct Retrieval {
    artifact_root: PathBuf,
    index_dir: Option<PathBuf>,
    models: Arc<ModelCache>,
}

impl Retrieval {
    pub fn new(settings: &AiSettings, models: Arc<ModelCache>) -> Self {
        Retrieval {
            artifact_root: settings.artifact_root.clone(),
            index_dir: settings.index_dir.clone(),
            models,
        }
    }

    /// The configured index dir, else `<runner data dir>/.ai-index` (the task data dir is
    /// `<runner data dir>/<run>/<task>`).
    fn index_root(&self, ctx: &ExecutionContext) -> PathBuf {
        self.index_dir.clone().unwrap_or_else(|| {
            ctx.data_dir
                .ancestors()
                .nth(2)
                .unwrap_or(&ctx.data_dir)
                .join(INDEX_DIR_NAME)
        })
    }
}

pub fn documents(p: &Map<String, Value>) -> Result<Vec<Document>, ParamError> {
    let docs = if let Some(doc) = params::json_doc(p, "documents_json")? {
        let Value::Array(items) = doc else {
            return Err(ParamError::new(
                "documents_json",
                "invalid documents_json: must be a JSON array of {id, text, metadata} objects",
            ));
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(mut o) = item else {
                return Err(ParamError::new(
                    "documents_json",
                    format!("invalid documents_json: item {i} must be an object"),
                ));
            };
            let text = match o.remove("text") {
                Some(Value::String(s)) => s,
                None | Some(Value::Null) => String::new(),
                Some(_) => {
                    return Err(ParamError::new(
                        "documents_json",
                        format!("invalid documents_json: item {i}: `text` must be a string"),
                    ))
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            let id = match o.remove("id") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                Some(Value::Number(n)) => n.to_string(),
                None | Some(Value::Null) | Some(Value::String(_)) => format!("doc-{}", i + 1),
                Some(_) => {
                    return Err(ParamError::new(
                        "documents_json",
                        format!("invalid documents_json: item {i}: `id` must be a string"),
                    ))
                }
            };
            let metadata = match o.remove("metadata") {
                Some(Value::Object(m)) => m,
                None | Some(Value::Null) => Map::new(),
                Some(_) => {
                    return Err(ParamError::new(
                        "documents_json",
                        format!("invalid documents_json: item {i}: `metadata` must be an object"),
                    ))
                }
            };
            out.push(Document { id, text, metadata });
        }
        out
    } else if let Some(lines) = params::string(p, "documents")? {
        lines
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Document {
                id: format!("doc-{}", i + 1),
                text: l.trim().to_string(),
                metadata: Map::new(),
            })
            .collect()
    } else {
        Vec::new()
    };
    if docs.len() > MAX_DOCS_PER_TASK {
        return Err(ParamError::new(
            "documents_json",
            format!(
                "holds {} documents; at most {MAX_DOCS_PER_TASK} per task",
                docs.len()
            ),
        ));
    }
    Ok(docs)
}

pub fn filter(p: &Map<String, Value>) -> Result<Filter, ParamError> {
    if let Some(terms) = params::string_map(p, "filters_json")? {
        return Ok(Filter::new(terms));
    }
    let mut terms = Vec::new();
    for key in ["tenant", "data_classification"] {
        if let Some(v) = params::string(p, key)? {
            terms.push((key.to_string(), v));
        }
    }
    Ok(Filter::new(terms))
}

fn hits_json(hits: Vec<index::Hit<'_>>) -> Value {
    Value::Array(
        hits.into_iter()
            .map(|h| json!({ "id": h.doc.id, "score": h.score, "vector_score": h.score, "text": h.doc.text, "metadata": h.doc.metadata }))
            .collect(),
    )
}

fn index_err(e: index::IndexError) -> HandlerError {
    HandlerError::new(format!("parameter `index`: {e}"))
}

impl Handler for Retrieval {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let p = &ctx.params;
        if let Some((field, b)) = params::first_string(p, &["retrieval_backend"])? {
            if !b.eq_ignore_ascii_case("local") {
                return Err(ParamError::new(field, format!("unsupported retrieval backend {b:?}; this worker retrieves locally only (`local`)")).into());
            }
        }
        let query = params::first_string(p, &["query", "text", "prompt"])?.map(|(_, q)| q);
        let docs = documents(p)?;
        let top_k = params::positive_int(p, "top_k", 5, MAX_TOP_K)?;
        let filter = filter(p)?;
        let model = params::string(p, "embedding_model")?
            .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_string());
        let index_name = params::string(p, "index")?;
        if let Some(name) = &index_name {
            if !index::valid_name(name) {
                return Err(ParamError::new("index", format!("{name:?} is not a valid index name: 1-64 of letters, digits, `_`, `-`, `.`, not starting with `.`")).into());
            }
        }

        // Embed documents and query in one request (one model round trip).
        let mut texts: Vec<String> = docs.iter().map(|d| d.text.clone()).collect();
        if let Some(q) = &query {
            texts.push(q.clone());
        }
        let (mut vectors, info) = if texts.is_empty() {
            (Vec::new(), None)
        } else {
            let (v, i) = self
                .models
                .embed(&model, texts, DEFAULT_BATCH, &ctx.cancel)
                .map_err(crate::ai::embed::to_handler_error)?;
            (v, Some(i))
        };
        let query_vec = query.as_ref().and_then(|_| vectors.pop());

        let mut fields = Map::new();
        let hits = match &index_name {
            None => {
                let dim = info.as_ref().map_or(0, |i| i.dimension);
                let mut ix = Index::new(model.clone(), dim);
                ix.upsert(docs, vectors)
                    .map_err(|e| HandlerError::new(e.to_string()))?;
                match &query_vec {
                    Some(q) => hits_json(ix.search(q, top_k, &filter)),
                    None => json!([]),
                }
            }
            Some(name) => {
                let path = self.index_root(ctx).join(name).join(index::FILE_NAME);
                let lock = index::lock_for(&path);
                let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                let mut ix = if path.exists() {
                    Index::load(&path).map_err(index_err)?
                } else {
                    Index::new(model.clone(), info.as_ref().map_or(0, |i| i.dimension))
                };
                if let Some(i) = &info {
                    if ix.is_empty() && ix.dimension == 0 {
                        ix = Index::new(model.clone(), i.dimension);
                    }
                    ix.check_model(&i.model, i.dimension).map_err(index_err)?;
                }
                let (inserted, replaced) = if docs.is_empty() {
                    (0, 0)
                } else {
                    let r = ix.upsert(docs, vectors).map_err(index_err)?;
                    ix.save(&path).map_err(index_err)?;
                    r
                };
                fields.insert("index".into(), json!(name));
                fields.insert("upserted".into(), json!(inserted));
                fields.insert("replaced".into(), json!(replaced));
                fields.insert("index_size".into(), json!(ix.len()));
                match &query_vec {
                    Some(q) => hits_json(ix.search(q, top_k, &filter)),
                    None => json!([]),
                }
            }
        };
        fields.insert("documents".into(), hits);
        fields.insert("query".into(), json!(query.unwrap_or_default()));
        fields.insert("backend".into(), json!("local"));
        fields.insert("top_k".into(), json!(top_k));
        fields.insert("filters".into(), filter.to_json());
        fields.insert("model".into(), json!(model));
        artifact::finish(&self.artifact_root, ctx, fields)
            .map_err(|e| HandlerError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn documents_follow_splai_rules() {
        let d = documents(&p(json!({"documents_json": "[{\"text\": \"a\"}, {\"id\": \"x\", \"text\": \"\"}, {\"id\": \"y\", \"text\": \"b\", \"metadata\": {\"k\": 1}}]"}))).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            vec!["doc-1", "y"]
        );
        assert_eq!(d[1].metadata["k"], 1);
        let d = documents(&p(json!({"documents": "one\n\nthree"}))).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            vec!["doc-1", "doc-3"]
        );
        let e = documents(&p(json!({"documents_json": "{"}))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parameter `documents_json`: invalid JSON"),
            "{e}"
        );
        let e = documents(&p(
            json!({"documents_json": [{"text": "a", "metadata": 3}]}),
        ))
        .unwrap_err();
        assert!(e.problem.contains("`metadata` must be an object"), "{e}");
    }

    #[test]
    fn filters_from_json_or_tenant() {
        assert!(filter(&p(json!({}))).unwrap().is_empty());
        assert_eq!(
            filter(&p(json!({"tenant": "A"}))).unwrap().to_json(),
            json!({"tenant": "a"})
        );
        assert_eq!(
            filter(&p(json!({"tenant": "A", "filters_json": {"k": "V"}})))
                .unwrap()
                .to_json(),
            json!({"k": "v"})
        );
        assert!(filter(&p(json!({"filters_json": "[1]"}))).is_err());
    }
}
