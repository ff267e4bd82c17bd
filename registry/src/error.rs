//! The registry's errors and their Confluent error codes: the HTTP status is the first three
//! digits of the code (40401 is a 404), and [`RegistryError::error_code`] is the one place the
//! mapping lives.

use crate::store::StoreError;

/// Everything a registry operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402.
    #[error("Version {0} not found.")]
    VersionNotFound(u32),
    /// 40403, by id.
    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),
    /// 40403, by lookup under a subject.
    #[error("Schema not found")]
    SchemaNotFound,
    /// 40404. Confluent's wording exactly, missing space included: clients match on it.
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406, in Confluent's wording exactly.
    #[error("Subject '{0}' Version {1} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, u32),
    /// 40407.
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, u32),
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    NoSubjectConfig(String),
    /// 40409.
    #[error("Subject '{0}' does not have subject-level mode configured")]
    NoSubjectMode(String),
    /// 409.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        messages.join(", ")
    )]
    Incompatible {
        /// The subject registered to.
        subject: String,
        /// Confluent's verbose messages.
        messages: Vec<String>,
    },
    /// 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 42203.
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel,
    /// 42204.
    #[error("Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT.")]
    InvalidMode,
    /// 42205.
    #[error("{0}")]
    OperationNotPermitted(String),
    /// 42206.
    #[error("One or more references exist to the schema {{subject={0}, version={1}}}.")]
    ReferenceExists(String, u32),
    /// 42208.
    #[error("The specified subject is not valid.")]
    InvalidSubject,
    /// 42209.
    #[error("Schema of {size} bytes is larger than the limit of {limit} bytes")]
    SchemaTooLarge {
        /// The schema's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// 42209: a compatibility check that would need more work than one request may do.
    #[error(
        "Schema is too complex to check for compatibility: comparing it with version {version} of subject '{subject}' needs {bound}, the limit of one request"
    )]
    CompatibilityCheckTooLarge {
        /// The subject checked against.
        subject: String,
        /// The version being compared when the limit was reached.
        version: u32,
        /// The bound reached, in words (`more than 5000000 comparisons of schema nodes`).
        bound: String,
    },
    /// 50001.
    #[error("Error in the backend data store - {0}")]
    Store(#[from] StoreError),
    /// 50002.
    #[error("Operation timed out")]
    Timeout,
}

impl RegistryError {
    /// Confluent's error code for this error.
    pub fn error_code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound(_) => 40402,
            RegistryError::SchemaIdNotFound(_) | RegistryError::SchemaNotFound => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted(..) => 40406,
            RegistryError::VersionNotSoftDeleted(..) => 40407,
            RegistryError::NoSubjectConfig(_) => 40408,
            RegistryError::NoSubjectMode(_) => 40409,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel => 42203,
            RegistryError::InvalidMode => 42204,
            RegistryError::OperationNotPermitted(_) => 42205,
            RegistryError::ReferenceExists(..) => 42206,
            RegistryError::InvalidSubject => 42208,
            RegistryError::SchemaTooLarge { .. }
            | RegistryError::CompatibilityCheckTooLarge { .. } => 42209,
            RegistryError::Store(_) => 50001,
            RegistryError::Timeout => 50002,
        }
    }

    /// The HTTP status: the code's first three digits.
    pub fn http_status(&self) -> u16 {
        status_of(self.error_code())
    }
}

/// The HTTP status of a Confluent error code.
pub(crate) fn status_of(code: u32) -> u16 {
    let mut code = code;
    while code >= 1000 {
        code /= 10;
    }
    code as u16
}
