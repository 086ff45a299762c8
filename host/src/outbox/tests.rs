//! Tests of the outbox log: order, acks, roll-over, damage, upgrade from the old format.

use super::*;
use astra_core::v1::FrameType;
use astra_core::work::TaskKey;
use proptest::prelude::*;

fn entry(id: &str, frame: &str) -> OutboxEntry {
    OutboxEntry {
        id: id.to_string(),
        kind: FrameType::Result,
        task: Some(TaskKey {
            run_id: "r1".into(),
            task_id: format!("t-{id}"),
        }),
        frame: frame.to_string(),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn segments(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|n| segment::parse(n).is_some())
        .collect()
}

fn reopen(dir: &Path) -> Vec<OutboxEntry> {
    Outbox::open(dir).unwrap().1
}

#[test]
fn persist_reopen_keeps_write_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let written = vec![entry("b", "{\"x\":1}"), entry("a", "f2"), entry("c", "f3")];
    {
        let (mut ob, restored) = Outbox::open(&dir).unwrap();
        assert!(restored.is_empty() && ob.is_empty());
        for e in &written {
            ob.persist(e).unwrap();
        }
        assert_eq!(ob.len(), 3);
    }
    assert_eq!(reopen(&dir), written);
    assert_eq!(segments(&dir).len(), 1);
}

#[test]
fn forget_is_durable_and_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("a", "1")).unwrap();
        ob.persist(&entry("b", "2")).unwrap();
        ob.forget("a").unwrap();
        ob.forget("a").unwrap();
        ob.forget("never-seen").unwrap();
        assert_eq!(ob.len(), 1);
        assert!(!ob.contains("a") && ob.contains("b"));
    }
    assert_eq!(reopen(tmp.path()), vec![entry("b", "2")]);
}

#[test]
fn persisting_same_id_replaces_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("a", "old")).unwrap();
        ob.persist(&entry("b", "b")).unwrap();
        ob.persist(&entry("a", "new")).unwrap();
        assert_eq!(ob.len(), 2);
    }
    assert_eq!(reopen(tmp.path()), vec![entry("a", "new"), entry("b", "b")]);
}

#[test]
fn appends_continue_after_reopen_in_the_same_segment() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("a", "1")).unwrap();
        ob.persist(&entry("b", "2")).unwrap();
        ob.forget("a").unwrap();
    }
    let before = segments(tmp.path());
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("c", "3")).unwrap();
    }
    assert_eq!(reopen(tmp.path()), vec![entry("b", "2"), entry("c", "3")]);
    assert_eq!(
        segments(tmp.path()),
        before,
        "a clean log is reused, not rewritten"
    );
}

#[test]
fn full_segments_roll_over_and_old_ones_are_deleted() {
    for mode in [OutboxSync::Always, OutboxSync::Batch] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open_sized(tmp.path(), mode, 600).unwrap();
        let mut model = Vec::new();
        for i in 0..200 {
            let e = entry(&format!("e{i}"), &"x".repeat(i % 50));
            ob.persist(&e).unwrap();
            model.push(e);
            if i % 3 != 0 {
                let gone = model.remove(0);
                ob.forget(&gone.id).unwrap();
            }
        }
        assert!(ob.seg.no > 10, "{mode:?}: rolled over {} times", ob.seg.no);
        ob.flush().unwrap();
        assert_eq!(segments(tmp.path()).len(), 1, "{mode:?}");
        drop(ob);
        assert_eq!(reopen(tmp.path()), model, "{mode:?}");
    }
}

#[test]
fn a_huge_entry_gets_a_segment_of_its_own_size() {
    let tmp = tempfile::tempdir().unwrap();
    let big = entry("big", &"y".repeat(3000));
    {
        let (mut ob, _) = Outbox::open_sized(tmp.path(), OutboxSync::Always, 600).unwrap();
        ob.persist(&entry("a", "a")).unwrap();
        ob.persist(&big).unwrap();
        ob.persist(&entry("c", "c")).unwrap();
    }
    assert_eq!(
        reopen(tmp.path()),
        vec![entry("a", "a"), big, entry("c", "c")]
    );
}

#[test]
fn a_torn_tail_is_cut_and_the_log_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let cut;
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("a", "a")).unwrap();
        ob.persist(&entry("b", "b")).unwrap();
        cut = ob.seg.pos + 5;
        ob.persist(&entry("c", "c")).unwrap();
    }
    let seg = tmp.path().join(&segments(tmp.path())[0]);
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut)
        .unwrap();
    {
        let (mut ob, restored) = Outbox::open(tmp.path()).unwrap();
        assert_eq!(restored, vec![entry("a", "a"), entry("b", "b")]);
        ob.persist(&entry("d", "d")).unwrap();
    }
    assert_eq!(
        reopen(tmp.path()),
        vec![entry("a", "a"), entry("b", "b"), entry("d", "d")]
    );
    assert_eq!(
        segments(tmp.path()).len(),
        1,
        "the damaged segment was replaced"
    );
}

#[test]
fn a_damaged_record_loses_only_what_follows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let at;
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("a", "a")).unwrap();
        at = ob.seg.pos;
        ob.persist(&entry("b", "b")).unwrap();
        ob.persist(&entry("c", "c")).unwrap();
    }
    let seg = tmp.path().join(&segments(tmp.path())[0]);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[at as usize + 12] ^= 0x20;
    fs::write(&seg, bytes).unwrap();
    assert_eq!(reopen(tmp.path()), vec![entry("a", "a")]);
    // The rewrite holds exactly what was replayed, on every later open too.
    assert_eq!(reopen(tmp.path()), vec![entry("a", "a")]);
}

#[test]
fn a_segment_with_a_bad_header_is_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("a", "a")).unwrap();
    }
    let stranger = tmp.path().join(segment::name(7));
    fs::write(&stranger, b"\xff\xfe not a segment").unwrap();
    let (ob, restored) = Outbox::open(tmp.path()).unwrap();
    assert_eq!(restored, vec![entry("a", "a")]);
    assert!(!stranger.exists());
    assert!(tmp
        .path()
        .join(format!("{}{}", segment::name(7), legacy::CORRUPT_SUFFIX))
        .exists());
    drop(ob);
    assert_eq!(reopen(tmp.path()), vec![entry("a", "a")]);
}

#[test]
fn a_checkpoint_supersedes_a_segment_whose_deletion_was_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut ob, _) = Outbox::open_sized(tmp.path(), OutboxSync::Always, 400).unwrap();
    ob.persist(&entry("a", "a")).unwrap();
    ob.persist(&entry("b", "b")).unwrap();
    ob.forget("a").unwrap();
    let first = ob.seg.path.clone();
    let saved = fs::read(&first).unwrap();
    while ob.seg.path == first {
        ob.persist(&entry("c", "c")).unwrap();
    }
    ob.persist(&entry("d", "d")).unwrap();
    drop(ob);
    // As if the crash came before the old segment's deletion reached the disk.
    fs::write(&first, saved).unwrap();
    assert_eq!(
        reopen(tmp.path()),
        vec![entry("b", "b"), entry("c", "c"), entry("d", "d")]
    );
    assert_eq!(segments(tmp.path()).len(), 1);
}

#[test]
fn the_old_format_is_replayed_then_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = [entry("o2", "x"), entry("o1", "y"), entry("o3", "z")];
    let mut paths = Vec::new();
    for (seq, e) in old.iter().enumerate() {
        paths.push(legacy::write_old(dir, seq as u64, e));
    }
    // A write that crashed before its rename, and a damaged entry.
    let stray = dir.join(format!("{}x.entry", legacy::TMP_PREFIX));
    fs::write(&stray, b"astra-outbox v1 00\n{").unwrap();
    let bad = legacy::write_old(dir, 9, &entry("bad", "b"));
    let mut bytes = fs::read(&bad).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    fs::write(&bad, bytes).unwrap();

    {
        let (mut ob, restored) = Outbox::open_with(dir, OutboxSync::Batch).unwrap();
        assert_eq!(restored, old.to_vec());
        for p in paths.iter().chain([&stray, &bad]) {
            assert!(!p.exists(), "{} left behind", p.display());
        }
        ob.forget("o1").unwrap();
        ob.persist(&entry("n", "n")).unwrap();
    }
    assert_eq!(
        reopen(dir),
        vec![entry("o2", "x"), entry("o3", "z"), entry("n", "n")]
    );
    let mut quarantined = bad.into_os_string();
    quarantined.push(legacy::CORRUPT_SUFFIX);
    assert!(Path::new(&quarantined).exists());
}

#[test]
fn old_files_beside_a_log_come_after_its_entries() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
        ob.persist(&entry("log", "l")).unwrap();
    }
    legacy::write_old(tmp.path(), 0, &entry("old", "o"));
    assert_eq!(
        reopen(tmp.path()),
        vec![entry("log", "l"), entry("old", "o")]
    );
}

#[test]
fn hostile_ids_stay_inside_the_dir() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/outbox");
    let ids = [
        "../../etc/passwd".to_string(),
        "/abs/path".to_string(),
        "a\0b".to_string(),
        "x".repeat(100_000),
        "résumé-✓-\u{202e}-日本".to_string(),
        ".tmp-looks-temporary".to_string(),
        String::new(),
    ];
    let written: Vec<_> = ids.iter().map(|id| entry(id, "f")).collect();
    {
        let (mut ob, _) = Outbox::open(&dir).unwrap();
        for e in &written {
            ob.persist(e).unwrap();
        }
        ob.forget(&ids[0]).unwrap();
        ob.persist(&written[0]).unwrap();
    }
    let mut expected = written[1..].to_vec();
    expected.push(written[0].clone());
    assert_eq!(reopen(&dir), expected);
    assert!(
        files(&dir)
            .iter()
            .all(|n| segment::parse(n).is_some() || n == LOCK_FILE),
        "{:?}",
        files(&dir)
    );
    assert_eq!(files(root.path()), vec!["data".to_string()]);
    assert_eq!(files(&root.path().join("data")), vec!["outbox".to_string()]);
}

#[test]
fn second_open_of_same_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_first, _) = Outbox::open(tmp.path()).unwrap();
    let err = Outbox::open(tmp.path()).unwrap_err();
    assert!(matches!(err, OutboxError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("data_dir"));
}

#[test]
fn unrelated_files_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("README"), b"hi").unwrap();
    let (ob, restored) = Outbox::open(tmp.path()).unwrap();
    assert!(restored.is_empty() && ob.is_empty());
    assert!(tmp.path().join("README").exists());
}

#[test]
fn batch_entry_is_in_the_log_before_it_is_synced() {
    // What kill -9 leaves behind is the OS's view of the file: the record must be complete
    // as soon as `persist` returns, sync pass or not.
    let tmp = tempfile::tempdir().unwrap();
    let (mut ob, _) = Outbox::open_with(tmp.path(), OutboxSync::Batch).unwrap();
    for id in ["a", "b", "c"] {
        ob.persist(&entry(id, id)).unwrap();
        let bytes = fs::read(&ob.seg.path).unwrap();
        let scan = record::scan(&bytes);
        assert!(scan.cut.is_none());
        assert_eq!(
            scan.records.last().map(|l| &l.record),
            Some(&record::Record::Put(entry(id, id)))
        );
    }
    ob.flush().unwrap();
    assert!(ob.commit.passes() >= 1);
    ob.forget("b").unwrap();
    drop(ob);
    assert_eq!(reopen(tmp.path()), vec![entry("a", "a"), entry("c", "c")]);
}

#[test]
fn batch_mode_groups_many_entries_per_pass_and_flush_waits_for_all() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut ob, _) = Outbox::open_with(tmp.path(), OutboxSync::Batch).unwrap();
    let written: Vec<_> = (0..200).map(|i| entry(&format!("e{i}"), "f")).collect();
    for e in &written {
        ob.persist(e).unwrap();
    }
    ob.flush().unwrap();
    let passes = ob.commit.passes();
    assert!((1..=200).contains(&passes), "{passes}");
    ob.flush().unwrap();
    assert_eq!(ob.commit.passes(), passes, "nothing new to sync");
    drop(ob);
    assert_eq!(reopen(tmp.path()), written);
}

#[test]
fn always_mode_never_starts_the_commit_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut ob, _) = Outbox::open_with(tmp.path(), OutboxSync::Always).unwrap();
    ob.persist(&entry("a", "a")).unwrap();
    ob.flush().unwrap();
    assert_eq!(ob.commit.passes(), 0);
    assert_eq!(ob.sync_mode(), OutboxSync::Always);
}

#[test]
fn failed_group_commit_stops_the_next_persist() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut ob, _) = Outbox::open_with(&tmp.path().join("ob"), OutboxSync::Batch).unwrap();
    // A committer whose directory cannot be opened: the new segment's directory fsync fails.
    ob.commit = GroupCommit::new(&tmp.path().join("missing"));
    ob.persist(&entry("a", "a")).unwrap();
    let err = ob.flush().unwrap_err();
    assert!(matches!(err, OutboxError::GroupCommit { .. }), "{err}");
    let err = ob.persist(&entry("b", "b")).unwrap_err();
    assert!(err.to_string().contains("durable"), "{err}");
    assert!(!ob.contains("b"));
}

#[derive(Debug, Clone)]
enum Op {
    Persist(u8, u8),
    Forget(u8),
    Reopen,
    /// Drops the outbox, then cuts the segment in use at a fraction of what was appended
    /// since it was created, optionally leaving garbage after the cut (a torn write).
    Crash(f64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, any::<u8>()).prop_map(|(id, v)| Op::Persist(id, v)),
        3 => (0u8..7).prop_map(Op::Forget),
        1 => Just(Op::Reopen),
        1 => (0.0f64..=1.0, any::<bool>()).prop_map(|(f, g)| Op::Crash(f, g)),
    ]
}

fn apply(model: &mut Vec<OutboxEntry>, op: &Op) {
    match op {
        Op::Persist(id, v) => {
            let e = entry(&format!("id{id}"), &format!("frame{v}"));
            match model.iter_mut().find(|m| m.id == e.id) {
                Some(slot) => *slot = e,
                None => model.push(e),
            }
        }
        Op::Forget(id) => {
            let id = format!("id{id}");
            model.retain(|m| m.id != id);
        }
        Op::Reopen | Op::Crash(..) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random appends, acks, reopens and crashes that cut the log anywhere, against a model:
    /// a reopen yields exactly the model's unacked entries in order, and after a cut exactly
    /// those of the last operation whose records were whole before the cut.
    #[test]
    fn replay_matches_the_model(
        ops in proptest::collection::vec(op(), 0..60),
        batch in any::<bool>(),
    ) {
        let mode = if batch { OutboxSync::Batch } else { OutboxSync::Always };
        let tmp = tempfile::tempdir().unwrap();
        let mut model: Vec<OutboxEntry> = Vec::new();
        // Small segments, so roll-overs happen often.
        let (mut ob, _) = Outbox::open_sized(tmp.path(), mode, 700).unwrap();
        // (segment number, end of the appended records, model then) since the segment began.
        let mut history = vec![(ob.seg.no, ob.seg.pos, model.clone())];
        for op in ops {
            match op {
                Op::Persist(id, v) => ob.persist(&entry(&format!("id{id}"), &format!("frame{v}"))).unwrap(),
                Op::Forget(id) => ob.forget(&format!("id{id}")).unwrap(),
                Op::Reopen => {
                    drop(ob);
                    let (o, restored) = Outbox::open_sized(tmp.path(), mode, 700).unwrap();
                    prop_assert_eq!(&restored, &model);
                    ob = o;
                }
                Op::Crash(frac, garbage) => {
                    let path = ob.seg.path.clone();
                    drop(ob);
                    let (lo, hi) = (history[0].1, history.last().unwrap().1);
                    let cut = lo + ((hi - lo) as f64 * frac) as u64;
                    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                    f.set_len(cut).unwrap();
                    if garbage {
                        use std::os::unix::fs::FileExt;
                        f.write_all_at(&[0xA5; 13], cut).unwrap();
                    }
                    drop(f);
                    model = history.iter().rev().find(|h| h.1 <= cut).unwrap().2.clone();
                    let (o, restored) = Outbox::open_sized(tmp.path(), mode, 700).unwrap();
                    prop_assert_eq!(&restored, &model);
                    ob = o;
                }
            }
            apply(&mut model, &op);
            prop_assert_eq!(ob.len(), model.len());
            if ob.seg.no != history[0].0 || matches!(op, Op::Reopen | Op::Crash(..)) {
                history.clear();
            }
            history.push((ob.seg.no, ob.seg.pos, model.clone()));
        }
        drop(ob);
        prop_assert_eq!(reopen(tmp.path()), model);
    }
}

#[test]
fn batch_mode_on_a_memory_filesystem_skips_the_group_commit() {
    let shm = Path::new("/dev/shm");
    let Ok(tmp) = tempfile::tempdir_in(shm) else {
        return; // no /dev/shm here: nothing to check
    };
    let (mut ob, _) = Outbox::open_sized(tmp.path(), OutboxSync::Batch, 600).unwrap();
    assert!(ob.volatile, "/dev/shm is tmpfs on Linux");
    for i in 0..40 {
        ob.persist(&entry(&format!("e{i}"), "f")).unwrap();
    }
    ob.flush().unwrap();
    assert_eq!(ob.commit.passes(), 0);
    assert_eq!(
        segments(tmp.path()).len(),
        1,
        "rolled-over segments are still deleted"
    );
    drop(ob);
    assert_eq!(reopen(tmp.path()).len(), 40);
    let disk = tempfile::tempdir().unwrap();
    let (ob, _) = Outbox::open(disk.path()).unwrap();
    assert_eq!(ob.volatile, in_memory(disk.path()));
}
