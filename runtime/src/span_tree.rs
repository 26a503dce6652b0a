//! One index of a group of spans as a tree, by span and parent id: the writer nests children
//! with it, the sizing splits subtrees with it, the stderr tree draws it.
//!
//! Sorted ids and binary search, not a hash map: built once per document on the hot path,
//! it costs two sorts of small vectors and no hashing.

use opentelemetry::SpanId;

use crate::record::Record;

/// What the index reads of a span: its id and its parent's.
pub(crate) trait Node {
    fn ids(&self) -> (SpanId, SpanId);
}

impl Node for Record {
    fn ids(&self) -> (SpanId, SpanId) {
        (self.span.span_context.span_id(), self.span.parent_span_id)
    }
}

impl Node for (SpanId, SpanId) {
    fn ids(&self) -> (SpanId, SpanId) {
        *self
    }
}

/// Roots and children of a group of spans.
#[derive(Debug)]
pub(crate) struct SpanTree<'a, T> {
    items: &'a [T],
    /// (parent id, index), sorted: the children of a span are one range of it, searched
    /// without reading the items.
    by_parent: Vec<(u64, usize)>,
    /// Span ids, sorted (empty for small groups, which are scanned).
    sorted_ids: Vec<u64>,
}

fn key(id: SpanId) -> u64 {
    u64::from_be_bytes(id.to_bytes())
}

impl<'a, T: Node> SpanTree<'a, T> {
    /// Indexes `items`.
    pub(crate) fn new(items: &'a [T]) -> Self {
        let mut by_parent: Vec<(u64, usize)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (key(item.ids().1), i))
            .collect();
        // Stable, so that children keep their order in the group.
        by_parent.sort_by_key(|&(parent, _)| parent);
        let sorted_ids = if items.len() > 16 {
            let mut sorted: Vec<u64> = items.iter().map(|s| key(s.ids().0)).collect();
            sorted.sort_unstable();
            sorted
        } else {
            Vec::new()
        };
        SpanTree {
            items,
            by_parent,
            sorted_ids,
        }
    }

    fn contains(&self, id: SpanId) -> bool {
        if self.sorted_ids.is_empty() {
            self.items.iter().any(|s| s.ids().0 == id)
        } else {
            self.sorted_ids.binary_search(&key(id)).is_ok()
        }
    }

    /// Whether span `i` has no parent in the group (a span that names itself as its parent
    /// is a root too).
    pub(crate) fn is_root(&self, i: usize) -> bool {
        let (id, parent) = self.items[i].ids();
        parent == id || !self.contains(parent)
    }

    /// The spans with no parent in the group, in order.
    pub(crate) fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.items.len()).filter(|&i| self.is_root(i))
    }

    /// The children of span `i`.
    pub(crate) fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let id = key(self.items[i].ids().0);
        let from = self.by_parent.partition_point(|&(parent, _)| parent < id);
        let to = from + self.by_parent[from..].partition_point(|&(parent, _)| parent <= id);
        self.by_parent[from..to]
            .iter()
            .map(|&(_, c)| c)
            .filter(move |&c| c != i)
    }

    /// Span `i` and all below it, parents before children.
    pub(crate) fn subtree(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.children(n));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(u64, u64)]) -> Vec<(SpanId, SpanId)> {
        pairs
            .iter()
            .map(|&(id, parent)| (SpanId::from(id), SpanId::from(parent)))
            .collect()
    }

    #[test]
    fn roots_and_children() {
        for extra in [0usize, 30] {
            // Past 16 spans the index searches sorted ids instead of scanning.
            let mut pairs = vec![(1, 99), (2, 1), (3, 1), (4, 2), (5, 5)];
            pairs.extend((0..extra as u64).map(|n| (100 + n, 4)));
            let pairs = ids(&pairs);
            let t = SpanTree::new(&pairs);
            assert_eq!(t.roots().collect::<Vec<_>>(), [0, 4]);
            let mut kids: Vec<usize> = t.children(0).collect();
            kids.sort_unstable();
            assert_eq!(kids, [1, 2]);
            assert_eq!(
                t.children(4).count(),
                0,
                "a self-parent is not its own child"
            );
            assert_eq!(t.subtree(0).len(), 4 + extra);
        }
    }
}
