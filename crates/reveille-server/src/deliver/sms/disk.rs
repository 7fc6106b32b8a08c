//! Texts reach the disk together: each text's file must be on the disk before the timeline says
//! it was handed over, and a storm's hundred `fsync`s, one per file, queue behind each other on
//! one disk, each waiting for a commit of the file system's journal. Files written at once are made durable by
//! one `syncfs` of their file system instead: the first writer to find no sync running starts
//! one for everything written so far, and the others wait for a sync that began after their
//! write (the same group commit the database's writer does).

use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Default)]
struct Group {
    /// Writes asked to be made durable, counted; the last one a finished sync covered.
    asked: u64,
    covered: u64,
    running: bool,
    /// How the last finished sync went.
    failed: Option<String>,
}

static GROUP: Mutex<Group> =
    Mutex::new(Group { asked: 0, covered: 0, running: false, failed: None });
static DONE: Condvar = Condvar::new();

/// Makes everything written under `dir` so far durable; blocks (call it off the runtime).
pub fn sync(dir: &Path) -> Result<(), String> {
    let mut group = GROUP.lock().unwrap_or_else(PoisonError::into_inner);
    group.asked += 1;
    let ticket = group.asked;
    loop {
        if group.covered >= ticket {
            // A later sync than ours covers our write too: its outcome is ours.
            return group.failed.clone().map_or(Ok(()), Err);
        }
        if group.running {
            group = DONE.wait(group).unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        group.running = true;
        let upto = group.asked;
        drop(group);
        let synced = std::fs::File::open(dir)
            .and_then(|d| rustix::fs::syncfs(&d).map_err(std::io::Error::from))
            .map_err(|e| format!("cannot make {} durable: {e}", dir.display()));
        group = GROUP.lock().unwrap_or_else(PoisonError::into_inner);
        group.running = false;
        group.covered = upto;
        group.failed = synced.err();
        DONE.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writers_at_once_share_syncs_and_each_is_covered() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..32)
            .map(|i| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || {
                    std::fs::write(path.join(format!("{i}.txt")), b"text").unwrap();
                    super::sync(&path)
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Ok(()));
        }
        let group = super::GROUP.lock().unwrap();
        assert!(group.covered >= 32, "every write covered by a sync");
    }
}
