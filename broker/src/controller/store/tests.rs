use std::fs::OpenOptions;
use std::io::Write;

use openraft::storage::RaftLogStorageExt;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, LogId};
use tempfile::TempDir;

use super::*;
use crate::controller::records::{RegisterBroker, Roles};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<RaftNodeId>> {
        let dir = TempDir::new().map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        let (log, machine) =
            open(dir.path()).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        Ok((dir, log, machine))
    }
}

#[test]
fn store_passes_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(term: u64, index: u64, node_id: i32) -> LogEntry {
    let record = MetadataRecord::RegisterBroker(RegisterBroker {
        node_id,
        incarnation_id: uuid::Uuid::from_u128(index as u128),
        host: "h".into(),
        port: 1,
        rack: None,
        roles: Roles {
            broker: true,
            controller: false,
        },
    });
    LogEntry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Proposal {
            records: vec![record],
        }),
    }
}

async fn last_index(log: &mut LogStore) -> Option<u64> {
    log.get_log_state()
        .await
        .unwrap()
        .last_log_id
        .map(|l| l.index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn recovery_truncates_torn_tail_and_keeps_whole_entries() {
    let dir = TempDir::new().unwrap();
    let (mut log, _) = open(dir.path()).unwrap();
    log.blocking_append((1..=5).map(|i| entry(1, i, 1)))
        .await
        .unwrap();
    drop(log);
    let path = dir.path().join(LOG_FILE);
    let length = fs::metadata(&path).unwrap().len();
    // A crash in the middle of writing the last frame.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(length - 3)
        .unwrap();

    let (mut log, _) = open(dir.path()).unwrap();
    assert_eq!(last_index(&mut log).await, Some(4));
    // The log goes on from the last whole entry, and stays readable after another reopen.
    log.blocking_append([entry(2, 5, 2), entry(2, 6, 2)])
        .await
        .unwrap();
    drop(log);
    let (mut log, _) = open(dir.path()).unwrap();
    assert_eq!(last_index(&mut log).await, Some(6));
    let entries = log.try_get_log_entries(1..7).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.log_id.leader_id.term)
            .collect::<Vec<_>>(),
        vec![1, 1, 1, 1, 2, 2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn recovery_drops_everything_from_a_flipped_byte_on() {
    let dir = TempDir::new().unwrap();
    let (mut log, _) = open(dir.path()).unwrap();
    log.blocking_append((1..=5).map(|i| entry(1, i, 1)))
        .await
        .unwrap();
    let third = log.lock().entries[&3].0;
    drop(log);
    let path = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes[third as usize + 20] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let (mut log, _) = open(dir.path()).unwrap();
    assert_eq!(last_index(&mut log).await, Some(2));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        third,
        "the damaged tail is cut off on disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn garbage_appended_to_the_log_is_cut_and_the_vote_survives() {
    let dir = TempDir::new().unwrap();
    let (mut log, _) = open(dir.path()).unwrap();
    log.save_vote(&Vote::new(3, 2)).await.unwrap();
    log.blocking_append([entry(3, 1, 1)]).await.unwrap();
    drop(log);
    let path = dir.path().join(LOG_FILE);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0xff; 13]).unwrap();
    drop(file);

    let (mut log, _) = open(dir.path()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    assert_eq!(last_index(&mut log).await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn snapshot_of_the_image_survives_a_restart() {
    let dir = TempDir::new().unwrap();
    let (_, mut machine) = open(dir.path()).unwrap();
    let mut images = machine.subscribe();
    let outcomes = machine
        .apply([entry(1, 1, 7), entry(1, 2, -1)])
        .await
        .unwrap();
    assert_eq!(outcomes[0], Applied::Applied);
    assert!(
        matches!(outcomes[1], Applied::Rejected { index: 0, .. }),
        "{:?}",
        outcomes[1]
    );
    assert!(images.has_changed().unwrap());
    assert!(images.borrow_and_update().broker(7).is_some());
    let mut builder = machine.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(2));
    drop(machine);

    let (_, mut machine) = open(dir.path()).unwrap();
    assert_eq!(
        machine.applied_state().await.unwrap().0.map(|l| l.index),
        Some(2)
    );
    assert!(machine.subscribe().borrow().broker(7).is_some());
    assert!(machine.get_current_snapshot().await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_damaged_snapshot_refuses_to_open() {
    let dir = TempDir::new().unwrap();
    let (_, mut machine) = open(dir.path()).unwrap();
    machine.apply([entry(1, 1, 7)]).await.unwrap();
    machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    drop(machine);
    let path = dir.path().join(SNAPSHOT_FILE);
    let mut snapshot: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    snapshot["crc"] = serde_json::json!(1);
    fs::write(&path, serde_json::to_vec(&snapshot).unwrap()).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn purged_entries_stay_purged_and_the_rest_readable_after_a_restart() {
    let dir = TempDir::new().unwrap();
    let (mut log, _) = open(dir.path()).unwrap();
    log.blocking_append((1..=10).map(|i| entry(1, i, 1)))
        .await
        .unwrap();
    let before = fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
    log.purge(LogId::new(CommittedLeaderId::new(1, 1), 5))
        .await
        .unwrap();
    assert!(
        fs::metadata(dir.path().join(LOG_FILE)).unwrap().len() < before,
        "the purged frames left the file"
    );
    log.blocking_append([entry(1, 11, 1)]).await.unwrap();
    drop(log);

    let (mut log, _) = open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(5));
    assert_eq!(state.last_log_id.map(|l| l.index), Some(11));
    let indexes: Vec<u64> = log
        .try_get_log_entries(0..20)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, (6..=11).collect::<Vec<_>>());
}
