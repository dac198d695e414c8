//! The machine's durable stores behind their seams: the audit log (and what it already
//! holds) and the lease journal. Every write is a numbered step (see `Machine::step`).

use super::*;

impl AuditSink for FakeWorld {
    fn post(&self, event: AuditEvent, fields: Map<String, Value>) {
        let mut m = self.machine();
        if !m.stopped {
            m.audit.push((event, fields, false));
        }
    }

    fn durable(&self, records: Vec<(AuditEvent, Map<String, Value>)>) -> Durable {
        let result = {
            let mut m = self.machine();
            match m.step(Effect::AuditDurable) {
                Ok(()) => {
                    for (e, f) in records {
                        m.audit.push((e, f, true));
                    }
                    Ok(m.audit.len() as u64)
                }
                Err(e) => Err(AuditError::Write(e.to_string())),
            }
        };
        Box::pin(async move { result })
    }
}

impl AuditHistory for FakeWorld {
    fn recent_lease_records(&self) -> io::Result<Vec<LeaseRecord>> {
        let m = self.machine();
        let time = |f: &Map<String, Value>| {
            let t = f.get("time").and_then(|t| t.as_str());
            // The fake's records carry no time unless a test gives one: they are all recent.
            let now = i64::try_from(m.wall_ms / 1000).unwrap_or(i64::MAX);
            t.and_then(elevate_base::time::parse_rfc3339).unwrap_or(now)
        };
        Ok(m.audit
            .iter()
            .filter_map(|(e, f, _)| {
                let lease = f.get("lease")?.as_u64()?;
                let (event, time) = (e.as_str().to_string(), time(f));
                Some(LeaseRecord { event, lease, time })
            })
            .collect())
    }
}
/// Where the fake journal says its state directory is.
const FAKE_STATE_DIR: &str = "/var/lib/elevate";

impl LeaseStore for FakeWorld {
    fn commit(&mut self, records: &[Lease], kind: Kind) -> io::Result<()> {
        let mut m = self.machine();
        m.step(Effect::JournalCommit)?;
        if kind == Kind::Granting && m.failing.contains(&Effect::StateDirFull) {
            return Err(StateFull::error(Path::new(FAKE_STATE_DIR)));
        }
        m.journal.extend(records.iter().cloned());
        Ok(())
    }

    fn reserved_ids(&self) -> u64 {
        self.machine().ids_reserved
    }

    fn reserve_ids(&mut self, through: u64) -> io::Result<()> {
        let mut m = self.machine();
        m.step(Effect::IdReservation)?;
        if m.failing.contains(&Effect::StateDirFull) {
            return Err(StateFull::error(Path::new(FAKE_STATE_DIR)));
        }
        m.ids_reserved = through;
        Ok(())
    }

    fn ensure_reserve(&mut self) -> io::Result<()> {
        if self.machine().failing.contains(&Effect::StateDirFull) {
            return Err(StateFull::error(Path::new(FAKE_STATE_DIR)));
        }
        Ok(())
    }

    fn maintain(&mut self) {}

    fn warnings(&self) -> Vec<String> {
        let full = self.machine().failing.contains(&Effect::StateDirFull);
        let dir = PathBuf::from(FAKE_STATE_DIR);
        full.then(|| StateWarning::OnReserve(dir).to_string())
            .into_iter()
            .collect()
    }

    fn maybe_compact(
        &mut self,
        _live: usize,
        _all: &mut dyn Iterator<Item = &Lease>,
    ) -> io::Result<()> {
        Ok(())
    }
}
