//! Confluent's *contexts*: separate namespaces of subjects and schema ids within one
//! registry. A subject is named in a context by qualifying it, `:.ctx:subject` (the context
//! `.ctx` starts with a dot and holds no colon); an unqualified subject, or one qualified
//! with the *default context* `.` (`:.:subject`), lives in the default context. Each context
//! numbers its schema ids on its own, so id 1 of `.ctx` and id 1 of `.` are two schemas.
//! `:.ctx:` alone names the context itself (its config and mode); `:*:` in a subject prefix
//! means every context.

/// The default context, where unqualified subjects live.
pub(crate) const DEFAULT_CONTEXT: &str = ".";

/// What separates a context from the subject in a qualified subject.
const CONTEXT_DELIMITER: char = ':';

/// How a qualified subject starts: the delimiter and the context's leading dot.
const CONTEXT_PREFIX: &str = ":.";

/// A subject prefix meaning every context.
pub(crate) const CONTEXT_WILDCARD: &str = ":*:";

/// A subject name split into its context and the subject within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QualifiedSubject<'a> {
    /// The context, `.` for the default one.
    pub context: &'a str,
    /// The subject within the context; empty when the name is the context itself.
    pub subject: &'a str,
}

impl<'a> QualifiedSubject<'a> {
    /// Splits a subject name as Confluent does: `:.ctx:s` is `s` in `.ctx`, `:.ctx` and
    /// `:.ctx:` the context `.ctx` itself, anything else a subject of the default context.
    pub(crate) fn parse(name: &'a str) -> QualifiedSubject<'a> {
        let Some(rest) = name.strip_prefix(CONTEXT_DELIMITER) else {
            return QualifiedSubject {
                context: DEFAULT_CONTEXT,
                subject: name,
            };
        };
        if !name.starts_with(CONTEXT_PREFIX) {
            return QualifiedSubject {
                context: DEFAULT_CONTEXT,
                subject: name,
            };
        }
        match rest.find(CONTEXT_DELIMITER) {
            Some(ix) => QualifiedSubject {
                context: &rest[..ix],
                subject: &rest[ix + 1..],
            },
            None => QualifiedSubject {
                context: rest,
                subject: "",
            },
        }
    }

    /// The name as stored and shown: unqualified in the default context, else
    /// `:<context>:<subject>`.
    pub(crate) fn to_name(self) -> String {
        qualify(self.context, self.subject)
    }
}

/// The name of `subject` in `context`.
pub(crate) fn qualify(context: &str, subject: &str) -> String {
    if context == DEFAULT_CONTEXT {
        subject.to_string()
    } else {
        format!("{CONTEXT_DELIMITER}{context}{CONTEXT_DELIMITER}{subject}")
    }
}

/// A subject name in its one stored form (`:.:s` is `s`).
pub(crate) fn normalize(name: &str) -> String {
    QualifiedSubject::parse(name).to_name()
}

/// The context of a subject name.
pub(crate) fn context_of(name: &str) -> &str {
    QualifiedSubject::parse(name).context
}

/// The subject a schema reference names, seen from the subject holding the referencing
/// schema: as Confluent, an unqualified reference means the referrer's own context.
pub(crate) fn qualify_reference(referrer: &str, referenced: &str) -> String {
    let target = QualifiedSubject::parse(referenced);
    if target.context != DEFAULT_CONTEXT {
        return target.to_name();
    }
    qualify(context_of(referrer), referenced)
}

/// Whether a subject name is in the context that a listing's prefix names: every context
/// for `:*:…`, else whatever starts with the prefix (so `:.ctx:` lists that context and a
/// plain prefix the default context's subjects).
pub(crate) fn matches_prefix(name: &str, prefix: &str) -> bool {
    match prefix.strip_prefix(CONTEXT_WILDCARD) {
        Some(rest) => QualifiedSubject::parse(name).subject.starts_with(rest),
        None => name.starts_with(prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_subjects_split_into_context_and_subject() {
        let q = QualifiedSubject::parse(":.ctx1:orders-value");
        assert_eq!((q.context, q.subject), (".ctx1", "orders-value"));
        let q = QualifiedSubject::parse("orders-value");
        assert_eq!((q.context, q.subject), (".", "orders-value"));
        let q = QualifiedSubject::parse(":.ctx1:");
        assert_eq!((q.context, q.subject), (".ctx1", ""));
        let q = QualifiedSubject::parse(":.ctx1");
        assert_eq!((q.context, q.subject), (".ctx1", ""));
        // A colon without the context's dot is part of an ordinary subject name.
        let q = QualifiedSubject::parse(":x:y");
        assert_eq!((q.context, q.subject), (".", ":x:y"));
    }

    #[test]
    fn default_context_names_normalize_to_the_bare_subject() {
        assert_eq!(normalize(":.:orders"), "orders");
        assert_eq!(normalize(":.ctx:orders"), ":.ctx:orders");
        assert_eq!(normalize(":.ctx"), ":.ctx:");
    }

    #[test]
    fn references_default_to_the_referrers_context() {
        assert_eq!(qualify_reference(":.a:s", "t"), ":.a:t");
        assert_eq!(qualify_reference(":.a:s", ":.b:t"), ":.b:t");
        assert_eq!(qualify_reference("s", "t"), "t");
    }

    #[test]
    fn the_wildcard_prefix_lists_every_context() {
        assert!(matches_prefix(":.a:orders", ":*:"));
        assert!(matches_prefix(":.a:orders", ":*:ord"));
        assert!(!matches_prefix(":.a:orders", "ord"));
        assert!(matches_prefix(":.a:orders", ":.a:"));
        assert!(!matches_prefix("orders", ":.a:"));
    }
}
