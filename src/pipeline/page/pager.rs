//! Grouping serialized records into pages: pure logic, no actix.
//!
//! A page closes when it holds `page_size` records or when the next record would take its
//! records over `max_bytes`; an open page is also closed by the PageActor's linger timer. The
//! bytes of records and pages are written by `crate::wire`.

use std::collections::HashMap;

/// What one page holds records of: a listener's — of one partition of its topic, when the
/// listener has an ordering key (its records are published to the partition of their keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageGroup {
    /// The listener.
    pub listener_id: String,
    /// The partition, for a listener with an ordering key; `None`: the partitioner's choice
    /// (by the listener id, as for every listener without one).
    pub partition: Option<i32>,
}

impl PageGroup {
    /// The one group of a listener without an ordering key.
    pub fn listener(listener_id: String) -> PageGroup {
        PageGroup {
            listener_id,
            partition: None,
        }
    }
}

/// A page that is ready to publish.
#[derive(Debug)]
pub struct ClosedPage<W> {
    /// The group it belongs to.
    pub group: PageGroup,
    /// Serialized records, in arrival order.
    pub records: Vec<Vec<u8>>,
    /// One waiter per request with records in this page.
    pub waiters: Vec<W>,
}

#[derive(Debug)]
struct OpenPage<W> {
    generation: u64,
    records: Vec<Vec<u8>>,
    bytes: usize,
    waiters: Vec<W>,
}

/// Open pages per group (listener, or listener and partition).
#[derive(Debug)]
pub struct Pager<W> {
    open: HashMap<PageGroup, OpenPage<W>>,
    next_generation: u64,
}

impl<W> Default for Pager<W> {
    fn default() -> Self {
        Pager {
            open: HashMap::new(),
            next_generation: 0,
        }
    }
}

/// Bytes the records of a page take in the page message: each record plus a separating comma.
fn cost(record: &[u8]) -> usize {
    record.len() + 1
}

impl<W> Pager<W> {
    /// Adds one request's records. Returns the pages that closed, and the generation of the
    /// page left open for this group if it was opened by this call (the caller arms a
    /// linger timer for it). `new_waiter` is called once per page the request lands in.
    /// Every record must already fit `max_bytes` on its own.
    pub fn add(
        &mut self,
        group: &PageGroup,
        records: Vec<Vec<u8>>,
        page_size: usize,
        max_bytes: usize,
        mut new_waiter: impl FnMut() -> W,
    ) -> (Vec<ClosedPage<W>>, Option<u64>) {
        debug_assert!(page_size > 0);
        let mut closed = Vec::new();
        let mut opened = None;
        let mut waiting_on_current = false;
        for record in records {
            debug_assert!(cost(&record) <= max_bytes + 1);
            let must_close = self
                .open
                .get(group)
                .is_some_and(|page| page.bytes + cost(&record) > max_bytes);
            if must_close {
                closed.extend(self.take(group));
                waiting_on_current = false;
            }
            if !self.open.contains_key(group) {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.open.insert(
                    group.clone(),
                    OpenPage {
                        generation,
                        records: Vec::with_capacity(page_size.min(64)),
                        bytes: 0,
                        waiters: Vec::new(),
                    },
                );
                opened = Some(generation);
            }
            let page = self.open.get_mut(group).expect("inserted above");
            if !waiting_on_current {
                page.waiters.push(new_waiter());
                waiting_on_current = true;
            }
            page.bytes += cost(&record);
            page.records.push(record);
            if page.records.len() >= page_size {
                closed.extend(self.take(group));
                waiting_on_current = false;
            }
        }
        let still_open =
            opened.filter(|generation| self.open.get(group).is_some_and(|page| page.generation == *generation));
        (closed, still_open)
    }

    /// Closes the group's open page, if there is one.
    pub fn take(&mut self, group: &PageGroup) -> Option<ClosedPage<W>> {
        self.open.remove_entry(group).map(|(group, page)| ClosedPage {
            group,
            records: page.records,
            waiters: page.waiters,
        })
    }

    /// Closes the group's open page only if it is still the page of `generation`.
    pub fn take_generation(&mut self, group: &PageGroup, generation: u64) -> Option<ClosedPage<W>> {
        if self.open.get(group)?.generation == generation {
            self.take(group)
        } else {
            None
        }
    }

    /// Whether the group's open page is the page of `generation`.
    pub fn is_open(&self, group: &PageGroup, generation: u64) -> bool {
        self.open.get(group).is_some_and(|page| page.generation == generation)
    }

    /// Whether the group has an open page.
    pub fn has_open(&self, group: &PageGroup) -> bool {
        self.open.contains_key(group)
    }

    /// Closes every open page (shutdown).
    pub fn take_all(&mut self) -> Vec<ClosedPage<W>> {
        let groups: Vec<PageGroup> = self.open.keys().cloned().collect();
        groups.iter().filter_map(|group| self.take(group)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(listener_id: &str) -> PageGroup {
        PageGroup::listener(listener_id.to_string())
    }

    fn records(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| vec![b'1'; size]).collect()
    }

    #[test]
    fn closes_at_page_size() {
        let mut pager = Pager::default();
        let mut waiters = 0;
        let (closed, open) = pager.add(&g("l"), records(45, 10), 20, 1000, || {
            waiters += 1;
            waiters
        });
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().all(|p| p.records.len() == 20));
        assert!(open.is_some());
        assert_eq!(waiters, 3);
        let rest = pager.take(&g("l")).unwrap();
        assert_eq!(rest.records.len(), 5);
    }

    #[test]
    fn closes_before_exceeding_bytes() {
        let mut pager = Pager::default();
        // Each record costs 401 bytes; three fit in 1203, a fourth would not.
        let (closed, _) = pager.add(&g("l"), records(7, 400), 20, 1203, || ());
        assert_eq!(closed.iter().map(|p| p.records.len()).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(pager.take(&g("l")).unwrap().records.len(), 1);
    }

    #[test]
    fn concurrent_requests_share_a_page_with_one_waiter_each() {
        let mut pager = Pager::default();
        let (closed, first_open) = pager.add(&g("l"), records(3, 5), 20, 1000, || "a");
        assert!(closed.is_empty() && first_open.is_some());
        let (closed, second_open) = pager.add(&g("l"), records(3, 5), 20, 1000, || "b");
        assert!(closed.is_empty());
        assert_eq!(second_open, None, "no new timer for a page already open");
        assert_eq!(
            pager.take_generation(&g("l"), first_open.unwrap() + 1).map(|_| ()),
            None
        );
        let page = pager.take_generation(&g("l"), first_open.unwrap()).unwrap();
        assert_eq!(page.records.len(), 6);
        assert_eq!(page.waiters, vec!["a", "b"]);
    }

    #[test]
    fn listeners_do_not_share_pages() {
        let mut pager = Pager::default();
        pager.add(&g("a"), records(1, 5), 20, 1000, || ());
        pager.add(&g("b"), records(1, 5), 20, 1000, || ());
        assert_eq!(pager.take_all().len(), 2);
    }

    #[test]
    fn partitions_of_a_listener_do_not_share_pages() {
        let mut pager = Pager::default();
        let partition = |p| PageGroup {
            listener_id: "a".into(),
            partition: Some(p),
        };
        pager.add(&partition(0), records(2, 5), 20, 1000, || ());
        pager.add(&partition(1), records(1, 5), 20, 1000, || ());
        pager.add(&g("a"), records(1, 5), 20, 1000, || ());
        assert_eq!(pager.take(&partition(0)).unwrap().records.len(), 2);
        let last = pager.take(&partition(1)).unwrap();
        assert_eq!((last.group.partition, last.records.len()), (Some(1), 1));
        assert_eq!(pager.take_all().len(), 1);
    }
}
