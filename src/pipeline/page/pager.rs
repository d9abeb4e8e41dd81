//! Grouping serialized records into pages: pure logic, no actix.
//!
//! A page closes when it holds `page_size` records or when the next record would take its
//! records over `max_bytes`; an open page is also closed by the PageActor's linger timer. The
//! bytes of records and pages are written by `crate::wire`.

use std::collections::HashMap;

/// A page that is ready to publish.
#[derive(Debug)]
pub struct ClosedPage<W> {
    /// The listener it belongs to.
    pub listener_id: String,
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

/// Open pages per listener.
#[derive(Debug)]
pub struct Pager<W> {
    open: HashMap<String, OpenPage<W>>,
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
    /// page left open for this listener if it was opened by this call (the caller arms a
    /// linger timer for it). `new_waiter` is called once per page the request lands in.
    /// Every record must already fit `max_bytes` on its own.
    pub fn add(
        &mut self,
        listener_id: &str,
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
                .get(listener_id)
                .is_some_and(|page| page.bytes + cost(&record) > max_bytes);
            if must_close {
                closed.extend(self.take(listener_id));
                waiting_on_current = false;
            }
            if !self.open.contains_key(listener_id) {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.open.insert(
                    listener_id.to_string(),
                    OpenPage {
                        generation,
                        records: Vec::with_capacity(page_size.min(64)),
                        bytes: 0,
                        waiters: Vec::new(),
                    },
                );
                opened = Some(generation);
            }
            let page = self.open.get_mut(listener_id).expect("inserted above");
            if !waiting_on_current {
                page.waiters.push(new_waiter());
                waiting_on_current = true;
            }
            page.bytes += cost(&record);
            page.records.push(record);
            if page.records.len() >= page_size {
                closed.extend(self.take(listener_id));
                waiting_on_current = false;
            }
        }
        let still_open = opened.filter(|generation| {
            self.open
                .get(listener_id)
                .is_some_and(|page| page.generation == *generation)
        });
        (closed, still_open)
    }

    /// Closes the listener's open page, if there is one.
    pub fn take(&mut self, listener_id: &str) -> Option<ClosedPage<W>> {
        self.open.remove(listener_id).map(|page| ClosedPage {
            listener_id: listener_id.to_string(),
            records: page.records,
            waiters: page.waiters,
        })
    }

    /// Closes the listener's open page only if it is still the page of `generation`.
    pub fn take_generation(&mut self, listener_id: &str, generation: u64) -> Option<ClosedPage<W>> {
        if self.open.get(listener_id)?.generation == generation {
            self.take(listener_id)
        } else {
            None
        }
    }

    /// Whether the listener's open page is the page of `generation`.
    pub fn is_open(&self, listener_id: &str, generation: u64) -> bool {
        self.open
            .get(listener_id)
            .is_some_and(|page| page.generation == generation)
    }

    /// Whether the listener has an open page.
    pub fn has_open(&self, listener_id: &str) -> bool {
        self.open.contains_key(listener_id)
    }

    /// Closes every open page (shutdown).
    pub fn take_all(&mut self) -> Vec<ClosedPage<W>> {
        let ids: Vec<String> = self.open.keys().cloned().collect();
        ids.iter().filter_map(|id| self.take(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| vec![b'1'; size]).collect()
    }

    #[test]
    fn closes_at_page_size() {
        let mut pager = Pager::default();
        let mut waiters = 0;
        let (closed, open) = pager.add("l", records(45, 10), 20, 1000, || {
            waiters += 1;
            waiters
        });
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().all(|p| p.records.len() == 20));
        assert!(open.is_some());
        assert_eq!(waiters, 3);
        let rest = pager.take("l").unwrap();
        assert_eq!(rest.records.len(), 5);
    }

    #[test]
    fn closes_before_exceeding_bytes() {
        let mut pager = Pager::default();
        // Each record costs 401 bytes; three fit in 1203, a fourth would not.
        let (closed, _) = pager.add("l", records(7, 400), 20, 1203, || ());
        assert_eq!(closed.iter().map(|p| p.records.len()).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(pager.take("l").unwrap().records.len(), 1);
    }

    #[test]
    fn concurrent_requests_share_a_page_with_one_waiter_each() {
        let mut pager = Pager::default();
        let (closed, first_open) = pager.add("l", records(3, 5), 20, 1000, || "a");
        assert!(closed.is_empty() && first_open.is_some());
        let (closed, second_open) = pager.add("l", records(3, 5), 20, 1000, || "b");
        assert!(closed.is_empty());
        assert_eq!(second_open, None, "no new timer for a page already open");
        assert_eq!(pager.take_generation("l", first_open.unwrap() + 1).map(|_| ()), None);
        let page = pager.take_generation("l", first_open.unwrap()).unwrap();
        assert_eq!(page.records.len(), 6);
        assert_eq!(page.waiters, vec!["a", "b"]);
    }

    #[test]
    fn listeners_do_not_share_pages() {
        let mut pager = Pager::default();
        pager.add("a", records(1, 5), 20, 1000, || ());
        pager.add("b", records(1, 5), 20, 1000, || ());
        assert_eq!(pager.take_all().len(), 2);
    }
}
