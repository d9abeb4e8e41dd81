//! A tokenizer for the XML most senders send: elements, attributes, text, CDATA, comments,
//! processing instructions, the XML declaration and references, cut into the pieces quick-xml's
//! reader cuts them into, for the same conversion ([`super::xml`]).
//!
//! It is an accelerator, not a second definition of XML: a document it reads to the end without
//! [`Unsupported`] gives the records quick-xml's reader gives, and it answers [`Unsupported`] for
//! anything it does not read exactly as quick-xml would — a DOCTYPE, `<!` markup other than a
//! comment or CDATA, a tag it cannot take apart, a duplicate attribute, a `&` without its `;`,
//! an end tag that does not match — so that the converter starts again from the beginning of the
//! document on quick-xml's reader, which decides and names the problem exactly as it always has.
//! The conversion's own checks (names, depth, text outside the root, which references exist) are
//! the same functions on both paths, and any error of theirs sends the document to quick-xml as
//! well; the differential tests at the bottom hold the two paths to that.
//!
//! Why: at 16 KB, quick-xml's reader was half of the XML parsing, a good part of it
//! `str::from_utf8` over every event's slice (its slice reader validates even a `&str` input)
//! and the duplicate-attribute check allocating its list of keys for every tag with attributes.
//! Here every piece is a slice of the `&str` document cut next to ASCII delimiters, so it is valid
//! UTF-8 by construction, and a tag's attributes go into one list reused for every tag.

use memchr::{memchr, memchr2, memchr3, memmem};

/// A piece of a document, as quick-xml's reader would cut it (one [`quick_xml::events::Event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// `<?xml ...?>`: the content between `<?` and `?>`, starting `xml`.
    Decl(&'a str),
    /// A start tag or an empty-element tag (`<a/>`); its attributes are [`Scanner::attributes`].
    Start { name: &'a str, empty: bool },
    /// An end tag; it matches the innermost open start tag.
    End,
    /// Text up to markup, a reference or the end, as written (line ends not normalized).
    Text(&'a str),
    /// A CDATA section's content, as written.
    CData(&'a str),
    /// A reference: the name between `&` and `;` (`amp`, `#233`, `#xE9`).
    Reference(&'a str),
    /// A comment or a processing instruction other than the declaration (both ignored).
    Ignored,
}

/// Not read here: the document goes to quick-xml's reader.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unsupported;

/// More attributes on one tag than this are left to quick-xml (its duplicate check is a hash set
/// beyond a few; ours compares each key with the ones before it).
const MAX_ATTRIBUTES: usize = 32;

/// The tokenizer's place in a document.
pub(super) struct Scanner<'a> {
    text: &'a str,
    at: usize,
    /// Names of the open elements, innermost last, to check end tags as quick-xml does.
    open: Vec<&'a str>,
    /// Key and raw value of each attribute of the last start tag.
    attributes: Vec<(&'a str, &'a str)>,
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            // quick-xml's reader skips a UTF-8 byte order mark.
            at: if text.starts_with('\u{FEFF}') { 3 } else { 0 },
            open: Vec::with_capacity(16),
            attributes: Vec::with_capacity(8),
        }
    }

    /// The attributes of the last [`Token::Start`]: keys and raw values, in document order, no
    /// key twice.
    pub(super) fn attributes(&self) -> &[(&'a str, &'a str)] {
        &self.attributes
    }

    /// The next piece, `None` at the end of the document.
    pub(super) fn next_token(&mut self) -> Result<Option<Token<'a>>, Unsupported> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        match bytes.get(start) {
            None => Ok(None),
            Some(b'<') => self.markup(start).map(Some),
            Some(b'&') => {
                // quick-xml's reference ends at the first `;`, unless a `&` or `<` comes first.
                let name_start = start + 1;
                match memchr3(b';', b'&', b'<', &bytes[name_start..]) {
                    Some(length) if bytes[name_start + length] == b';' => {
                        self.at = name_start + length + 1;
                        Ok(Some(Token::Reference(&self.text[name_start..name_start + length])))
                    }
                    _ => Err(Unsupported),
                }
            }
            Some(_) => {
                let end = memchr2(b'<', b'&', &bytes[start..]).map_or(bytes.len(), |length| start + length);
                self.at = end;
                Ok(Some(Token::Text(&self.text[start..end])))
            }
        }
    }

    fn markup(&mut self, start: usize) -> Result<Token<'a>, Unsupported> {
        let bytes = self.text.as_bytes();
        match bytes.get(start + 1) {
            Some(b'/') => self.end_tag(start + 2),
            Some(b'?') => {
                // quick-xml's instruction ends at the first `?>` after the `<`: `<?>` is one.
                let question = start + 1;
                let end = question + memmem::find(&bytes[question..], b"?>").ok_or(Unsupported)?;
                if end == question {
                    return Err(Unsupported);
                }
                self.at = end + 2;
                let content = &self.text[start + 2..end];
                let declaration = content.as_bytes().starts_with(b"xml")
                    && content.as_bytes().get(3).is_none_or(|&byte| is_whitespace(byte));
                Ok(if declaration {
                    Token::Decl(content)
                } else {
                    Token::Ignored
                })
            }
            Some(b'!') => {
                let rest = &bytes[start..];
                if rest.starts_with(b"<!--") {
                    // The first `-->` whose `>` is past `<!---`, as quick-xml reads a comment.
                    let end = start + 4 + memmem::find(&rest[4..], b"-->").ok_or(Unsupported)?;
                    self.at = end + 3;
                    Ok(Token::Ignored)
                } else if rest.starts_with(b"<![CDATA[") {
                    let content = start + 9;
                    let end = content + memmem::find(&rest[9..], b"]]>").ok_or(Unsupported)?;
                    self.at = end + 3;
                    Ok(Token::CData(&self.text[content..end]))
                } else {
                    // DOCTYPE (refused by the conversion) and anything else.
                    Err(Unsupported)
                }
            }
            Some(_) => self.start_tag(start + 1),
            None => Err(Unsupported),
        }
    }

    fn skip_whitespace(&self, mut at: usize) -> usize {
        let bytes = self.text.as_bytes();
        while bytes.get(at).is_some_and(|&byte| is_whitespace(byte)) {
            at += 1;
        }
        at
    }

    /// A name or a key: up to whitespace or a delimiter (`stop`). Whatever it holds is checked
    /// as an XML name by the conversion, which takes no delimiter.
    fn word(&self, at: usize, stop: impl Fn(u8) -> bool) -> usize {
        let bytes = self.text.as_bytes();
        at + bytes[at..]
            .iter()
            .position(|&byte| is_whitespace(byte) || stop(byte))
            .unwrap_or(bytes.len() - at)
    }

    /// From the name of `</name>`.
    fn end_tag(&mut self, name_start: usize) -> Result<Token<'a>, Unsupported> {
        let name_end = self.word(name_start, |byte| byte == b'>');
        let close = self.skip_whitespace(name_end);
        if self.text.as_bytes().get(close) != Some(&b'>') {
            return Err(Unsupported);
        }
        match self.open.pop() {
            Some(open) if open == &self.text[name_start..name_end] => {
                self.at = close + 1;
                Ok(Token::End)
            }
            _ => Err(Unsupported),
        }
    }

    /// From the name of `<name key="value" ...>` or `<name .../>`. quick-xml's reader ends a tag
    /// at its first `>` outside quotes; read here, the tags the conversion accepts (names and keys
    /// without delimiters, only whitespace and `=` between them and the quoted values) end at the
    /// same `>`.
    fn start_tag(&mut self, name_start: usize) -> Result<Token<'a>, Unsupported> {
        let bytes = self.text.as_bytes();
        let is_delimiter = |byte: u8| matches!(byte, b'/' | b'>' | b'<' | b'=' | b'"' | b'\'');
        let name_end = self.word(name_start, is_delimiter);
        let name = &self.text[name_start..name_end];
        self.attributes.clear();
        let mut at = name_end;
        loop {
            let after_space = self.skip_whitespace(at);
            match bytes.get(after_space) {
                Some(b'>') => {
                    self.at = after_space + 1;
                    self.open.push(name);
                    return Ok(Token::Start { name, empty: false });
                }
                Some(b'/') if bytes.get(after_space + 1) == Some(&b'>') => {
                    self.at = after_space + 2;
                    return Ok(Token::Start { name, empty: true });
                }
                // quick-xml needs whitespace after the name, none between two attributes.
                Some(_) if after_space > at || !self.attributes.is_empty() => {}
                _ => return Err(Unsupported),
            }
            let key_start = after_space;
            let key_end = self.word(key_start, is_delimiter);
            let equals = self.skip_whitespace(key_end);
            if key_end == key_start || bytes.get(equals) != Some(&b'=') {
                return Err(Unsupported);
            }
            let quote_at = self.skip_whitespace(equals + 1);
            let quote = match bytes.get(quote_at) {
                Some(&quote @ (b'"' | b'\'')) => quote,
                _ => return Err(Unsupported),
            };
            let value_start = quote_at + 1;
            let value_end = value_start + memchr(quote, &bytes[value_start..]).ok_or(Unsupported)?;
            let key = &self.text[key_start..key_end];
            if self.attributes.len() >= MAX_ATTRIBUTES || self.attributes.iter().any(|&(seen, _)| seen == key) {
                return Err(Unsupported);
            }
            self.attributes.push((key, &self.text[value_start..value_end]));
            at = value_end + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The scanner against quick-xml's reader: for every document below (hand-written, the
    //! committed fuzz corpus of `parse_xml` with its prefixes and suffixes, and generated ones),
    //! every resource path and depth limit, `parse_xml` answers exactly what quick-xml's reader
    //! alone answers (records byte for byte with their noted `id`, or the same error), and where the
    //! scanner read a document itself its records are quick-xml's.
    use super::super::error::ParseError;
    use super::super::record::Record;
    use super::super::xml::{parse_scanned, parse_with_quick_xml, parse_xml};
    use super::*;
    use crate::config::resource_path::ResourcePath;
    use proptest::prelude::*;

    type Outcome = Result<Vec<(String, Option<Option<String>>)>, ParseError>;

    fn outcome(result: Result<Vec<Record>, ParseError>) -> Outcome {
        result.map(|records| {
            records
                .iter()
                .map(|record| {
                    let id = record.noted_id().map(|id| id.map(str::to_owned));
                    (record.json().to_owned(), id)
                })
                .collect()
        })
    }

    const PATHS: [Option<&str>; 6] = [None, Some("r"), Some("r.e"), Some("r.e.x"), Some("r.a:b"), Some("x")];
    const DEPTHS: [usize; 3] = [2, 5, 128];

    /// Asserts that both paths agree on `body`; answers in how many of the cases (path, depth)
    /// quick-xml's reader gave records, and in how many of those the scanner read the document.
    fn agree(body: &str) -> (usize, usize) {
        let (mut accepted, mut scanned) = (0, 0);
        for path in PATHS {
            let path = path.map(|p| ResourcePath::parse(p).expect("valid test path"));
            for max_depth in DEPTHS {
                let expected = outcome(parse_with_quick_xml(body, path.as_ref(), max_depth));
                let answered = outcome(parse_xml(body, path.as_ref(), max_depth));
                assert_eq!(answered, expected, "{body:?}, path {path:?}, depth {max_depth}");
                accepted += usize::from(expected.is_ok());
                if let Ok(records) = parse_scanned(body, path.as_ref(), max_depth) {
                    assert_eq!(
                        outcome(Ok(records)),
                        expected,
                        "scanned {body:?}, path {path:?}, depth {max_depth}"
                    );
                    scanned += 1;
                }
            }
        }
        (accepted, scanned)
    }

    /// Well-formed documents of the subset: the scanner reads each one whole.
    const READ_HERE: &[&str] = &[
        "<r/>",
        "<r></r>",
        "\u{FEFF}<r>x</r>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><r><e a=\"1\" b='2'>t</e><e/></r>",
        "<?xml version='1.1'?>\r\n<r a='x\u{85}y\r\nz'>l1\r\nl2\u{2028}l3\u{85}</r>",
        "<!-- c --><?pi x?><r><!----><!-- -- --><?xml-stylesheet href='a'?></r>\n<!-- after -->\n",
        "<r>\n  <e>1</e>\n  <e>2</e>\n  <x>3</x>\n</r >",
        "<r><e x='&lt;&gt;&amp;&apos;&quot;&#233;&#x263A;'>&lt;&#65;&#x42;&quot;</e></r>",
        "<r><![CDATA[<a>&amp;]]>\r\n<![CDATA[]]></r>",
        "<r a = \"1\"\n\tb\t=\t'2'c=\"3\"/>",
        "<données><élément attr:x='é'>ü</élément></données>",
        "<a:b xmlns:a='urn:a'><a:c/>text<a:c>1</a:c> tail</a:b>",
        "<r><e><x>1</x><x>2</x></e><e><x>3</x></e><id>7</id></r>",
        "<r>a]]>b > c</r>",
        "<r t='a\tb\nc\r\nd'>\u{0}\u{1f}\"\\</r>",
        "<r><e>  </e><e>\n</e></r>",
    ];

    #[test]
    fn documents_of_the_subset_are_read_here_as_quick_xml_reads_them() {
        for body in READ_HERE {
            let (accepted, scanned) = agree(body);
            assert!(accepted > 0, "quick-xml refuses {body:?}");
            assert_eq!(scanned, accepted, "the scanner left {body:?} to quick-xml");
        }
    }

    #[test]
    fn what_the_scanner_leaves_to_quick_xml() {
        let unsupported = [
            "<!DOCTYPE r><r/>",
            "<r><!DOCTYPE r></r>",
            "<r><!ELEMENT r ANY></r>",
            "<r a='1' a='2'/>",
            "<r>a & b</r>",
            "<r>&amp</r>",
            "<r>&a<b/>;</r>",
            "<r></e>",
            "<r></ r>",
            "<r></r x>",
            "</r>",
            "<r a=1/>",
            "<r a/>",
            "<r a='1'/ >",
            "<r/x>",
            "<r =''/>",
            "<r\"a\"/>",
            "<?>",
            "<?pi",
            "<!-- x",
            "<![CDATA[x",
            "<![CDATA x]]>",
            "<!-x-->",
            "<r a='1",
            "<",
            "<r",
        ];
        for body in unsupported {
            let mut scanner = Scanner::new(body);
            let mut outcome = Ok(());
            while let Some(_token) = scanner.next_token().transpose() {
                if let Err(problem) = _token {
                    outcome = Err(problem);
                    break;
                }
            }
            assert_eq!(outcome, Err(Unsupported), "{body:?}");
            agree(body);
        }
    }

    #[test]
    fn tokens_are_quick_xml_s_events() {
        let body = "<?xml version='1.0'?><r a='1' b=\"&amp;\">t&lt;u<![CDATA[c]]><!--x--><e/></r>";
        let mut scanner = Scanner::new(body);
        let mut tokens = Vec::new();
        while let Some(token) = scanner.next_token().unwrap() {
            let attributes = scanner.attributes().to_vec();
            tokens.push((
                token,
                if matches!(token, Token::Start { .. }) {
                    attributes
                } else {
                    Vec::new()
                },
            ));
        }
        assert_eq!(
            tokens,
            vec![
                (Token::Decl("xml version='1.0'"), vec![]),
                (
                    Token::Start {
                        name: "r",
                        empty: false
                    },
                    vec![("a", "1"), ("b", "&amp;")]
                ),
                (Token::Text("t"), vec![]),
                (Token::Reference("lt"), vec![]),
                (Token::Text("u"), vec![]),
                (Token::CData("c"), vec![]),
                (Token::Ignored, vec![]),
                (Token::Start { name: "e", empty: true }, vec![]),
                (Token::End, vec![]),
            ]
        );
    }

    #[test]
    fn the_fuzz_corpus_and_its_prefixes_and_suffixes_agree() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_xml");
        let mut inputs = 0;
        for entry in std::fs::read_dir(&corpus).expect("the committed corpus") {
            let data = std::fs::read(entry.expect("an entry").path()).expect("a corpus file");
            // The target's first bytes choose its path, content type and depth; the rest is the body.
            let body = String::from_utf8_lossy(data.get(3..).unwrap_or_default()).into_owned();
            for (at, _) in body.char_indices() {
                agree(&body[..at]);
                agree(&body[at..]);
            }
            inputs += 1;
        }
        assert!(inputs > 0, "no inputs in {}", corpus.display());
    }

    #[test]
    fn deep_documents_agree() {
        for depth in [1, 2, 3, 5, 6, 63, 64, 65, 127, 128, 129, 130] {
            let body = format!("{}x{}", "<r>".repeat(depth), "</r>".repeat(depth));
            agree(&body);
            let body = format!("<r>{}{}</r>", "<e a='1'>".repeat(depth), "</e>".repeat(depth));
            agree(&body);
        }
    }

    /// A generated element tree, rendered with a choice of spellings.
    #[derive(Debug, Clone)]
    enum Node {
        Text(&'static str),
        Element {
            name: &'static str,
            /// Space before, key, `=` as written, value.
            attributes: Vec<(&'static str, &'static str, &'static str, &'static str)>,
            children: Vec<Node>,
            self_closed: bool,
            end_space: &'static str,
        },
    }

    const NAMES: &[&str] = &["e", "x", "a:b", "id", "é", "données", "_n", "c-d.1", "r"];
    const KEYS: &[&str] = &["a", "b", "id", "xmlns", "xmlns:a", "a:b", "é"];
    const VALUES: &[&str] = &[
        "1",
        "",
        "a b",
        "&amp;",
        "&lt;x&gt;",
        "&#233;",
        "&#x263A;",
        "a\tb",
        "l1\r\nl2",
        "c\rd",
        "q'q",
        "q\"q",
        ">",
        "ü",
        "&apos;&quot;",
        "&#10;&#13;&#9;",
    ];
    const SPACES: &[&str] = &[" ", "  ", "\n", "\t", "\r\n"];
    const EQUALS: &[&str] = &["=", " = ", "\n=\t"];
    const TEXTS: &[&str] = &[
        "t",
        " ",
        "\n  ",
        "a\r\nb",
        "c\rd",
        "&amp;",
        "&#65;",
        "&#x42;",
        "&#13;",
        "&lt;",
        "&quot;&apos;",
        "é",
        "]]>",
        ">",
        "<![CDATA[<x>&amp;]]>",
        "<![CDATA[a\r\nb]]>",
        "<![CDATA[]]>",
        "<!-- c -->",
        "<!---->",
        "<?pi x?>",
        "<?xml-stylesheet href='a'?>",
        "\u{1F600}",
        "\"",
        "\\",
        "\u{85}\u{2028}",
    ];
    const PROLOGS: &[&str] = &[
        "",
        "<?xml version=\"1.0\"?>",
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        "<?xml version=\"1.1\"?>",
        "<?xml?>",
        "<?xml version=\"2.0\"?>",
        "<?xml  version = \"1.0\" standalone='yes' ?>\r\n",
        "<!-- c -->\n",
        "<?pi?>",
        " ",
        "\u{FEFF}",
    ];
    const EPILOGS: &[&str] = &["", "\n", "<!-- c -->", "<?pi x?>\n", " \r\n"];

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop::sample::select(TEXTS).prop_map(Node::Text);
        leaf.prop_recursive(6, 48, 6, |inner| {
            (
                prop::sample::select(NAMES),
                prop::collection::vec(
                    (
                        prop::sample::select(SPACES),
                        prop::sample::select(KEYS),
                        prop::sample::select(EQUALS),
                        prop::sample::select(VALUES),
                    ),
                    0..3,
                ),
                prop::collection::vec(inner, 0..6),
                any::<bool>(),
                prop::sample::select(&["", " ", "\n"][..]),
            )
                .prop_map(|(name, mut attributes, children, self_closed, end_space)| {
                    let mut keys = Vec::new();
                    attributes.retain(|&(_, key, _, _)| {
                        let new = !keys.contains(&key);
                        keys.push(key);
                        new
                    });
                    Node::Element {
                        name,
                        attributes,
                        children,
                        self_closed,
                        end_space,
                    }
                })
        })
    }

    fn render(node: &Node, out: &mut String) {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Element {
                name,
                attributes,
                children,
                self_closed,
                end_space,
            } => {
                out.push('<');
                out.push_str(name);
                for (space, key, equals, value) in attributes {
                    let quote = if value.contains('"') { '\'' } else { '"' };
                    out.push_str(&format!("{space}{key}{equals}{quote}{value}{quote}"));
                }
                if children.is_empty() && *self_closed {
                    out.push_str(end_space);
                    out.push_str("/>");
                    return;
                }
                out.push('>');
                for child in children {
                    render(child, out);
                }
                out.push_str(&format!("</{name}{end_space}>"));
            }
        }
    }

    /// A document: a prolog, a root `<r>` (so that the paths match) and an epilog.
    fn document() -> impl Strategy<Value = String> {
        (
            prop::sample::select(PROLOGS),
            prop::collection::vec(node(), 0..8),
            prop::sample::select(EPILOGS),
        )
            .prop_map(|(prolog, children, epilog)| {
                let mut out = prolog.to_owned();
                let root = Node::Element {
                    name: "r",
                    attributes: Vec::new(),
                    children,
                    self_closed: false,
                    end_space: "",
                };
                render(&root, &mut out);
                out.push_str(epilog);
                out
            })
    }

    /// Pieces inserted into documents to break them (or not) anywhere.
    const SOUP: &[&str] = &[
        "<",
        ">",
        "/",
        "\"",
        "'",
        "=",
        " ",
        "&",
        ";",
        "]]>",
        "<!",
        "<?",
        "<e>",
        "</e>",
        "</r>",
        "<r>",
        "<x/>",
        "<e a='1' a='2'>",
        "<e a=1>",
        "&bad;",
        "&#0;",
        "&#xD800;",
        "<!DOCTYPE r>",
        "<!ELEMENT r ANY>",
        "<![CDATA[",
        "-->",
        "<?xml version=\"1.0\"?>",
        "\u{0}",
        "é",
        "\r",
    ];

    fn at_char(body: &str, index: usize) -> usize {
        let boundaries: Vec<usize> = body.char_indices().map(|(at, _)| at).chain([body.len()]).collect();
        boundaries[index % boundaries.len()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(768))]

        #[test]
        fn generated_documents_are_read_here_as_quick_xml_reads_them(body in document()) {
            let (accepted, scanned) = agree(&body);
            // The generator writes only the subset (and no duplicate attribute): whatever
            // quick-xml accepts, the scanner reads itself.
            prop_assert_eq!(scanned, accepted, "the scanner left {:?} to quick-xml", body);
        }

        #[test]
        fn broken_documents_are_answered_as_quick_xml_answers_them(
            body in document(),
            edits in prop::collection::vec((any::<usize>(), prop::option::of(prop::sample::select(SOUP)), 0..4usize), 1..4),
            cut in prop::option::of(any::<usize>()),
        ) {
            let mut body = body;
            for (index, insert, delete) in edits {
                let at = at_char(&body, index);
                let end = at + at_char(&body[at..], delete);
                body.replace_range(at..end, insert.unwrap_or(""));
            }
            if let Some(cut) = cut {
                body.truncate(at_char(&body, cut));
            }
            agree(&body);
        }
    }
}
