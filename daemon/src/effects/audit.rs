//! The one thread that writes the audit log. Records arrive over a channel; whatever has
//! queued up is written with one write(2) and, if any of it must be durable, one fdatasync
//! (group commit), so concurrent commands do not each pay for their own disk flush while the
//! chain stays in one total order.

use elevate_audit::{AuditLog, Entry};
use serde_json::{Map, Value};
use std::sync::mpsc;
use tokio::sync::oneshot;

struct Job {
    entry: Entry,
    durable: bool,
    done: Option<oneshot::Sender<Result<u64, String>>>,
}

type Waiter = oneshot::Receiver<Result<u64, String>>;

async fn wait(w: Waiter) -> Result<u64, String> {
    w.await.map_err(|_| "audit writer stopped".to_string())?
}

#[derive(Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<Job>,
}

const MAX_BATCH: usize = 512;

impl AuditHandle {
    /// Start the writer thread over an opened log.
    pub fn start(mut log: AuditLog) -> AuditHandle {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => batch.push(j),
                            Err(_) => break,
                        }
                    }
                    let durable = batch.iter().any(|j| j.durable);
                    // logrotate moved the file away: continue the chain in the new one.
                    if let Err(e) = log.reopen_if_rotated() {
                        tracing::error!("audit log reopen failed: {e}");
                    }
                    let entries: Vec<Entry> = batch.iter().map(|j| j.entry.clone()).collect();
                    let result = log.append(&entries, durable);
                    if let Err(e) = &result {
                        tracing::error!("audit log write failed: {e}; commands will be refused until it works again");
                    }
                    if let Some(e) = log.take_anchor_error() {
                        tracing::warn!("audit anchor not updated: {e}");
                    }
                    for (i, job) in batch.into_iter().enumerate() {
                        if let Some(done) = job.done {
                            let r = match &result {
                                Ok(seqs) => seqs.get(i).map(|(seq, _)| *seq).ok_or_else(|| "audit writer lost a record".to_string()),
                                Err(e) => Err(e.to_string()),
                            };
                            let _ = done.send(r);
                        }
                    }
                }
            })
            .expect("spawning the audit writer thread at startup");
        AuditHandle { tx }
    }

    fn enqueue(
        &self,
        event: String,
        fields: Map<String, Value>,
        durable: bool,
    ) -> Result<Waiter, String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                entry: Entry { event, fields },
                durable,
                done: Some(done),
            })
            .map_err(|_| "audit writer is not running".to_string())?;
        Ok(wait)
    }

    /// Write a record and wait until it is on disk (fdatasync'd). Returns its sequence number.
    /// An error means the record is not known to be durable: the caller must not proceed.
    pub async fn write_durable(
        &self,
        event: &str,
        fields: Map<String, Value>,
    ) -> Result<u64, String> {
        wait(self.enqueue(event.to_string(), fields, true)?).await
    }

    /// Write several records and wait until all are on disk. They are queued together, so the
    /// writer thread commits them with one fdatasync instead of one each.
    pub async fn write_durable_many(
        &self,
        records: Vec<(String, Map<String, Value>)>,
    ) -> Result<(), String> {
        let waiters: Vec<Waiter> = records
            .into_iter()
            .map(|(e, f)| self.enqueue(e, f, true))
            .collect::<Result<_, _>>()?;
        for w in waiters {
            wait(w).await?;
        }
        Ok(())
    }

    /// Write a record and wait until it has been written (not necessarily flushed to disk).
    pub async fn write(&self, event: &str, fields: Map<String, Value>) -> Result<u64, String> {
        wait(self.enqueue(event.to_string(), fields, false)?).await
    }

    /// Queue a record without waiting (denials, informational events).
    pub fn post(&self, event: &str, fields: Map<String, Value>) {
        let _ = self.tx.send(Job {
            entry: Entry {
                event: event.to_string(),
                fields,
            },
            durable: false,
            done: None,
        });
    }
}

/// Build a field map from `json!({...})` literals.
pub fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
