//! YAML with positions.
//!
//! Every input error bosun reports names a file, a line and a field, so YAML is
//! read into a tree whose nodes remember where they stood. Scalars keep their
//! source text and quoting style: manifests resolve them with the YAML 1.2 core
//! schema ([`Node::to_json`]), while the compose loader resolves them the way
//! the docker CLI's YAML library does (octal `0400`, typed casts by field).
//!
//! Anchors and aliases are expanded while loading (with a bound against
//! alias bombs); `<<` merge keys are applied by [`Node::apply_merge`], a separate
//! step because compose interpolates before merging.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

mod path;

pub use path::{Path, Segment};

/// Most nodes one file may expand to through aliases before it is rejected.
const MAX_NODES: usize = 1_000_000;

/// Deepest nesting of collections accepted. Real manifests and compose files
/// stay below ten levels; the bound keeps every recursive walk (conversion,
/// merge, drop) far from the stack limit on hostile input.
pub const MAX_DEPTH: usize = 100;

/// A position in a source file, both 1-based.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: Marker) -> Self {
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

impl From<TScalarStyle> for Style {
    fn from(s: TScalarStyle) -> Self {
        match s {
            TScalarStyle::Plain => Style::Plain,
            TScalarStyle::SingleQuoted => Style::SingleQuoted,
            TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            TScalarStyle::Literal => Style::Literal,
            TScalarStyle::Folded => Style::Folded,
        }
    }
}

/// A scalar as written: its text, style and explicit tag (`!!str` → `str`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
    pub tag: Option<String>,
}

impl Scalar {
    /// A plain, untagged scalar that the core schema reads as null.
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.style == Style::Plain
            && self.tag.is_none()
            && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Key/value pairs in source order; keys are unique (checked on load).
    Map(Vec<(Node, Node)>),
}

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A YAML syntax or structure error, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct Error {
    pub pos: Pos,
    pub message: String,
}

impl Error {
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        Error {
            pos,
            message: message.into(),
        }
    }
}

/// Parse every document of a YAML stream. Empty documents are kept as null
/// scalars so document indices match what a user counts.
pub fn parse(text: &str) -> Result<Vec<Node>, Error> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| {
        let m = *e.marker();
        Error::new(Pos::from_marker(m), e.info().to_string())
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs)
}

impl Node {
    /// A plain scalar node (used by tests and by code that synthesises YAML).
    #[must_use]
    pub fn scalar(text: &str, pos: Pos) -> Self {
        Node {
            value: Value::Scalar(Scalar {
                text: text.to_string(),
                style: Style::Plain,
                tag: None,
            }),
            pos,
        }
    }

    /// The scalar text of a node, if it is a scalar.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// Whether the node is a null scalar.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.is_null())
    }

    /// The mapping pairs of a node, if it is a mapping.
    #[must_use]
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The key node and value under `key` in a mapping.
    #[must_use]
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// The node at `path` (map keys and sequence indices), if present.
    #[must_use]
    pub fn lookup(&self, path: &[Segment]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.value) {
                (Segment::Key(k), Value::Map(_)) => node.get(k)?,
                (Segment::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The best position for an error at `path`: the key of the last mapping
    /// entry on the path when there is one (so "line of field X" points at X),
    /// else the deepest node that exists.
    #[must_use]
    pub fn pos_of(&self, path: &[Segment]) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for seg in path {
            match (seg, &node.value) {
                (Segment::Key(k), Value::Map(_)) => match node.get_entry(k) {
                    Some((key, value)) => {
                        pos = key.pos;
                        node = value;
                    }
                    None => return pos,
                },
                (Segment::Index(i), Value::Seq(items)) => match items.get(*i) {
                    Some(item) => {
                        pos = item.pos;
                        node = item;
                    }
                    None => return pos,
                },
                _ => return pos,
            }
        }
        pos
    }

    /// Apply `<<` merge keys everywhere below this node: keys written in the
    /// mapping win over merged ones, and earlier merge sources win over later.
    pub fn apply_merge(&mut self) -> Result<(), Error> {
        match &mut self.value {
            Value::Scalar(_) => Ok(()),
            Value::Seq(items) => items.iter_mut().try_for_each(Node::apply_merge),
            Value::Map(pairs) => {
                for (_, v) in pairs.iter_mut() {
                    v.apply_merge()?;
                }
                let (merges, mut own): (Vec<_>, Vec<_>) = std::mem::take(pairs)
                    .into_iter()
                    .partition(|(k, _)| is_merge_key(k));
                for (key, source) in merges {
                    let sources = match source.value {
                        Value::Map(_) => vec![source],
                        Value::Seq(items) => items,
                        Value::Scalar(_) => {
                            return Err(Error::new(
                                key.pos,
                                "merge key `<<` needs a mapping or a list of mappings",
                            ));
                        }
                    };
                    for src in sources {
                        let Value::Map(src_pairs) = src.value else {
                            return Err(Error::new(
                                src.pos,
                                "merge key `<<` needs a mapping or a list of mappings",
                            ));
                        };
                        for (k, v) in src_pairs {
                            let exists = own
                                .iter()
                                .any(|(ok, _)| ok.as_str().is_some() && ok.as_str() == k.as_str());
                            if !exists {
                                own.push((k, v));
                            }
                        }
                    }
                }
                *pairs = own;
                Ok(())
            }
        }
    }

    /// Convert to JSON with the YAML 1.2 core schema (null, bool, int, float,
    /// string). Quoted and tagged-`str` scalars stay strings. Map keys are
    /// taken as their text.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar(s) => core_scalar(s),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(pairs) => serde_json::Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn is_merge_key(k: &Node) -> bool {
    matches!(&k.value, Value::Scalar(s) if s.text == "<<" && s.style == Style::Plain)
}

/// Resolve a scalar with the YAML 1.2 core schema.
#[must_use]
pub fn core_scalar(s: &Scalar) -> serde_json::Value {
    use serde_json::Value as J;
    if s.style != Style::Plain || s.tag.as_deref() == Some("str") {
        return J::String(s.text.clone());
    }
    let t = s.text.as_str();
    if s.is_null() {
        return J::Null;
    }
    match t {
        "true" | "True" | "TRUE" => return J::Bool(true),
        "false" | "False" | "FALSE" => return J::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_core_int(t) {
        return J::from(n);
    }
    if looks_like_float(t)
        && let Ok(f) = t.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return J::Number(n);
    }
    J::String(s.text.clone())
}

fn parse_core_int(t: &str) -> Option<i64> {
    if let Some(hex) = t.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    None
}

fn looks_like_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// Builds the node tree from parser events.
#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    /// Open collections: the node under construction and, for maps, a pending key.
    stack: Vec<(Node, Option<Node>, usize)>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<Error>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(Error::new(pos, message));
        }
    }

    fn count(&mut self, node: &Node, pos: Pos) -> bool {
        self.nodes += count_nodes(node);
        if self.nodes > MAX_NODES {
            self.fail(
                pos,
                format!("document expands to more than {MAX_NODES} nodes through aliases"),
            );
            return false;
        }
        if self.stack.len() + depth(node) > MAX_DEPTH {
            self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
            return false;
        }
        true
    }

    fn open(&mut self, node: Node, anchor: usize, pos: Pos) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
            return;
        }
        self.stack.push((node, None, anchor));
    }

    /// Attach a finished node to its parent (or finish the document).
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some((parent, pending_key, _)) = self.stack.last_mut() else {
            self.docs.push(node);
            return;
        };
        match &mut parent.value {
            Value::Seq(items) => items.push(node),
            Value::Map(pairs) => match pending_key.take() {
                None => {
                    // A block mapping's start event is marked after its
                    // first key; the mapping starts where that key does.
                    if pairs.is_empty() && node.pos < parent.pos {
                        parent.pos = node.pos;
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    let dup = key.as_str().is_some()
                        && !is_merge_key(&key)
                        && pairs.iter().any(|(k, _)| k.as_str() == key.as_str());
                    if dup {
                        let (pos, name) = (key.pos, key.as_str().unwrap_or_default().to_string());
                        self.fail(pos, format!("mapping key `{name}` already defined"));
                        return;
                    }
                    pairs.push((key, node));
                }
            },
            Value::Scalar(_) => {}
        }
    }
}

/// Levels of collections in a node (a scalar is 0).
fn depth(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 0,
        Value::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

fn tag_name(tag: Option<Tag>) -> Option<String> {
    tag.map(|t| {
        if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" {
            t.suffix
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text,
                        style: style.into(),
                        tag: tag_name(tag),
                    }),
                    pos,
                };
                self.nodes += 1;
                self.push(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                let node = Node {
                    value: Value::Seq(Vec::new()),
                    pos,
                };
                self.open(node, anchor, pos);
            }
            Event::MappingStart(anchor, _) => {
                let node = Node {
                    value: Value::Map(Vec::new()),
                    pos,
                };
                self.open(node, anchor, pos);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _, anchor)) = self.stack.pop() {
                    self.nodes += 1;
                    self.push(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    if self.count(&node, pos) {
                        // The alias stands where it is written, for error positions.
                        node.pos = pos;
                        self.push(node, 0);
                    }
                }
                None => self.fail(pos, "alias to an unknown anchor"),
            },
            Event::DocumentStart => self.anchors.clear(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests;
