//! Field paths such as `spec.ipam.config[0].subnet`.

use std::fmt;

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A field path, displayed as `a.b[0].c`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Segment>);

impl Path {
    /// The empty (root) path.
    #[must_use]
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// This path extended by a key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_string()));
        p
    }

    /// This path extended by an index.
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// Parse a dotted path such as `spec.ipam.config[0].subnet`. Keys cannot
    /// contain dots or brackets here; build such paths with [`Path::key`].
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut path = Path::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                let key = &rest[..open];
                if !key.is_empty() {
                    path.0.push(Segment::Key(key.to_string()));
                }
                rest = &rest[open..];
                while let Some(inner) = rest.strip_prefix('[') {
                    let Some(close) = inner.find(']') else { break };
                    if let Ok(i) = inner[..close].parse() {
                        path.0.push(Segment::Index(i));
                    }
                    rest = &inner[close + 1..];
                }
            } else {
                path.0.push(Segment::Key(rest.to_string()));
            }
        }
        path
    }

    /// Whether the path has no segments.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Convert a `serde_path_to_error` path.
    #[must_use]
    pub fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        Path(
            path.iter()
                .filter_map(|s| match s {
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Enum { variant } => Some(Segment::Key(variant.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

impl From<&str> for Path {
    fn from(text: &str) -> Self {
        Path::parse(text)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}
