//! The broker's schema validation wired to the registry of the same process: a
//! [`SchemaLookup`] over the registry's in-memory state (a snapshot swapped in after every
//! applied record, so no HTTP and no lock per record), so the broker does not depend on
//! the registry. A schema registered a moment ago is seen at once: the registry publishes
//! its snapshot before the registration answers. In a cluster every node validates
//! against its own replica of `_schemas`.

use std::sync::Arc;

use strand_broker::validation::{PayloadCheck, SchemaLookup};
use strand_registry::{PayloadSchema, Registry};

/// The registry as validation's [`SchemaLookup`].
pub struct RegistryLookup(pub Arc<Registry>);

impl std::fmt::Debug for RegistryLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryLookup")
    }
}

/// A registry schema compiled for payload checks, as the broker sees it.
#[derive(Debug)]
struct Compiled(Arc<PayloadSchema>);

impl PayloadCheck for Compiled {
    fn record_name(&self) -> Option<&str> {
        self.0.record_name()
    }

    fn check(&self, payload: &[u8]) -> Result<(), String> {
        self.0.check(payload)
    }
}

impl SchemaLookup for RegistryLookup {
    fn is_registered(&self, subject: &str, id: u32) -> bool {
        self.0.subject_has_id(subject, id)
    }

    fn subject_exists(&self, subject: &str) -> bool {
        self.0.subject_exists(subject)
    }

    fn schema(&self, id: u32) -> Option<Result<Arc<dyn PayloadCheck>, String>> {
        self.0
            .payload_schema(id)
            .map(|r| r.map(|s| Arc::new(Compiled(s)) as Arc<dyn PayloadCheck>))
    }
}
