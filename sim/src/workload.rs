//! The workload: random small DAGs of builtin-like nodes (`echo`, `sleep`, `fail`, `stream`)
//! from the package every worker has.

use crate::store::{BASE_PKG, BASE_VERSION, NODE_TYPES};
use astra_core::rng::Rng;
use astra_core::scheduler::{NodeSpec, RunSpec};
use serde_json::json;

/// Node ids by position, so building a run formats no id (`format!` was ~1 % of a sweep).
const NODE_IDS: [&str; MAX_NODES] = ["n0", "n1", "n2", "n3", "n4"];
const MAX_NODES: usize = 5;

/// A run of 1..=5 nodes; node i depends on a random subset of earlier nodes.
pub fn random_run(rng: &mut Rng, run_no: u64) -> RunSpec {
    let n = 1 + rng.below(MAX_NODES as u64) as usize;
    let mut nodes = Vec::with_capacity(n);
    for (i, &id) in NODE_IDS.iter().enumerate().take(n) {
        // `fail` is rarer so most runs can succeed.
        let t = match rng.below(10) {
            0 => NODE_TYPES[2],
            1..=3 => NODE_TYPES[1],
            4..=5 => NODE_TYPES[3],
            _ => NODE_TYPES[0],
        };
        let mut node = NodeSpec::new(id, t, BASE_PKG, BASE_VERSION);
        node = match t {
            "sleep" => node.param("ms", json!(50 + rng.below(2_000))),
            "stream" => node.param("chunks", json!(1 + rng.below(4))),
            "echo" => node.param("message", json!(hello(run_no, i))),
            _ => node,
        };
        for &dep in &NODE_IDS[..i] {
            if rng.chance(0.4) {
                node = node.after(dep);
            }
        }
        nodes.push(node);
    }
    RunSpec::new(&numbered("run-", run_no), nodes)
}

/// `{prefix}{n}`, as `format!` writes it, without the formatting machinery (a few hundred
/// instructions a call; a run id or message is built for every submitted run).
pub fn numbered(prefix: &str, n: u64) -> String {
    let mut b = itoa::Buffer::new();
    let digits = b.format(n);
    let mut s = String::with_capacity(prefix.len() + digits.len());
    s.push_str(prefix);
    s.push_str(digits);
    s
}

/// An echo node's message: `hello {run_no}/{i}`.
fn hello(run_no: u64, i: usize) -> String {
    let mut s = numbered("hello ", run_no);
    s.push('/');
    s.push_str(itoa::Buffer::new().format(i));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_texts_are_what_format_writes() {
        for n in [0, 7, 10, 99, 12_345, u64::MAX] {
            assert_eq!(numbered("run-", n), format!("run-{n}"));
            for i in 0..MAX_NODES {
                assert_eq!(hello(n, i), format!("hello {n}/{i}"));
            }
        }
    }

    #[test]
    fn runs_are_valid_dags() {
        let mut rng = Rng::new(1);
        for k in 0..200 {
            let r = random_run(&mut rng, k);
            assert_eq!(astra_core::scheduler::validate_run(&r), Ok(()));
        }
    }
}
