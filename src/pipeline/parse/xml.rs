//! XML bodies to JSON records, streamed (no DOM); a record's elements are kept as slices of the
//! document until its JSON text is written ([`super::xml_tree`]). A document is read by our own
//! tokenizer for the common well-formed subset ([`super::xml_scan`]) and, for anything it does
//! not read or any error, again from its start by quick-xml's reader, whose answer stands.
//!
//! Mapping:
//! - An element becomes an object. Its attributes become `"@name"` keys with
//!   string values; namespace declarations stay as plain attributes
//!   (`"@xmlns"`, `"@xmlns:soap"`). Element and attribute names keep their
//!   prefix as written (`"soap:Envelope"`); namespaces are not resolved.
//! - An element with only text (no attributes, no child elements) becomes a
//!   JSON string. With attributes or children, its text goes under `"#text"`.
//!   All text chunks of an element (including CDATA and references) are
//!   concatenated, then leading/trailing whitespace is trimmed; text that is
//!   only whitespace (e.g. indentation between elements) is dropped.
//! - An empty element with no attributes (`<a/>`, `<a></a>`) becomes `""`.
//! - Repeated child elements with the same name become an array in document
//!   order; a single child is a plain value, never a one-element array.
//!   Object keys come out sorted (serde_json's map), so the relative order of
//!   differently named children is not kept.
//! - No type inference: numbers and booleans stay strings.
//! - Comments and processing instructions are ignored; the `<?xml ...?>`
//!   declaration is allowed.
//! - Only the five predefined entities (`&lt; &gt; &amp; &apos; &quot;`) and
//!   numeric character references are decoded; any other entity is a 400. Any
//!   `<!DOCTYPE ...>` is rejected with [`ParseError::Doctype`], so entity
//!   declarations (billion laughs, external `SYSTEM` entities) are never read.
//! - Attribute values are normalised as XML requires (tabs and newlines become
//!   spaces); text keeps its newlines (CRLF becomes LF).
//!
//! Records:
//! - Without a resource path the document is one record `{"<root>": <root value>}`.
//! - With a path `a.b.c`, `a` must be the root element's name and `b.c` walks
//!   child elements; every element reached by the full path (all same-named
//!   siblings, under every matching parent) is one record: its converted
//!   value, not wrapped in its name. A path of just the root name makes the
//!   root's value the single record. No match is a [`ParseError::ResourcePath`].
//!   Elements off the path are checked for well-formedness but not converted.

use std::borrow::Cow;

use quick_xml::escape::{resolve_xml_entity, EscapeError};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesCData, BytesDecl, BytesRef, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::reader::Reader;
use quick_xml::XmlVersion;

use super::error::{echo, ParseError};
use super::limits::RECORD_DEPTH_LIMIT;
use super::record::Record;
use super::xml_scan::{Scanner, Token, Unsupported};
use super::xml_tree::{is_xml_whitespace, trim_xml, Mark, Tree};
use crate::config::resource_path::ResourcePath;

/// How an open element relates to the resource path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Outside the path and outside any record: checked, not converted.
    Skip,
    /// Matches path segment `n` on the way to the records.
    Ancestor(usize),
    /// A record's top element.
    Record,
    /// Inside a record: converted and attached to its parent.
    Build,
}

struct Frame<'a> {
    /// Empty unless the element is converted (only converted names are ever used).
    name: Cow<'a, str>,
    mode: Mode,
    /// Where its attributes and children start in the tree.
    mark: Mark,
    text: Cow<'a, str>,
}

impl Frame<'_> {
    fn converts(&self) -> bool {
        matches!(self.mode, Mode::Record | Mode::Build)
    }
}

/// `part` as a slice of `input` when it is one, else a copy: quick-xml's events borrow the
/// document, but its accessors (names, attributes) lend their slices only for as long as the
/// event lives, and copying every name was a good part of the conversion's cost.
fn in_input<'a>(input: &'a str, part: &str) -> Cow<'a, str> {
    let offset = (part.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
    match input.get(offset..offset.wrapping_add(part.len())) {
        Some(slice) if std::ptr::eq(slice.as_ptr(), part.as_ptr()) => Cow::Borrowed(slice),
        _ => Cow::Owned(part.to_owned()),
    }
}

/// The XML `Name` production. quick-xml does not check names, and ours become JSON keys.
fn is_xml_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    // Most names are ASCII: checked bytewise, the rest by characters.
    let ascii_name_char = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.');
    match bytes.split_first() {
        None => false,
        Some((first, rest)) if first.is_ascii() => {
            (first.is_ascii_alphabetic() || matches!(first, b'_' | b':'))
                && (rest.iter().all(ascii_name_char) || rest_are_name_chars(name))
        }
        Some(_) => {
            let mut chars = name.chars();
            chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
        }
    }
}

fn rest_are_name_chars(name: &str) -> bool {
    name.chars().skip(1).all(is_name_char)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Adds where in the (decoded) document an XML syntax error was noticed.
fn at_offset(error: ParseError, offset: u64) -> ParseError {
    match error {
        ParseError::Malformed { kind, reason } => {
            ParseError::malformed(kind, format!("{reason} (near offset {offset})"))
        }
        other => other,
    }
}

fn malformed(reason: impl Into<String>) -> ParseError {
    ParseError::malformed("xml", reason)
}

struct Converter<'p, 'a> {
    input: &'a str,
    segments: Vec<&'p str>,
    path: Option<&'p ResourcePath>,
    max_depth: usize,
    version: XmlVersion,
    stack: Vec<Frame<'a>>,
    tree: Tree<'a>,
    records: Vec<Record>,
    /// Records matched, written or not (one too deep for a page stops the writing).
    matched: usize,
    too_deep: bool,
    root_name: Option<String>,
}

impl<'p, 'a> Converter<'p, 'a> {
    fn new(input: &'a str, path: Option<&'p ResourcePath>, max_depth: usize) -> Converter<'p, 'a> {
        Converter {
            input,
            segments: path.map(|p| p.segments().collect()).unwrap_or_default(),
            path,
            max_depth,
            version: XmlVersion::Implicit1_0,
            stack: Vec::new(),
            tree: Tree::for_document(input.len()),
            records: Vec::new(),
            matched: 0,
            too_deep: false,
            root_name: None,
        }
    }

    /// Checks an element about to open (its name, that it is the only root, the depth) and
    /// answers how it relates to the resource path.
    fn enter(&mut self, name: &str) -> Result<Mode, ParseError> {
        if !is_xml_name(name) {
            return Err(malformed(format!("invalid element name <{}>", echo(name))));
        }
        if self.stack.is_empty() {
            if self.root_name.is_some() {
                return Err(malformed("more than one root element"));
            }
            self.root_name = Some(echo(name));
        }
        if self.stack.len() >= self.max_depth {
            return Err(ParseError::TooDeep { limit: self.max_depth });
        }
        Ok(match self.stack.last().map(|parent| parent.mode) {
            None if self.path.is_none() => Mode::Record,
            None => self.path_mode(0, name),
            Some(Mode::Skip) => Mode::Skip,
            Some(Mode::Record | Mode::Build) => Mode::Build,
            Some(Mode::Ancestor(n)) => self.path_mode(n + 1, name),
        })
    }

    /// An attribute's value as a record holds it, after the checks every attribute gets:
    /// attributes of skipped elements are checked too, so that a body's validity does not depend
    /// on the listener's resource path.
    fn attribute_value<'v>(&self, attr: &Attribute<'v>) -> Result<Cow<'v, str>, ParseError> {
        let key = attr.key.into_inner();
        if !is_xml_name(key) {
            return Err(malformed(format!("invalid attribute name \"{}\"", echo(key))));
        }
        if attr.value.contains('<') {
            return Err(malformed(format!("`<` in the value of attribute \"{}\"", echo(key))));
        }
        attr.normalized_value(self.version).map_err(|e| describe_error(&e))
    }

    fn push(&mut self, name: Cow<'a, str>, mode: Mode, mark: Mark) {
        self.stack.push(Frame {
            name,
            mode,
            mark,
            text: Cow::Borrowed(""),
        });
    }

    fn open(&mut self, start: &BytesStart<'a>) -> Result<(), ParseError> {
        let name = start.name().into_inner();
        let mode = self.enter(name)?;
        let converts = matches!(mode, Mode::Record | Mode::Build);
        let mark = self.tree.mark();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| malformed(format!("invalid attribute: {e}")))?;
            let value = self.attribute_value(&attr)?;
            if converts {
                let value = match value {
                    Cow::Borrowed(value) => in_input(self.input, value),
                    Cow::Owned(value) => Cow::Owned(value),
                };
                self.tree.attribute(in_input(self.input, attr.key.into_inner()), value);
            }
        }
        let name = if converts {
            in_input(self.input, name)
        } else {
            Cow::Borrowed("")
        };
        self.push(name, mode, mark);
        Ok(())
    }

    /// [`Self::open`] for a tag of [`Scanner`]'s: its name and attributes are slices of the
    /// document already, and its keys are unique.
    fn open_scanned(&mut self, name: &'a str, attributes: &[(&'a str, &'a str)]) -> Result<(), ParseError> {
        let mode = self.enter(name)?;
        let converts = matches!(mode, Mode::Record | Mode::Build);
        let mark = self.tree.mark();
        for &(key, value) in attributes {
            let attr = Attribute {
                key: QName(key),
                value: Cow::Borrowed(value),
            };
            let value = self.attribute_value(&attr)?;
            if converts {
                self.tree.attribute(Cow::Borrowed(key), value);
            }
        }
        self.push(Cow::Borrowed(if converts { name } else { "" }), mode, mark);
        Ok(())
    }

    fn path_mode(&self, index: usize, name: &str) -> Mode {
        match self.segments.get(index) {
            Some(&segment) if segment == name => {
                if index + 1 == self.segments.len() {
                    Mode::Record
                } else {
                    Mode::Ancestor(index)
                }
            }
            _ => Mode::Skip,
        }
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let frame = self
            .stack
            .pop()
            .ok_or_else(|| malformed("end tag without a start tag"))?;
        match frame.mode {
            Mode::Skip | Mode::Ancestor(_) => {}
            Mode::Record => {
                let node = self.tree.close(frame.mark, frame.name, frame.text);
                let wrapped = self.path.is_none();
                self.matched += 1;
                // As deep as the value, one more in the `{"<root>": ...}` of a whole document.
                if self.tree.depth(node) + usize::from(wrapped) > RECORD_DEPTH_LIMIT {
                    self.too_deep = true;
                }
                if !self.too_deep {
                    // A document's record is about its size; one of many, about the last's.
                    let capacity = match self.records.last() {
                        _ if wrapped => self.input.len(),
                        Some(last) => last.json().len() + last.json().len() / 8,
                        None => 256,
                    };
                    self.records.push(self.tree.record(node, wrapped, capacity));
                }
                self.tree.clear();
            }
            Mode::Build => {
                if self.stack.is_empty() {
                    return Err(malformed("end tag without a start tag"));
                }
                let node = self.tree.close(frame.mark, frame.name, frame.text);
                self.tree.adopt(node);
            }
        }
        Ok(())
    }

    fn handle(&mut self, event: Event<'a>, seen_markup: bool) -> Result<(), ParseError> {
        match event {
            Event::Decl(decl) => {
                if seen_markup {
                    return Err(malformed("XML declaration is not at the start"));
                }
                self.version = decl.xml_version().map_err(|e| describe_error(&e))?;
            }
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Start(start) => self.open(&start)?,
            Event::Empty(start) => {
                self.open(&start)?;
                self.close()?;
            }
            Event::End(_) => self.close()?,
            Event::Text(chunk) => self.text(chunk.xml_content(self.version), "text")?,
            Event::CData(chunk) => {
                if self.stack.is_empty() {
                    return Err(malformed("CDATA outside the root element"));
                }
                self.text(chunk.xml_content(self.version), "CDATA")?;
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                if self.stack.is_empty() {
                    return Err(malformed("reference outside the root element"));
                }
                self.text(resolved, "reference")?;
            }
            Event::Comment(_) | Event::PI(_) | Event::Eof => {}
        }
        Ok(())
    }

    /// A [`Scanner`]'s token, handled as the event quick-xml's reader makes of the same text.
    fn take(
        &mut self,
        token: Token<'a>,
        attributes: &[(&'a str, &'a str)],
        seen_markup: bool,
    ) -> Result<(), ParseError> {
        match token {
            Token::Decl(content) => {
                let decl = BytesDecl::from_start(BytesStart::from_content(content, 3));
                self.handle(Event::Decl(decl), seen_markup)
            }
            Token::Start { name, empty } => {
                self.open_scanned(name, attributes)?;
                if empty {
                    self.close()?;
                }
                Ok(())
            }
            Token::End => self.close(),
            Token::Text(text) => self.handle(Event::Text(BytesText::from_escaped(text)), seen_markup),
            Token::CData(text) => self.handle(Event::CData(BytesCData::new(text)), seen_markup),
            Token::Reference(name) => self.handle(Event::GeneralRef(BytesRef::new(name)), seen_markup),
            Token::Ignored => Ok(()),
        }
    }

    /// The records, once the whole document was read.
    fn finish(self) -> Result<Vec<Record>, ParseError> {
        if let Some(open) = self.stack.len().checked_sub(1) {
            return Err(malformed(format!("{} element(s) not closed", open + 1)));
        }
        let Some(root_name) = self.root_name else {
            return Err(malformed("no root element"));
        };
        if let (Some(path), 0) = (self.path, self.matched) {
            let first = self.segments.first().copied().unwrap_or_default();
            let reason = if first == root_name {
                "no element matches".to_owned()
            } else {
                format!("the root element is <{root_name}>, not <{}>", echo(first))
            };
            return Err(ParseError::ResourcePath {
                path: path.as_str().to_owned(),
                reason,
            });
        }
        if self.too_deep {
            return Err(ParseError::TooDeep {
                limit: RECORD_DEPTH_LIMIT,
            });
        }
        Ok(self.records)
    }

    fn text(&mut self, chunk: Cow<'a, str>, what: &str) -> Result<(), ParseError> {
        match self.stack.last_mut() {
            None => {
                if chunk.chars().all(is_xml_whitespace) {
                    Ok(())
                } else {
                    Err(malformed(format!("{what} outside the root element")))
                }
            }
            Some(frame) => {
                // Skipping leading whitespace keeps indentation-only runs from piling up.
                if frame.converts() && !(frame.text.is_empty() && trim_xml(&chunk).is_empty()) {
                    if frame.text.is_empty() {
                        frame.text = chunk;
                    } else {
                        frame.text.to_mut().push_str(&chunk);
                    }
                }
                Ok(())
            }
        }
    }
}

/// Resolves a reference: a predefined entity's text, or one character.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, ParseError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(Cow::Owned(c.to_string())),
            _ => Err(malformed(format!("invalid character reference &{};", echo(reference)))),
        };
    }
    resolve_xml_entity(reference)
        .map(Cow::Borrowed)
        .ok_or_else(|| malformed(format!("undefined entity &{};", echo(reference))))
}

/// A short reason for a quick-xml error, without echoing unbounded input.
fn describe_error(error: &quick_xml::Error) -> ParseError {
    match error {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            malformed(format!("undefined entity &{};", echo(name)))
        }
        quick_xml::Error::Escape(EscapeError::InvalidCharRef(_)) => malformed("invalid character reference"),
        quick_xml::Error::Escape(EscapeError::UnterminatedEntity(_)) => {
            malformed("`&` not followed by a reference ending in `;`")
        }
        quick_xml::Error::IllFormed(quick_xml::errors::IllFormedError::MismatchedEndTag { expected, found }) => {
            malformed(format!("expected </{}>, found </{}>", echo(expected), echo(found)))
        }
        other => malformed(other.to_string()),
    }
}

/// Converts an XML document (already decoded to text) into records; see the module docs.
///
/// Read by [`Scanner`] when it can read the whole document and the conversion accepts it; else
/// from the start again by quick-xml's reader, whose answer (records, or the error and where)
/// is the document's.
pub(crate) fn parse_xml(text: &str, path: Option<&ResourcePath>, max_depth: usize) -> Result<Vec<Record>, ParseError> {
    match parse_scanned(text, path, max_depth) {
        Ok(records) => Ok(records),
        Err(Unsupported) => parse_with_quick_xml(text, path, max_depth),
    }
}

/// The records of a document [`Scanner`] reads to the end and the conversion accepts.
pub(super) fn parse_scanned(
    text: &str,
    path: Option<&ResourcePath>,
    max_depth: usize,
) -> Result<Vec<Record>, Unsupported> {
    let mut scanner = Scanner::new(text);
    let mut converter = Converter::new(text, path, max_depth);
    let mut seen_markup = false;
    while let Some(token) = scanner.next_token()? {
        converter
            .take(token, scanner.attributes(), seen_markup)
            .map_err(|_| Unsupported)?;
        seen_markup = true;
    }
    converter.finish().map_err(|_| Unsupported)
}

/// [`parse_xml`] on quick-xml's reader alone.
pub(super) fn parse_with_quick_xml(
    text: &str,
    path: Option<&ResourcePath>,
    max_depth: usize,
) -> Result<Vec<Record>, ParseError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut converter = Converter::new(text, path, max_depth);
    let mut seen_markup = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| at_offset(describe_error(&e), reader.error_position()))?;
        if matches!(event, Event::Eof) {
            break;
        }
        converter
            .handle(event, seen_markup)
            .map_err(|e| at_offset(e, reader.buffer_position()))?;
        seen_markup = true;
    }
    converter.finish()
}

#[cfg(test)]
mod tests {
    use super::super::limits::ParseLimits;
    use super::super::records::parse_records;
    use super::super::records::tests::values;
    use super::*;
    use crate::config::resource_path::ResourcePath;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const XML: Option<&str> = Some("application/xml");

    fn parse(body: &str, path: Option<&str>) -> Result<Vec<Value>, ParseError> {
        let path = path.map(|p| ResourcePath::parse(p).expect("valid test path"));
        parse_records(body.as_bytes(), XML, path.as_ref(), &ParseLimits::default()).map(|r| values(&r))
    }

    fn one(body: &str) -> Value {
        let mut records = parse(body, None).unwrap();
        assert_eq!(records.len(), 1);
        records.remove(0)
    }

    const SHIPMENTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<shipments>
  <shipment id="1"><to>A</to></shipment>
  <!-- a comment -->
  <shipment id="2"><to>B</to></shipment>
  <meta><count>2</count></meta>
</shipments>"#;

    #[test]
    fn shipments_split_by_resource_path() {
        let records = parse(SHIPMENTS, Some("shipments.shipment")).unwrap();
        assert_eq!(
            records,
            vec![json!({"@id": "1", "to": "A"}), json!({"@id": "2", "to": "B"})]
        );
    }

    #[test]
    fn whole_document_without_path() {
        assert_eq!(
            one(SHIPMENTS),
            json!({"shipments": {
                "shipment": [{"@id": "1", "to": "A"}, {"@id": "2", "to": "B"}],
                "meta": {"count": "2"}
            }})
        );
    }

    #[test]
    fn path_of_root_only_gives_root_value() {
        let records = parse("<a><b>1</b></a>", Some("a")).unwrap();
        assert_eq!(records, vec![json!({"b": "1"})]);
    }

    #[test]
    fn path_matches_across_all_parents() {
        let body = "<r><g><i>1</i><i>2</i></g><x><i>no</i></x><g><i>3</i></g></r>";
        let records = parse(body, Some("r.g.i")).unwrap();
        assert_eq!(records, vec![json!("1"), json!("2"), json!("3")]);
    }

    #[test]
    fn path_without_match_is_resource_path_error() {
        let err = parse(SHIPMENTS, Some("shipments.parcel")).unwrap_err();
        assert_eq!(err.kind(), "resource_path");
        let err = parse(SHIPMENTS, Some("orders.shipment")).unwrap_err();
        assert_eq!(
            err,
            ParseError::ResourcePath {
                path: "orders.shipment".into(),
                reason: "the root element is <shipments>, not <orders>".into()
            }
        );
    }

    #[test]
    fn attributes_and_text() {
        assert_eq!(one(r#"<a x="1">hi</a>"#), json!({"a": {"@x": "1", "#text": "hi"}}));
    }

    #[test]
    fn text_only_element_is_string_and_nothing_is_inferred() {
        assert_eq!(
            one("<a><n> 42 </n><b>true</b></a>"),
            json!({"a": {"n": "42", "b": "true"}})
        );
    }

    #[test]
    fn mixed_content_text_is_concatenated_and_trimmed() {
        assert_eq!(
            one("<a>\n  one <b>x</b> two\n</a>"),
            json!({"a": {"b": "x", "#text": "one  two"}})
        );
    }

    #[test]
    fn soap_envelope_keeps_prefixes_and_xmlns() {
        let body = r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns="urn:x">
  <soap:Header/>
  <soap:Body>
    <m:Notify xmlns:m="urn:m"><m:Id>7</m:Id></m:Notify>
  </soap:Body>
</soap:Envelope>"#;
        assert_eq!(
            one(body),
            json!({"soap:Envelope": {
                "@xmlns:soap": "http://www.w3.org/2003/05/soap-envelope",
                "@xmlns": "urn:x",
                "soap:Header": "",
                "soap:Body": {"m:Notify": {"@xmlns:m": "urn:m", "m:Id": "7"}}
            }})
        );
        let records = parse(body, Some("soap:Envelope.soap:Body.m:Notify")).unwrap();
        assert_eq!(records, vec![json!({"@xmlns:m": "urn:m", "m:Id": "7"})]);
        let ct = Some("application/soap+xml; charset=utf-8");
        assert!(parse_records(body.as_bytes(), ct, None, &ParseLimits::default()).is_ok());
    }

    #[test]
    fn repeated_elements_become_array_in_order() {
        assert_eq!(
            one("<l><i>3</i><i>1</i><i>2</i><j>x</j></l>"),
            json!({"l": {"i": ["3", "1", "2"], "j": "x"}})
        );
    }

    #[test]
    fn empty_elements_are_empty_strings() {
        assert_eq!(
            one("<a><b/><c></c><d>  </d></a>"),
            json!({"a": {"b": "", "c": "", "d": ""}})
        );
        assert_eq!(one("<a/>"), json!({"a": ""}));
        assert_eq!(one(r#"<a k="v"/>"#), json!({"a": {"@k": "v"}}));
    }

    #[test]
    fn cdata_and_references_are_text() {
        assert_eq!(
            one("<a><![CDATA[<b>&amp;</b>]]> &lt;&#65;&#x42;&quot;&apos;&gt;&amp;</a>"),
            json!({"a": "<b>&amp;</b> <AB\"'>&"})
        );
        assert_eq!(one(r#"<a t="&lt;&#x263A;&amp;"/>"#), json!({"a": {"@t": "<☺&"}}));
    }

    #[test]
    fn doctype_is_rejected() {
        let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"#;
        let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>"#;
        for body in [billion_laughs, xxe, "<!DOCTYPE a><a/>", "<a><!DOCTYPE a></a>"] {
            let err = parse(body, None).unwrap_err();
            assert_eq!(err, ParseError::Doctype, "{body}");
            assert_eq!((err.status(), err.kind()), (400, "doctype"));
        }
    }

    #[test]
    fn undefined_entity_is_400() {
        for body in ["<a>&nbsp;</a>", r#"<a x="&foo;"/>"#, "<a>&#0;</a>", "<a>& b</a>"] {
            let err = parse(body, None).unwrap_err();
            assert_eq!((err.status(), err.kind()), (400, "xml"), "{body}: {err}");
        }
        assert_eq!(
            parse("<a>&xxe;</a>", None).unwrap_err(),
            ParseError::malformed("xml", "undefined entity &xxe; (near offset 8)")
        );
    }

    #[test]
    fn undefined_entity_is_400_even_off_the_resource_path() {
        let err = parse("<r><x>&bad;</x><i>1</i></r>", Some("r.i")).unwrap_err();
        assert_eq!(err.kind(), "xml");
    }

    #[test]
    fn malformed_documents() {
        for body in [
            "<a><b></a>",
            "<a>",
            "<a></b>",
            "</a>",
            "<a/><b/>",
            "hello <a/>",
            "<a/> trailing",
            "",
            "   ",
            "<!-- only a comment -->",
            "<a x=1/>",
            r#"<a x="1" x="2"/>"#,
            "<a><![CDATA[x</a>",
            "not xml at all",
            "<?xml version=\"1.0\"?><a/><?xml version=\"1.0\"?>",
            "<1a/>",
            "<a\u{0}/>",
            "< a/>",
            "<a -x=\"1\"/>",
            "<a b='<'/>",
        ] {
            let err = parse(body, None).unwrap_err();
            assert_eq!((err.status(), err.kind()), (400, "xml"), "{body:?}: {err}");
        }
        let err = parse("<a><b></a>", None).unwrap_err();
        let ParseError::Malformed { reason, .. } = &err else {
            unreachable!()
        };
        assert_eq!(reason, "expected </b>, found </a> (near offset 6)");
    }

    #[test]
    fn non_ascii_names_are_fine() {
        assert_eq!(
            one("<données><élément>1</élément></données>"),
            json!({"données": {"élément": "1"}})
        );
    }

    #[test]
    fn deep_xml_is_too_deep() {
        let body = format!("{}{}", "<a>".repeat(129), "</a>".repeat(129));
        assert_eq!(parse(&body, None).unwrap_err(), ParseError::TooDeep { limit: 128 });
        // Within the XML limit, but its record would nest too deep for a page.
        let body = format!("{}{}", "<a>".repeat(128), "</a>".repeat(128));
        assert_eq!(
            parse(&body, None).unwrap_err(),
            ParseError::TooDeep {
                limit: super::super::limits::RECORD_DEPTH_LIMIT
            }
        );
        let body = format!("{}x{}", "<a>".repeat(120), "</a>".repeat(120));
        assert!(parse(&body, None).is_ok());
        let limits = ParseLimits {
            max_depth: 2,
            ..ParseLimits::default()
        };
        let err = parse_records(b"<a><b><c/></b></a>", XML, None, &limits).unwrap_err();
        assert_eq!(err, ParseError::TooDeep { limit: 2 });
    }

    #[test]
    fn unclosed_deep_garbage_is_bounded() {
        let body = "<a>".repeat(100_000);
        assert_eq!(parse(&body, None).unwrap_err().kind(), "depth");
    }

    #[test]
    fn invalid_utf8_is_charset_error() {
        let err = parse_records(b"<a>\xff</a>", XML, None, &ParseLimits::default()).unwrap_err();
        assert_eq!((err.status(), err.kind()), (400, "charset"));
    }

    #[test]
    fn xml_declaration_encoding_is_used_without_charset_param() {
        let body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
        let records = parse_records(body, Some("text/xml"), None, &ParseLimits::default()).unwrap();
        assert_eq!(values(&records), vec![json!({"a": "café"})]);
        // The Content-Type charset wins over the declaration.
        let ct = Some("text/xml; charset=utf-8");
        let err = parse_records(body, ct, None, &ParseLimits::default()).unwrap_err();
        assert_eq!(err.kind(), "charset");
        let body = b"<?xml version=\"1.0\" encoding=\"bogus\"?><a/>";
        let err = parse_records(body, Some("text/xml"), None, &ParseLimits::default()).unwrap_err();
        assert_eq!(err.status(), 415);
    }

    #[test]
    fn utf16_xml_with_bom() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>ü</a>";
        let mut body = vec![0xFE, 0xFF];
        body.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let records = parse_records(&body, Some("text/xml"), None, &ParseLimits::default()).unwrap();
        assert_eq!(values(&records), vec![json!({"a": "ü"})]);
    }

    #[test]
    fn long_names_are_not_echoed_in_full() {
        let name = "n".repeat(5000);
        let body = format!("<{name}></x>");
        let err = parse(&body, None).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn the_noted_id_is_the_member_scan_s() {
        let bodies = [
            ("<r><id>7</id><x/></r>", Some("r")),
            ("<r><id>7</id><id>8</id></r>", Some("r")),
            (r#"<r id="1"><x/></r>"#, Some("r")),
            ("<r><i><id k='v'>a</id></i><i>b</i></r>", Some("r.i")),
            ("<id>9</id>", None),
            ("<id><id>1</id></id>", None),
            ("<r><id>7</id></r>", None),
        ];
        for (body, path) in bodies {
            let path = path.map(|p| ResourcePath::parse(p).unwrap());
            let records = parse_records(body.as_bytes(), XML, path.as_ref(), &ParseLimits::default()).unwrap();
            for record in &records {
                let scanned = if record.json().starts_with('{') {
                    crate::pipeline::parse::json::member_of_valid_object(record.json(), "id")
                } else {
                    None
                };
                assert_eq!(record.noted_id(), Some(scanned), "{body}: {}", record.json());
            }
        }
    }

    fn escape_text(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn token_soup_never_panics(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "<a>", "</a>", "<b x='1'>", "</b>", "<c/>", "<id>", "</id>", "&amp;", "&#x41;", "&#0;", "&bad;", "text",
                "<![CDATA[x]]>", "<!--c-->", "<!DOCTYPE a>", "<?pi x?>", "<?xml version=\"1.0\"?>",
                "<", ">", "/", "\"", "'", "=", " ", "&", ";", "]]>", "<!", "\u{e9}",
            ]), 0..60),
            path in prop::option::of(prop::sample::select(vec!["a", "a.b", "a.b.c", "b"])),
        ) {
            let body = tokens.concat();
            let path = path.map(|p| ResourcePath::parse(p).unwrap());
            for max_depth in [2, 128] {
                let limits = ParseLimits { max_depth, ..ParseLimits::default() };
                match parse_records(body.as_bytes(), XML, path.as_ref(), &limits) {
                    Err(e) => prop_assert_eq!(e.status(), 400),
                    Ok(records) => {
                        for record in &records {
                            let json = record.json();
                            let scanned = json
                                .starts_with('{')
                                .then(|| crate::pipeline::parse::json::member_of_valid_object(json, "id"))
                                .flatten();
                            prop_assert_eq!(record.noted_id(), Some(scanned));
                        }
                    }
                }
            }
        }

        #[test]
        fn n_items_give_n_records_with_their_text(texts in proptest::collection::vec("\\PC{0,20}", 0..20)) {
            let items: String = texts
                .iter()
                .map(|t| format!("<item><v>{}</v></item>\n", escape_text(t)))
                .collect();
            let body = format!("<root>\n{items}</root>");
            let records = parse(&body, Some("root.item"));
            if texts.is_empty() {
                prop_assert_eq!(records.unwrap_err().kind(), "resource_path");
            } else {
                let expected: Vec<Value> = texts
                    .iter()
                    .map(|t| json!({"v": t.trim_matches(is_xml_whitespace).replace("\r\n", "\n").replace('\r', "\n")}))
                    .collect();
                prop_assert_eq!(records.unwrap(), expected);
            }
        }
    }
}
