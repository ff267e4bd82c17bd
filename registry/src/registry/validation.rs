//! What the broker's schema validation asks of the registry: which schema ids each
//! subject's live versions use, read from a snapshot the registry swaps in after applying
//! records (so a record check takes no lock, and a registration is visible before it
//! answers), and default-context schemas compiled for checking payloads, cached by id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Registry;
use crate::context::DEFAULT_CONTEXT;
use crate::format::{Checkable, Format};
use crate::payload::PayloadSchema;
use crate::store::{SchemaContent, State};

/// Which schema ids each subject's live versions use (ids of the subject's context).
#[derive(Debug, Default)]
pub(super) struct SchemaIndex {
    subjects: HashMap<Arc<str>, Arc<HashSet<u32>>>,
}

impl Registry {
    /// Replaces the schema index with one where the `touched` subjects have the ids
    /// `state` now gives them.
    pub(super) fn publish_index(&self, state: &State, touched: &HashSet<String>) {
        let mut subjects = self.index.load().subjects.clone();
        for subject in touched {
            let ids: HashSet<u32> = state
                .live_versions(subject)
                .into_iter()
                .map(|(_, gid)| gid.id)
                .collect();
            if ids.is_empty() {
                subjects.remove(subject.as_str());
            } else {
                subjects.insert(Arc::from(subject.as_str()), Arc::new(ids));
            }
        }
        self.index.store(Arc::new(SchemaIndex { subjects }));
    }

    /// Whether a live version of `subject` uses schema id `id`: the check a record framed
    /// with `id` passes on a topic validated against `subject`. Reads a snapshot, no lock.
    pub fn subject_has_id(&self, subject: &str, id: u32) -> bool {
        self.index
            .load()
            .subjects
            .get(subject)
            .is_some_and(|ids| ids.contains(&id))
    }

    /// Whether `subject` has a live version (for the reason a refused record is given).
    pub fn subject_exists(&self, subject: &str) -> bool {
        self.index.load().subjects.contains_key(subject)
    }

    /// The default context's schema of id `id`, compiled for checking payloads (parsed on
    /// first use, then cached); `None` for an id no schema has, an error when it does not
    /// compile.
    pub fn payload_schema(&self, id: u32) -> Option<Result<Arc<PayloadSchema>, String>> {
        if let Some(known) = self.payloads.get(&id) {
            return Some(Ok(known.clone()));
        }
        let compiled = {
            let state = self.read();
            let gid = state.gid(DEFAULT_CONTEXT, id)?;
            let content = state.schemas.get(&gid)?.clone();
            self.compile_payload(&state, &content)
        };
        Some(compiled.map(|schema| {
            let schema = Arc::new(schema);
            self.payloads.insert(id, schema.clone());
            schema
        }))
    }

    fn compile_payload(
        &self,
        state: &State,
        content: &SchemaContent,
    ) -> Result<PayloadSchema, String> {
        let format = Format::of_stored(content.schema_type.as_deref());
        if format == Format::Json {
            let title = serde_json::from_str::<serde_json::Value>(&content.schema)
                .ok()
                .and_then(|v| v.get("title")?.as_str().map(str::to_string));
            return Ok(PayloadSchema::json(title));
        }
        let (_, graph) = self
            .parse_content(state, content)
            .map_err(|e| e.to_string())?;
        Ok(match &*graph {
            Checkable::Avro(graph) => PayloadSchema::avro(graph.clone()),
            Checkable::Json(_) => PayloadSchema::json(None),
            // Protobuf payloads carry message indexes after the id; they are checked to
            // the id only.
            Checkable::Protobuf(_) => PayloadSchema::opaque(),
        })
    }
}
