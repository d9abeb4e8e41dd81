//! The converted elements of an XML record, and the record's JSON text (the mapping is in
//! [`super::xml`]).
//!
//! The converter used to build a `serde_json::Value` per element (a `BTreeMap` of owned keys,
//! owned strings), serialize it and drop it: allocations were most of an XML body's parsing
//! cost. Here an element's names and text stay slices of the document wherever quick-xml gives
//! them unchanged; a closed element is one [`Node`] in an arena, its children a sorted run of
//! indices; the record's text is written once, straight from the arena, in the order and with
//! the escapes `serde_json` gives a `Value` (object keys sorted bytewise, same-named children an
//! array in document order, compact).

use std::borrow::Cow;
use std::cmp::Ordering;

use super::record::{IdAt, Record};

/// A closed element of a record, or one of its attributes.
struct Node<'a> {
    /// The element's or attribute's name as written (an attribute's key is `@` and its name).
    name: Cow<'a, str>,
    attribute: bool,
    /// JSON nesting depth of the value (a string is 0).
    depth: u32,
    value: NodeValue<'a>,
}

enum NodeValue<'a> {
    /// An attribute's value, or an element with only text (trimmed).
    Text(Cow<'a, str>),
    /// An element with attributes or children: its trimmed text (empty: no `#text`), and its
    /// children, `Tree::lists[start..end]`, sorted by key, same keys in document order.
    Object { text: Cow<'a, str>, start: u32, end: u32 },
}

/// The elements of the record being converted.
pub(super) struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    /// Runs of children of closed elements.
    lists: Vec<u32>,
    /// Children (and attributes) of the elements still open, innermost last.
    open: Vec<u32>,
}

/// A handle to a closed element of a [`Tree`].
#[derive(Clone, Copy)]
pub(super) struct NodeId(u32);

/// An open element's first child in [`Tree::open`].
#[derive(Clone, Copy, Default)]
pub(super) struct Mark(u32);

pub(super) fn is_xml_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `s` without leading and trailing XML whitespace (ASCII: bytewise).
pub(super) fn trim_xml(s: &str) -> &str {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let bytes = s.as_bytes();
    let Some(start) = bytes.iter().position(|b| !is_space(b)) else {
        return "";
    };
    let end = bytes.iter().rposition(|b| !is_space(b)).map_or(start, |last| last + 1);
    // Both ends are next to ASCII bytes, so on character boundaries.
    &s[start..end]
}

fn trim_cow(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(trim_xml(text)),
        Cow::Owned(text) if trim_xml(&text).len() == text.len() => Cow::Owned(text),
        Cow::Owned(text) => Cow::Owned(trim_xml(&text).to_owned()),
    }
}

/// The order of two keys as `String`s compare (bytewise), an attribute's key being `@name`.
/// `@` is no name character, and only `:` of the name-start characters sorts below it.
fn key_order(a: &Node<'_>, b: &Node<'_>) -> Ordering {
    match (a.attribute, b.attribute) {
        (true, true) | (false, false) => name_order(&a.name, &b.name),
        (true, false) if b.name.starts_with(':') => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, true) if a.name.starts_with(':') => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// Bytewise, as `str`'s order is; names that differ in their first byte (most siblings') are
/// told apart without a call to `memcmp`.
fn name_order(a: &str, b: &str) -> Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

fn same_key(a: &Node<'_>, b: &Node<'_>) -> bool {
    a.attribute == b.attribute && a.name == b.name
}

/// A node per this many bytes of document is reserved up front ([`Tree::for_document`]): an
/// element takes at least `<a/>`, and documents of short elements with an attribute (the bench's
/// shipments) have about one per 16 bytes.
const BYTES_PER_NODE: usize = 16;

/// The most nodes reserved up front (256 KiB); a larger tree grows as it needs.
const MAX_RESERVED_NODES: usize = 4096;

impl<'a> Tree<'a> {
    /// An empty tree for a document of `len` bytes, its arena reserved for about as many nodes as
    /// such a document holds: grown from empty, a 16 KB document's arena was reallocated (and
    /// copied) eight times.
    pub(super) fn for_document(len: usize) -> Tree<'a> {
        let nodes = (len / BYTES_PER_NODE).min(MAX_RESERVED_NODES);
        Tree {
            nodes: Vec::with_capacity(nodes),
            lists: Vec::with_capacity(nodes),
            open: Vec::with_capacity(nodes.min(64)),
        }
    }

    /// Where the element opening now starts its children.
    pub(super) fn mark(&self) -> Mark {
        Mark(u32::try_from(self.open.len()).expect("fewer children than bytes"))
    }

    fn push(&mut self, node: Node<'a>) -> u32 {
        let id = u32::try_from(self.nodes.len()).expect("fewer nodes than bytes");
        self.nodes.push(node);
        id
    }

    /// An attribute of the innermost open element.
    pub(super) fn attribute(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) {
        let id = self.push(Node {
            name,
            attribute: true,
            depth: 0,
            value: NodeValue::Text(value),
        });
        self.open.push(id);
    }

    /// A closed element becomes a child of the innermost open one.
    pub(super) fn adopt(&mut self, child: NodeId) {
        self.open.push(child.0);
    }

    /// Closes the element whose children start at `mark`, with its text (not yet trimmed).
    pub(super) fn close(&mut self, mark: Mark, name: Cow<'a, str>, text: Cow<'a, str>) -> NodeId {
        let text = trim_cow(text);
        let first = mark.0 as usize;
        if self.open.len() <= first {
            return NodeId(self.push(Node {
                name,
                attribute: false,
                depth: 0,
                value: NodeValue::Text(text),
            }));
        }
        let start = self.lists.len();
        self.lists.extend(self.open.drain(first..));
        let nodes = &self.nodes;
        let children = &mut self.lists[start..];
        // Stable: same-named children keep their document order.
        // Already in order (one child, or repeated ones): nothing to sort.
        if !children.is_sorted_by(|&a, &b| key_order(&nodes[a as usize], &nodes[b as usize]) != Ordering::Greater) {
            children.sort_by(|&a, &b| key_order(&nodes[a as usize], &nodes[b as usize]));
        }
        let mut depth = 0;
        for group in children.chunk_by(|&a, &b| same_key(&nodes[a as usize], &nodes[b as usize])) {
            let deepest = group
                .iter()
                .map(|&child| nodes[child as usize].depth)
                .max()
                .unwrap_or(0);
            depth = depth.max(deepest + u32::from(group.len() > 1));
        }
        let end = self.lists.len();
        NodeId(self.push(Node {
            name,
            attribute: false,
            depth: depth + 1,
            value: NodeValue::Object {
                text,
                start: u32::try_from(start).expect("fewer children than bytes"),
                end: u32::try_from(end).expect("fewer children than bytes"),
            },
        }))
    }

    /// The JSON nesting depth of an element's value (a string is 0).
    pub(super) fn depth(&self, node: NodeId) -> usize {
        self.nodes[node.0 as usize].depth as usize
    }

    /// The record an element is: its value, or `{"<name>": <value>}` when `wrapped`, written into
    /// a buffer of `capacity` at first. The caller has checked its depth (the writing recurses).
    pub(super) fn record(&self, node: NodeId, wrapped: bool, capacity: usize) -> Record {
        let node = &self.nodes[node.0 as usize];
        let mut out = Vec::with_capacity(capacity);
        let id = if wrapped {
            out.push(b'{');
            write_key(&mut out, node);
            let start = out.len();
            self.write_value(&mut out, node);
            let end = out.len();
            out.push(b'}');
            if node.name == "id" {
                id_at(start, end)
            } else {
                IdAt::Absent
            }
        } else {
            self.write_value(&mut out, node)
        };
        let json = String::from_utf8(out).expect("written from strings and ASCII");
        Record::from_compact_json_noting_id(json, id)
    }

    /// Forgets every element (after a record).
    pub(super) fn clear(&mut self) {
        self.nodes.clear();
        self.lists.clear();
        self.open.clear();
    }

    /// Writes a node's value; answers where in `out` the value of its top-level `id` member is
    /// (an element child named `id`).
    fn write_value(&self, out: &mut Vec<u8>, node: &Node<'_>) -> IdAt {
        let (text, children) = match &node.value {
            NodeValue::Text(text) => {
                write_str(out, text);
                return IdAt::Absent;
            }
            NodeValue::Object { text, start, end } => (text, &self.lists[*start as usize..*end as usize]),
        };
        let mut id = IdAt::Absent;
        out.push(b'{');
        // `#` sorts below every name's first character and below `@`.
        if !text.is_empty() {
            out.extend_from_slice(b"\"#text\":");
            write_str(out, text);
            out.push(b',');
        }
        let nodes = &self.nodes;
        for group in children.chunk_by(|&a, &b| same_key(&nodes[a as usize], &nodes[b as usize])) {
            let first = &nodes[group[0] as usize];
            write_key(out, first);
            let start = out.len();
            if let [only] = group {
                self.write_value(out, &nodes[*only as usize]);
            } else {
                out.push(b'[');
                for (i, &child) in group.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_value(out, &nodes[child as usize]);
                }
                out.push(b']');
            }
            if !first.attribute && first.name == "id" {
                id = id_at(start, out.len());
            }
            out.push(b',');
        }
        // The object is never empty: an element without attributes or children is a string.
        if let Some(last) = out.last_mut() {
            *last = b'}';
        }
        id
    }
}

fn id_at(start: usize, end: usize) -> IdAt {
    match (u32::try_from(start), u32::try_from(end)) {
        (Ok(start), Ok(end)) => IdAt::At(start, end),
        _ => IdAt::Unknown,
    }
}

fn write_key(out: &mut Vec<u8>, node: &Node<'_>) {
    out.push(b'"');
    if node.attribute {
        out.push(b'@');
    }
    // XML names have no character that JSON escapes (checked when they are read).
    debug_assert!(!needs_escape(node.name.as_bytes()));
    out.extend_from_slice(node.name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Whether any byte is one JSON escapes: branch-free over the bytes, so that it vectorizes.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |found, &b| found | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// A JSON string, escaped as `serde_json` escapes it.
pub(super) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    write_str_contents(out, text);
    out.push(b'"');
}

fn write_str_contents(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut run = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0A => b'n',
            0x0C => b'f',
            0x0D => b'r',
            0x00..=0x1F => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if short == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in "(\\PC|[\\x00-\\x1F\\x7F\"\\\\])*") {
            let mut out = Vec::new();
            write_str(&mut out, &text);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap());
        }
    }

    proptest! {
        #[test]
        fn names_are_ordered_as_strs_are(a in "[a-c\u{e9}:]{0,4}", b in "[a-c\u{e9}:]{0,4}") {
            prop_assert_eq!(name_order(&a, &b), a.cmp(&b));
        }

        #[test]
        fn trimming_is_the_trim_of_xml_whitespace(text in "[ \t\r\n\x0Ba\u{A0}\u{3000}é]{0,12}") {
            prop_assert_eq!(trim_xml(&text), text.trim_matches(is_xml_whitespace));
        }
    }

    #[test]
    fn every_ascii_byte_is_escaped_as_serde_json_escapes_it() {
        for byte in 0u8..=0x7F {
            let text = char::from(byte).to_string();
            let mut out = Vec::new();
            write_str(&mut out, &text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn the_arena_reserved_for_a_document_is_bounded() {
        assert_eq!(Tree::for_document(0).nodes.capacity(), 0);
        assert!(Tree::for_document(16 * 1024).nodes.capacity() >= 1024);
        let huge = Tree::for_document(5 << 20);
        assert_eq!(huge.nodes.capacity(), MAX_RESERVED_NODES);
        assert_eq!(huge.lists.capacity(), MAX_RESERVED_NODES);
        assert!(std::mem::size_of::<Node<'_>>() * MAX_RESERVED_NODES <= 256 * 1024);
    }

    #[test]
    fn keys_sort_as_strings_do() {
        let names = ["a", ":a", "A", "_a", "é", "a:b", "ab", "a.b", "a-b", "Z"];
        let mut nodes = Vec::new();
        for name in names {
            for attribute in [false, true] {
                let key = if attribute { format!("@{name}") } else { name.to_owned() };
                let node = Node {
                    name: Cow::Borrowed(name),
                    attribute,
                    depth: 0,
                    value: NodeValue::Text(Cow::Borrowed("")),
                };
                nodes.push((key, node));
            }
        }
        for (key_a, a) in &nodes {
            for (key_b, b) in &nodes {
                assert_eq!(key_order(a, b), key_a.cmp(key_b), "{key_a} vs {key_b}");
            }
        }
        assert!("#text" < ":" && "#text" < "@");
    }
}
