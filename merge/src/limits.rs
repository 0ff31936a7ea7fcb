//! Bounds on user YAML, checked before anything builds a tree from it.
//!
//! Every Kptfile and package file cadgate reads comes from a push or a
//! remote repository, so it is hostile until checked: a billion-laughs file
//! (aliases of aliases), a file megabytes long, one with hundreds of
//! thousands of keys, or one nested thousands deep (which some YAML
//! libraries take quadratic time over) must be refused quickly and with a
//! message that says which bound it broke.
//!
//! [`check`] streams the text once through `saphyr-parser` (an event
//! parser: no tree, linear time, and it stops at its own nesting limit) and
//! counts as it goes:
//!
//! - the size in bytes, before parsing at all;
//! - the nesting depth of collections;
//! - the aliases, and the nodes the document would have once every alias is
//!   expanded (an alias counts as the size of the node it names), so a few
//!   hundred bytes that expand to billions of nodes are refused;
//! - the nodes (scalars, sequences and mappings; a mapping entry is two).
//!
//! Only after it passes is the text handed to a tree-building parser.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// The bounds a YAML text must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest text, in bytes.
    pub max_bytes: usize,
    /// The deepest nesting of collections.
    pub max_depth: usize,
    /// The most aliases (`*name`).
    pub max_aliases: usize,
    /// The most nodes, aliases expanded.
    pub max_nodes: usize,
}

impl Limits {
    /// A Kptfile: 1 MiB, 64 deep, 16 aliases, 50,000 nodes. Real Kptfiles
    /// are a few kilobytes and a few hundred nodes.
    pub const KPTFILE: Limits = Limits {
        max_bytes: 1024 * 1024,
        max_depth: 64,
        max_aliases: 16,
        max_nodes: 50_000,
    };

    /// A package's YAML file in a merge: 8 MiB, 128 deep, 1,024 aliases,
    /// 1,000,000 nodes (large CRDs stay well inside).
    pub const RESOURCES: Limits = Limits {
        max_bytes: 8 * 1024 * 1024,
        max_depth: 128,
        max_aliases: 1024,
        max_nodes: 1_000_000,
    };
}

/// Which bound a YAML text broke, or why it does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Larger than [`Limits::max_bytes`].
    #[error("it is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Nested deeper than [`Limits::max_depth`].
    #[error("it nests collections more than {max} deep")]
    TooDeep {
        /// The bound.
        max: usize,
    },
    /// More aliases than [`Limits::max_aliases`].
    #[error("it uses more than {max} aliases")]
    TooManyAliases {
        /// The bound.
        max: usize,
    },
    /// More nodes than [`Limits::max_nodes`], aliases expanded.
    #[error("it has more than {max} nodes (keys, values and items, aliases expanded)")]
    TooManyNodes {
        /// The bound.
        max: usize,
    },
    /// Not YAML.
    #[error("it is not valid YAML: {0}")]
    Syntax(String),
}

/// A collection being counted: the nodes below it so far, and its anchor.
struct Open {
    nodes: usize,
    anchor: usize,
}

/// Check `text` against `limits` in one linear pass.
pub fn check(text: &str, limits: &Limits) -> Result<(), LimitError> {
    if text.len() > limits.max_bytes {
        return Err(LimitError::TooLarge {
            size: text.len(),
            max: limits.max_bytes,
        });
    }
    // The expanded size of each anchored node, by anchor id.
    let mut anchored: HashMap<usize, usize> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut total = 0usize;
    let mut aliases = 0usize;
    let too_many = LimitError::TooManyNodes {
        max: limits.max_nodes,
    };
    // Add `n` nodes to the document and to every open collection.
    let mut add = |stack: &mut Vec<Open>, n: usize| -> Result<(), LimitError> {
        total = total.saturating_add(n);
        if total > limits.max_nodes {
            return Err(too_many.clone());
        }
        if let Some(top) = stack.last_mut() {
            top.nodes = top.nodes.saturating_add(n);
        }
        Ok(())
    };
    for event in Parser::new_from_str(text) {
        let (event, _) = event.map_err(|e| {
            let message = e.to_string();
            // The event parser's own nesting bound.
            if message.contains("recursion limit") {
                LimitError::TooDeep {
                    max: limits.max_depth,
                }
            } else {
                LimitError::Syntax(message)
            }
        })?;
        match event {
            Event::Scalar(_, _, anchor, _) => {
                add(&mut stack, 1)?;
                if anchor > 0 {
                    anchored.insert(anchor, 1);
                }
            }
            Event::Alias(id) => {
                aliases += 1;
                if aliases > limits.max_aliases {
                    return Err(LimitError::TooManyAliases {
                        max: limits.max_aliases,
                    });
                }
                let size = anchored.get(&id).copied().unwrap_or(1);
                add(&mut stack, size)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    return Err(LimitError::TooDeep {
                        max: limits.max_depth,
                    });
                }
                add(&mut stack, 1)?;
                stack.push(Open { nodes: 1, anchor });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(closed) = stack.pop() {
                    if closed.anchor > 0 {
                        anchored.insert(closed.anchor, closed.nodes);
                    }
                    // Its nodes were counted in the total as they came;
                    // the parent's count of everything below it grows.
                    if let Some(parent) = stack.last_mut() {
                        parent.nodes = parent.nodes.saturating_add(closed.nodes - 1);
                    }
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kptfile(text: &str) -> Result<(), LimitError> {
        check(text, &Limits::KPTFILE)
    }

    #[test]
    fn ordinary_yaml_passes() {
        assert_eq!(
            kptfile("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: a\nx: &a [1, 2]\ny: *a\n"),
            Ok(())
        );
    }

    #[test]
    fn hostile_yaml_is_refused_by_the_bound_it_breaks() {
        assert!(matches!(
            kptfile(&"[".repeat(200_000)),
            Err(LimitError::TooDeep { .. }) | Err(LimitError::Syntax(_))
        ));
        assert!(matches!(
            kptfile(&"{a: ".repeat(100_000)),
            Err(LimitError::TooDeep { .. }) | Err(LimitError::Syntax(_))
        ));
        let big = "a".repeat(2 * 1024 * 1024);
        assert!(matches!(kptfile(&big), Err(LimitError::TooLarge { .. })));
        let keys: String = (0..60_000).map(|i| format!("k{i}: v\n")).collect();
        assert!(matches!(
            kptfile(&keys),
            Err(LimitError::TooManyNodes { .. })
        ));
    }

    #[test]
    fn alias_expansion_is_counted() {
        // Nine levels of ten aliases each: 10^9 nodes from a few hundred bytes.
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let many = Limits {
            max_aliases: 1000,
            ..Limits::KPTFILE
        };
        assert_eq!(
            check(&text, &many),
            Err(LimitError::TooManyNodes {
                max: Limits::KPTFILE.max_nodes
            })
        );
        assert_eq!(kptfile(&text), Err(LimitError::TooManyAliases { max: 16 }));
    }
}
