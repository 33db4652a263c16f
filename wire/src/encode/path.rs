//! Where a value is in an output, for the errors that name it.

use std::fmt;

/// Where a value is in the output, as a chain of borrowed steps: written out only when an
/// error names it, so that encoding allocates nothing for it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'p> {
    /// The output structure itself.
    Root,
    /// A structure's member or a map's entry.
    Member(&'p Path<'p>, &'p str),
    /// A list's element.
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}
