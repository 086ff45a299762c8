//! A local, exact vector index persisted as one file per index.
//!
//! Layout: `<index_dir>/<name>/index.v1` = `u64` little-endian header length, the header
//! (JSON: format, model, dimension, documents with id/text/metadata), then `count ×
//! dimension` little-endian `f32` (unit-length rows). Saved atomically (temp file + rename),
//! so a crash leaves the old or the new index, never a mix.
//!
//! Complexity (N documents, d dimensions, k results, m documents upserted):
//! - query: exact brute-force scan, O(N·d) time, O(N) extra memory for the candidate
//!   scores, then O(N) selection + O(k log k) sort. No approximation: results equal a full
//!   sort by cosine (ties by id).
//! - upsert: O(m) embeddings + O(N + m) id lookups, then an O(N·d) rewrite of the file.
//! - load: O(N·d) read. Memory: N·d·4 bytes for the vectors plus the texts.
//!
//! Fine up to some 10^5 documents of dimension 384 (~150 MB, tens of ms per query on one
//! core); beyond that an ANN structure (HNSW) would be the next step.

use super::filter::Filter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub const FILE_NAME: &str = "index.v1";
const FORMAT: &str = "astra-vector-index-v1";
/// Largest header accepted when loading (guards against a corrupt length).
const MAX_HEADER: u64 = 1 << 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    model: String,
    dimension: usize,
    documents: Vec<Document>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index {path} is corrupt: {problem}; delete it to start over")]
    Corrupt { path: PathBuf, problem: String },
    #[error("index was built with model {have} (dimension {have_dim}) but this task embeds with {want} (dimension {want_dim}); use the same embedding_model or another index name")]
    ModelMismatch {
        have: String,
        have_dim: usize,
        want: String,
        want_dim: usize,
    },
    #[error("got {vectors} vectors for {documents} documents")]
    CountMismatch { documents: usize, vectors: usize },
    #[error("vector {index} has dimension {got}, expected {want}")]
    Dimension {
        index: usize,
        got: usize,
        want: usize,
    },
}

/// In-memory form of one index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub model: String,
    pub dimension: usize,
    docs: Vec<Document>,
    /// Row-major, unit-length rows (a zero vector stays zero).
    vectors: Vec<f32>,
    by_id: HashMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    pub doc: &'a Document,
    pub score: f32,
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl Index {
    pub fn new(model: impl Into<String>, dimension: usize) -> Self {
        Index {
            model: model.into(),
            dimension,
            docs: Vec::new(),
            vectors: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Errors unless this index was built with `model` at `dimension`.
    pub fn check_model(&self, model: &str, dimension: usize) -> Result<(), IndexError> {
        if self.model != model || self.dimension != dimension {
            return Err(IndexError::ModelMismatch {
                have: self.model.clone(),
                have_dim: self.dimension,
                want: model.to_string(),
                want_dim: dimension,
            });
        }
        Ok(())
    }

    /// Inserts or replaces (by id) documents with their vectors. Returns (inserted, replaced).
    pub fn upsert(
        &mut self,
        docs: Vec<Document>,
        vectors: Vec<Vec<f32>>,
    ) -> Result<(usize, usize), IndexError> {
        if docs.len() != vectors.len() {
            return Err(IndexError::CountMismatch {
                documents: docs.len(),
                vectors: vectors.len(),
            });
        }
        for (i, v) in vectors.iter().enumerate() {
            if v.len() != self.dimension {
                return Err(IndexError::Dimension {
                    index: i,
                    got: v.len(),
                    want: self.dimension,
                });
            }
        }
        let (mut inserted, mut replaced) = (0, 0);
        for (doc, mut v) in docs.into_iter().zip(vectors) {
            normalize(&mut v);
            match self.by_id.get(&doc.id) {
                Some(&row) => {
                    self.vectors[row * self.dimension..(row + 1) * self.dimension]
                        .copy_from_slice(&v);
                    self.docs[row] = doc;
                    replaced += 1;
                }
                None => {
                    self.by_id.insert(doc.id.clone(), self.docs.len());
                    self.docs.push(doc);
                    self.vectors.extend_from_slice(&v);
                    inserted += 1;
                }
            }
        }
        Ok((inserted, replaced))
    }

    /// The exact top `k` documents passing `filter`, by cosine with `query`, best first
    /// (ties by id).
    pub fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Vec<Hit<'_>> {
        if k == 0 || query.len() != self.dimension {
            return Vec::new();
        }
        let mut q = query.to_vec();
        normalize(&mut q);
        let mut scored: Vec<(f32, usize)> = (0..self.docs.len())
            .filter(|&row| filter.matches(&self.docs[row].metadata))
            .map(|row| {
                let v = &self.vectors[row * self.dimension..(row + 1) * self.dimension];
                (v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), row)
            })
            .collect();
        let order = |a: &(f32, usize), b: &(f32, usize)| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.docs[a.1].id.cmp(&self.docs[b.1].id))
        };
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, order);
            scored.truncate(k);
        }
        scored.sort_by(order);
        scored
            .into_iter()
            .map(|(score, row)| Hit {
                doc: &self.docs[row],
                score,
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Index, IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |problem: String| IndexError::Corrupt {
            path: path.to_path_buf(),
            problem,
        };
        let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(io)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_HEADER {
            return Err(corrupt(format!("header length {len}")));
        }
        let mut header = vec![0u8; len as usize];
        f.read_exact(&mut header).map_err(io)?;
        let header: Header =
            serde_json::from_slice(&header).map_err(|e| corrupt(format!("header: {e}")))?;
        if header.format != FORMAT {
            return Err(corrupt(format!("unknown format {:?}", header.format)));
        }
        let mut raw = Vec::new();
        f.read_to_end(&mut raw).map_err(io)?;
        let want = header.documents.len() * header.dimension * 4;
        if raw.len() != want {
            return Err(corrupt(format!(
                "{} vector bytes, expected {want}",
                raw.len()
            )));
        }
        let vectors = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let by_id = header
            .documents
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Ok(Index {
            model: header.model,
            dimension: header.dimension,
            docs: header.documents,
            vectors,
            by_id,
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let header = serde_json::to_vec(&Header {
            format: FORMAT.to_string(),
            model: self.model.clone(),
            dimension: self.dimension,
            documents: self.docs.clone(),
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file());
            w.write_all(&(header.len() as u64).to_le_bytes())
                .map_err(io)?;
            w.write_all(&header).map_err(io)?;
            for x in &self.vectors {
                w.write_all(&x.to_le_bytes()).map_err(io)?;
            }
            w.flush().map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// One lock per index file, process-wide: upserts are load-modify-save and must not
/// interleave; queries take it too so they never read a half-replaced file.
pub fn lock_for(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

/// An index name: 1..=64 of `[A-Za-z0-9_.-]`, not starting with a dot.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: &str, meta: Value) -> Document {
        Document {
            id: id.into(),
            text: format!("text of {id}"),
            metadata: meta.as_object().cloned().unwrap_or_default(),
        }
    }

    fn sample() -> Index {
        let mut ix = Index::new("m", 3);
        ix.upsert(
            vec![
                doc("a", json!({"lang": "en"})),
                doc("b", json!({"lang": "de"})),
                doc("c", json!({"lang": "en"})),
                doc("d", json!({})),
            ],
            vec![
                vec![1.0, 0.0, 0.0],
                vec![0.0, 2.0, 0.0],
                vec![1.0, 1.0, 0.0],
                vec![0.0, 0.0, 0.0],
            ],
        )
        .unwrap();
        ix
    }

    #[test]
    fn exact_top_k_by_cosine_with_filters() {
        let ix = sample();
        let ids = |hits: Vec<Hit>| hits.iter().map(|h| h.doc.id.clone()).collect::<Vec<_>>();
        let hits = ix.search(&[2.0, 0.0, 0.0], 2, &Filter::default());
        assert_eq!(ids(hits.clone()), vec!["a", "c"]);
        assert!((hits[0].score - 1.0).abs() < 1e-6);
        assert!((hits[1].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let en = Filter::new([("lang".to_string(), "EN".to_string())]);
        assert_eq!(ids(ix.search(&[0.0, 1.0, 0.0], 10, &en)), vec!["c", "a"]);
        // All scores zero: ties sort by id.
        assert_eq!(
            ids(ix.search(&[0.0, 0.0, 1.0], 4, &Filter::default())),
            vec!["a", "b", "c", "d"]
        );
        assert!(ix.search(&[1.0, 0.0], 3, &Filter::default()).is_empty());
    }

    #[test]
    fn matches_a_full_sort_on_random_data() {
        // Deterministic pseudo-random vectors; the selection must equal sorting everything.
        let mut seed = 42u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let mut ix = Index::new("m", 8);
        let docs: Vec<Document> = (0..200)
            .map(|i| doc(&format!("d{i:03}"), json!({})))
            .collect();
        let vecs: Vec<Vec<f32>> = (0..200).map(|_| (0..8).map(|_| next()).collect()).collect();
        ix.upsert(docs, vecs.clone()).unwrap();
        let q: Vec<f32> = (0..8).map(|_| next()).collect();
        let cos = |v: &Vec<f32>| {
            let dot: f32 = v.iter().zip(&q).map(|(a, b)| a * b).sum();
            dot / (v.iter().map(|x| x * x).sum::<f32>().sqrt()
                * q.iter().map(|x| x * x).sum::<f32>().sqrt())
        };
        let mut all: Vec<(f32, String)> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| (cos(v), format!("d{i:03}")))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let got: Vec<String> = ix
            .search(&q, 10, &Filter::default())
            .iter()
            .map(|h| h.doc.id.clone())
            .collect();
        let want: Vec<String> = all.iter().take(10).map(|x| x.1.clone()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn upsert_replaces_by_id_and_checks_dimensions() {
        let mut ix = sample();
        let (ins, rep) = ix
            .upsert(
                vec![doc("a", json!({"v": 2})), doc("e", json!({}))],
                vec![vec![0.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]],
            )
            .unwrap();
        assert_eq!((ins, rep, ix.len()), (1, 1, 5));
        assert_eq!(
            ix.search(&[0.0, 0.0, 1.0], 1, &Filter::default())[0]
                .doc
                .metadata["v"],
            2
        );
        assert!(matches!(
            ix.upsert(vec![doc("x", json!({}))], vec![vec![1.0]]),
            Err(IndexError::Dimension { .. })
        ));
        assert!(matches!(
            ix.upsert(vec![doc("x", json!({}))], vec![]),
            Err(IndexError::CountMismatch { .. })
        ));
        assert!(matches!(
            ix.check_model("other", 3),
            Err(IndexError::ModelMismatch { .. })
        ));
    }

    #[test]
    fn save_and_load_round_trip_and_corruption_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ix").join(FILE_NAME);
        let ix = sample();
        ix.save(&path).unwrap();
        assert_eq!(Index::load(&path).unwrap(), ix);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, bytes).unwrap();
        let e = Index::load(&path).unwrap_err();
        assert!(
            e.to_string().contains("is corrupt") && e.to_string().contains("delete it"),
            "{e}"
        );
    }

    #[test]
    fn names_are_single_safe_components() {
        assert!(valid_name("docs-v1.2_x"));
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
