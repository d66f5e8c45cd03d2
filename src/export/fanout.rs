//! Several collectors at once (ipt-netflow's `destination=a,b`): every record goes to each,
//! and each keeps its own socket, queue, templates, sequence numbers and counts. A collector
//! that is down loses records to its own count only: the others are not held up by it beyond
//! its own queue, and when one is given up (it took nothing for `--export-timeout` while the
//! input waited) the run goes on for the others, the given-up one counting what it is handed
//! as lost. The input stops only when every collector has been given up.

use super::{CollectorStatus, ExportReport, RecordSink};
use crate::meter::{FlowRecord, ProcessStats};
use crate::time::Timestamp;
use std::cell::Cell;
use std::io;

pub struct FanOut {
    members: Vec<Box<dyn RecordSink>>,
    /// Members already reported as given up (each is logged once).
    told: Vec<Cell<bool>>,
}

impl FanOut {
    pub fn new(members: Vec<Box<dyn RecordSink>>) -> Self {
        let told = members.iter().map(|_| Cell::new(false)).collect();
        FanOut { members, told }
    }

    /// Call `f` on every member; the first error is returned after all were called (one
    /// collector's trouble does not keep the others from their share).
    fn each(&mut self, mut f: impl FnMut(&mut dyn RecordSink) -> io::Result<()>) -> io::Result<()> {
        let mut first = Ok(());
        for m in &mut self.members {
            let r = f(m.as_mut());
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl RecordSink for FanOut {
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        self.each(|m| m.write_flow(rec))
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        self.each(|m| m.write_stats(stats))
    }

    fn write_nat(&mut self, event: &crate::natevent::NatEvent) -> io::Result<()> {
        self.each(|m| m.write_nat(event))
    }

    fn start(&mut self) -> io::Result<()> {
        self.each(|m| m.start())
    }

    fn first_packet(&mut self, ts: Timestamp) -> io::Result<()> {
        self.each(|m| m.first_packet(ts))
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.each(|m| m.tick(now))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.each(|m| m.finish())
    }

    /// The collectors' reports added up: each record counts once per collector.
    fn export_report(&self) -> Option<ExportReport> {
        let mut sum: Option<ExportReport> = None;
        for r in self.members.iter().filter_map(|m| m.export_report()) {
            let s = sum.get_or_insert(ExportReport {
                acknowledged: true,
                ..ExportReport::default()
            });
            s.delivered += r.delivered;
            s.lost += r.lost;
            s.overflow += r.overflow;
            s.acknowledged &= r.acknowledged;
            s.confirmed_by = r.confirmed_by;
        }
        sum
    }

    /// Only when every collector has been given up; one given up while others go on is
    /// logged, once.
    fn failure(&self) -> Option<String> {
        let mut all = Vec::new();
        for (m, told) in self.members.iter().zip(&self.told) {
            let Some(why) = m.failure() else {
                continue;
            };
            if !told.replace(true) && self.members.len() > 1 {
                tracing::error!("{why}; the other collectors go on");
            }
            all.push(why);
        }
        (!all.is_empty() && all.len() == self.members.len()).then(|| all.join("; "))
    }

    fn status(&self) -> Option<String> {
        let lines: Vec<String> = self.members.iter().filter_map(|m| m.status()).collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }

    fn collectors(&self) -> Vec<CollectorStatus> {
        self.members.iter().flat_map(|m| m.collectors()).collect()
    }

    fn resend_templates(&mut self) {
        for m in &mut self.members {
            m.resend_templates();
        }
    }

    fn flush_now(&mut self) -> io::Result<()> {
        self.each(|m| m.flush_now())
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.each(|m| m.reopen())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A member that counts what it gets and can be told to have failed.
    struct Member {
        name: &'static str,
        got: Rc<Cell<u64>>,
        failed: Rc<Cell<bool>>,
    }

    impl RecordSink for Member {
        fn write_flow(&mut self, _: &FlowRecord) -> io::Result<()> {
            self.got.set(self.got.get() + 1);
            Ok(())
        }
        fn write_stats(&mut self, _: &ProcessStats) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn export_report(&self) -> Option<ExportReport> {
            let lost = if self.failed.get() { self.got.get() } else { 0 };
            Some(ExportReport {
                delivered: self.got.get() - lost,
                lost,
                overflow: 0,
                acknowledged: true,
                confirmed_by: "the collector's TCP",
            })
        }
        fn failure(&self) -> Option<String> {
            self.failed.get().then(|| format!("{} gave up", self.name))
        }
        fn collectors(&self) -> Vec<CollectorStatus> {
            vec![CollectorStatus {
                name: self.name.into(),
                sent: self.got.get(),
                ..CollectorStatus::default()
            }]
        }
    }

    #[test]
    fn every_member_gets_every_record_and_one_failure_stops_nothing() {
        let got = [Rc::new(Cell::new(0)), Rc::new(Cell::new(0))];
        let failed = [Rc::new(Cell::new(false)), Rc::new(Cell::new(false))];
        let members: Vec<Box<dyn RecordSink>> = (0..2)
            .map(|i| {
                Box::new(Member {
                    name: ["a", "b"][i],
                    got: got[i].clone(),
                    failed: failed[i].clone(),
                }) as Box<dyn RecordSink>
            })
            .collect();
        let mut f = FanOut::new(members);
        for _ in 0..5 {
            f.write_flow(&FlowRecord::default()).unwrap();
        }
        assert_eq!((got[0].get(), got[1].get()), (5, 5));
        failed[1].set(true);
        assert_eq!(
            f.failure(),
            None,
            "one collector given up: the input goes on"
        );
        let r = f.export_report().unwrap();
        assert_eq!((r.delivered, r.lost), (5, 5));
        assert_eq!(
            f.collectors()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        failed[0].set(true);
        assert_eq!(f.failure().as_deref(), Some("a gave up; b gave up"));
    }
}
