//! What a harness submits: a run as a DAG of package nodes (the REST `POST /runs` workflow
//! reduced to what reaches the wire), and the checks that refuse a run the machine could not
//! dispatch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn default_tenant() -> String {
    "default".into()
}

/// One workflow node. Its id is also the dispatch `task_id` and `corr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: String,
    pub node_type: String,
    pub package_name: String,
    pub package_version: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// Ids of nodes that must finish first; each entry counts as one edge, as in the real
    /// scheduler, so a repeated id is a repeated edge.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl NodeSpec {
    pub fn new(id: &str, node_type: &str, package_name: &str, package_version: &str) -> Self {
        NodeSpec {
            id: id.into(),
            node_type: node_type.into(),
            package_name: package_name.into(),
            package_version: package_version.into(),
            parameters: Map::new(),
            depends_on: Vec::new(),
        }
    }
    pub fn after(mut self, dep: &str) -> Self {
        self.depends_on.push(dep.into());
        self
    }
    pub fn param(mut self, key: &str, value: Value) -> Self {
        self.parameters.insert(key.into(), value);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub run_id: String,
    /// Runs started over REST always have tenant `default` (spec §1).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    pub nodes: Vec<NodeSpec>,
}

impl RunSpec {
    pub fn new(run_id: &str, nodes: Vec<NodeSpec>) -> Self {
        RunSpec {
            run_id: run_id.into(),
            tenant: default_tenant(),
            nodes,
        }
    }
}

/// Why a run was refused at submission (the REST layer's 400/422, plus what it would accept
/// but never finish, such as a cycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum SubmitError {
    #[error("run id is empty")]
    EmptyRunId,
    #[error("run `{0}` already exists")]
    DuplicateRun(String),
    #[error("tenant is empty")]
    EmptyTenant,
    #[error("a run needs at least one node")]
    NoNodes,
    #[error("node `{node}` has an empty `{field}`")]
    EmptyField { node: String, field: &'static str },
    #[error("node id `{0}` is used twice")]
    DuplicateNode(String),
    #[error("node `{node}` depends on unknown node `{dep}`")]
    UnknownDependency { node: String, dep: String },
    #[error("the dependencies form a cycle through node `{0}`")]
    Cycle(String),
}

/// Checks a run before it is accepted. Dispatch payload fields must be non-empty because the
/// worker's model rejects empty ones. Errors are reported for the first offending node in
/// spec order (an empty field before a duplicate id of the same node), then unknown
/// dependencies, then cycles.
pub fn validate(spec: &RunSpec) -> Result<(), SubmitError> {
    if spec.run_id.is_empty() {
        return Err(SubmitError::EmptyRunId);
    }
    if spec.tenant.is_empty() {
        return Err(SubmitError::EmptyTenant);
    }
    if spec.nodes.is_empty() {
        return Err(SubmitError::NoNodes);
    }
    let ids = Ids::new(spec);
    // The first node (in spec order) whose id an earlier node already has.
    let first_dup = ids
        .0
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].1)
        .min();
    for (i, n) in spec.nodes.iter().enumerate() {
        for (field, v) in [
            ("id", &n.id),
            ("node_type", &n.node_type),
            ("package_name", &n.package_name),
            ("package_version", &n.package_version),
        ] {
            if v.is_empty() {
                return Err(SubmitError::EmptyField {
                    node: n.id.clone(),
                    field,
                });
            }
        }
        if first_dup == Some(i) {
            return Err(SubmitError::DuplicateNode(n.id.clone()));
        }
    }
    for n in &spec.nodes {
        if let Some(dep) = n.depends_on.iter().find(|d| ids.index(d).is_none()) {
            return Err(SubmitError::UnknownDependency {
                node: n.id.clone(),
                dep: dep.clone(),
            });
        }
    }
    find_cycle(spec, &ids).map_or(Ok(()), |n| Err(SubmitError::Cycle(n)))
}

/// Node ids with their spec positions, sorted by id then position, for lookups without a
/// tree of string keys (runs are small; this is one allocation).
struct Ids<'a>(Vec<(&'a str, usize)>);

impl<'a> Ids<'a> {
    fn new(spec: &'a RunSpec) -> Self {
        let mut v: Vec<(&str, usize)> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        v.sort_unstable();
        Ids(v)
    }

    /// The position of the first node with this id.
    fn index(&self, id: &str) -> Option<usize> {
        let p = self.0.partition_point(|(k, _)| *k < id);
        self.0.get(p).filter(|(k, _)| *k == id).map(|(_, i)| *i)
    }
}

/// Whatever cannot be ordered lies on or behind a cycle; names the first such node in spec
/// order. A node can be ordered once every dependency can (the least fixed point Kahn's
/// algorithm reaches, in whatever order nodes are taken), so passes over the nodes repeat
/// until one orders nothing new.
fn find_cycle(spec: &RunSpec, ids: &Ids<'_>) -> Option<String> {
    if spec.nodes.iter().all(|n| n.depends_on.is_empty()) {
        return None;
    }
    // Every dependency as a node position, node after node (`ends[i]` closes node i's);
    // `None` (unknown) can never be ordered.
    let mut deps: Vec<Option<usize>> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(spec.nodes.len());
    for n in &spec.nodes {
        deps.extend(n.depends_on.iter().map(|d| ids.index(d)));
        ends.push(deps.len());
    }
    let mut ordered = vec![false; spec.nodes.len()];
    let mut left = spec.nodes.len();
    while left > 0 {
        let before = left;
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            if !ordered[i]
                && deps[start..end]
                    .iter()
                    .all(|j| j.is_some_and(|j| ordered[j]))
            {
                ordered[i] = true;
                left -= 1;
            }
            start = end;
        }
        if left == before {
            break;
        }
    }
    spec.nodes
        .iter()
        .zip(&ordered)
        .find(|(_, done)| !**done)
        .map(|(n, _)| n.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn n(id: &str) -> NodeSpec {
        NodeSpec::new(id, "t", "p", "1")
    }

    /// The tree-based check `validate` replaced, kept as its oracle.
    fn old_validate(spec: &RunSpec) -> Result<(), SubmitError> {
        if spec.run_id.is_empty() {
            return Err(SubmitError::EmptyRunId);
        }
        if spec.tenant.is_empty() {
            return Err(SubmitError::EmptyTenant);
        }
        if spec.nodes.is_empty() {
            return Err(SubmitError::NoNodes);
        }
        let mut ids = BTreeSet::new();
        for n in &spec.nodes {
            for (field, v) in [
                ("id", &n.id),
                ("node_type", &n.node_type),
                ("package_name", &n.package_name),
                ("package_version", &n.package_version),
            ] {
                if v.is_empty() {
                    return Err(SubmitError::EmptyField {
                        node: n.id.clone(),
                        field,
                    });
                }
            }
            if !ids.insert(n.id.as_str()) {
                return Err(SubmitError::DuplicateNode(n.id.clone()));
            }
        }
        for n in &spec.nodes {
            if let Some(dep) = n.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
                return Err(SubmitError::UnknownDependency {
                    node: n.id.clone(),
                    dep: dep.clone(),
                });
            }
        }
        old_find_cycle(spec).map_or(Ok(()), |n| Err(SubmitError::Cycle(n)))
    }

    /// Kahn's algorithm: whatever cannot be ordered lies on or behind a cycle; names the first such
    /// node in spec order.
    fn old_find_cycle(spec: &RunSpec) -> Option<String> {
        let mut remaining: BTreeMap<&str, BTreeSet<&str>> = spec
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id.as_str(),
                    n.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        loop {
            let done: Vec<&str> = remaining
                .iter()
                .filter(|(_, d)| d.is_empty())
                .map(|(k, _)| *k)
                .collect();
            if done.is_empty() {
                break;
            }
            for k in done {
                remaining.remove(k);
                for deps in remaining.values_mut() {
                    deps.remove(k);
                }
            }
        }
        spec.nodes
            .iter()
            .find(|n| remaining.contains_key(n.id.as_str()))
            .map(|n| n.id.clone())
    }

    /// Runs of up to 7 nodes with ids, fields and dependencies drawn from tiny alphabets, so
    /// duplicates, empty fields, unknown dependencies, self-loops and cycles are common.
    fn arb_spec() -> impl Strategy<Value = RunSpec> {
        let node = (
            "[abcd]{0,1}",
            "[t]{0,1}",
            prop::collection::vec("[abcde]", 0..4),
        )
            .prop_map(|(id, ty, deps)| {
                let mut n = NodeSpec::new(&id, &ty, "p", "1");
                n.depends_on = deps;
                n
            });
        prop::collection::vec(node, 0..7).prop_map(|nodes| RunSpec::new("r", nodes))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn validate_agrees_with_the_tree_based_oracle(spec in arb_spec()) {
            prop_assert_eq!(validate(&spec), old_validate(&spec), "{:?}", spec);
        }
    }

    #[test]
    fn long_chains_in_reverse_order_are_ordered() {
        // Each node depends on the next one in spec order: one node is ordered per pass.
        let k = 300;
        let nodes = (0..k)
            .map(|i| {
                let node = n(&format!("n{i}"));
                if i + 1 < k {
                    node.after(&format!("n{}", i + 1))
                } else {
                    node
                }
            })
            .collect();
        let spec = RunSpec::new("r", nodes);
        assert_eq!(validate(&spec), Ok(()));
        let mut cyc = spec.clone();
        cyc.nodes[k - 1].depends_on.push("n0".into());
        assert_eq!(validate(&cyc), Err(SubmitError::Cycle("n0".into())));
        assert_eq!(validate(&cyc), old_validate(&cyc));
    }

    #[test]
    fn accepts_a_dag_and_refuses_bad_runs() {
        let ok = RunSpec::new(
            "r",
            vec![n("a"), n("b").after("a"), n("c").after("a").after("b")],
        );
        assert_eq!(validate(&ok), Ok(()));
        let cyc = RunSpec::new(
            "r",
            vec![
                n("a").after("c"),
                n("b").after("a"),
                n("c").after("b"),
                n("d"),
            ],
        );
        assert_eq!(validate(&cyc), Err(SubmitError::Cycle("a".into())));
        let selfdep = RunSpec::new("r", vec![n("a").after("a")]);
        assert_eq!(validate(&selfdep), Err(SubmitError::Cycle("a".into())));
        let unknown = RunSpec::new("r", vec![n("a").after("zz")]);
        assert!(matches!(
            validate(&unknown),
            Err(SubmitError::UnknownDependency { .. })
        ));
        assert_eq!(
            validate(&RunSpec::new("r", vec![n("a"), n("a")])),
            Err(SubmitError::DuplicateNode("a".into()))
        );
        assert_eq!(
            validate(&RunSpec::new("r", vec![])),
            Err(SubmitError::NoNodes)
        );
        assert_eq!(
            validate(&RunSpec::new("", vec![n("a")])),
            Err(SubmitError::EmptyRunId)
        );
        let empty_pkg = RunSpec::new("r", vec![NodeSpec::new("a", "t", "", "1")]);
        assert_eq!(
            validate(&empty_pkg),
            Err(SubmitError::EmptyField {
                node: "a".into(),
                field: "package_name"
            })
        );
    }

    #[test]
    fn tenant_defaults_when_deserialised() {
        let spec: RunSpec = serde_json::from_str(
            r#"{"run_id":"r","nodes":[{"id":"a","node_type":"t","package_name":"p","package_version":"1"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.tenant, "default");
        assert!(spec.nodes[0].parameters.is_empty());
    }
}
