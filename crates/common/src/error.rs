//! The one error type. Every failure in Nephele is an [`Error`]: a stable
//! code from the contract's table, the message the caller sees, a context
//! object, and (never shown to callers) an internal message for the log.
//! The HTTP layer turns it into the `errors` envelope in exactly one place.

use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The contract's error codes (SPEC §3). Each knows its number and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    AuthenticationRequired,
    InvalidCredentials,
    TokenExpired,
    Forbidden,
    LockedOut,
    NotSetUp,
    AlreadySetUp,
    NotFound,
    MethodNotAllowed,
    WrongState,
    OperationInProgress,
    NameTaken,
    PreconditionFailed,
    Malformed,
    /// A body over the configured limit: code 3000 like any malformed request, status 413.
    PayloadTooLarge,
    /// A body that stopped arriving: code 3000, status 408.
    RequestTimeout,
    /// A request target over the limit: code 3000, status 414.
    UriTooLong,
    /// Request headers over the limit: code 3000, status 431.
    HeadersTooLarge,
    InvalidParameter,
    UnsupportedMediaType,
    NotAcceptable,
    QuotaExceeded,
    RateLimited,
    IdempotencyKeyReused,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub const fn number(self) -> u16 {
        use ErrorCode::*;
        match self {
            AuthenticationRequired => 1000,
            InvalidCredentials => 1001,
            TokenExpired => 1002,
            Forbidden => 1003,
            LockedOut => 1004,
            NotSetUp => 1100,
            AlreadySetUp => 1101,
            NotFound => 2000,
            MethodNotAllowed => 2001,
            WrongState => 2012,
            OperationInProgress => 2013,
            NameTaken => 2020,
            PreconditionFailed => 2021,
            Malformed | PayloadTooLarge | RequestTimeout | UriTooLong | HeadersTooLarge => 3000,
            InvalidParameter => 3001,
            UnsupportedMediaType => 3002,
            NotAcceptable => 3003,
            QuotaExceeded => 3004,
            RateLimited => 3005,
            IdempotencyKeyReused => 3006,
            Internal => 5000,
            Unavailable => 5003,
        }
    }

    pub const fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            AuthenticationRequired | InvalidCredentials | TokenExpired => 401,
            Forbidden => 403,
            LockedOut | RateLimited => 429,
            NotSetUp => 420,
            AlreadySetUp | WrongState | OperationInProgress | NameTaken => 409,
            NotFound => 404,
            MethodNotAllowed => 405,
            PreconditionFailed => 412,
            Malformed | QuotaExceeded => 400,
            PayloadTooLarge => 413,
            RequestTimeout => 408,
            UriTooLong => 414,
            HeadersTooLarge => 431,
            InvalidParameter | IdempotencyKeyReused => 422,
            UnsupportedMediaType => 415,
            NotAcceptable => 406,
            Internal => 500,
            Unavailable => 503,
        }
    }
}

/// One entry of the `errors` array, exactly as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable error code from the contract's table.
    pub code: u16,
    pub message: String,
    /// Facts about the failure: the field, the current state, the running task…
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

/// One invalid or missing field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct Error {
    code: ErrorCode,
    details: Vec<ErrorDetail>,
    internal: Option<String>,
    retry_after: Option<u64>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            details: vec![ErrorDetail {
                code: code.number(),
                message: message.into(),
                context: Map::new(),
            }],
            internal: None,
            retry_after: None,
        }
    }

    /// Adds a fact to the (first) error's context.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Some(d) = self.details.first_mut() {
            d.context.insert(key.to_owned(), value.into());
        }
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Records why, for the log only.
    pub fn with_internal(mut self, internal: impl fmt::Display) -> Self {
        self.internal = Some(internal.to_string());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn details(&self) -> &[ErrorDetail] {
        &self.details
    }

    pub fn internal_message(&self) -> Option<&str> {
        self.internal.as_deref()
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn message(&self) -> &str {
        self.details
            .first()
            .map(|d| d.message.as_str())
            .unwrap_or("")
    }

    // ---- the common cases, so call sites read as the contract does ----

    /// A resource that does not exist or that the caller may not see: the two
    /// are indistinguishable by design.
    pub fn not_found(resource_type: &str, id: impl fmt::Display) -> Self {
        Error::new(
            ErrorCode::NotFound,
            format!("No such {resource_type} resource"),
        )
        .with("type", resource_type)
        .with("id", id.to_string())
    }

    /// 409 (2012): the resource's state does not allow the operation.
    pub fn wrong_state(
        resource_type: &str,
        id: impl fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Error::new(ErrorCode::WrongState, message)
            .with("type", resource_type)
            .with("id", id.to_string())
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Malformed, message)
    }

    /// 422 with one error per bad field.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let details = fields
            .into_iter()
            .map(|f| {
                let mut context = Map::new();
                context.insert("field".into(), Value::String(f.field.clone()));
                context.insert("reason".into(), Value::String(f.reason.clone()));
                ErrorDetail {
                    code: ErrorCode::InvalidParameter.number(),
                    message: format!("Invalid parameter '{}': {}", f.field, f.reason),
                    context,
                }
            })
            .collect::<Vec<_>>();
        if details.is_empty() {
            return Error::new(ErrorCode::InvalidParameter, "Invalid parameters");
        }
        Error {
            code: ErrorCode::InvalidParameter,
            details,
            internal: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::validation(vec![FieldError::new(field, reason)])
    }

    pub fn name_taken(resource_type: &str, field: &str, value: &str) -> Self {
        Error::new(
            ErrorCode::NameTaken,
            format!("The {field} '{value}' is already taken"),
        )
        .with("type", resource_type)
        .with("field", field)
        .with("value", value)
    }

    pub fn precondition_failed() -> Self {
        Error::new(
            ErrorCode::PreconditionFailed,
            "The resource has changed: If-Match does not match its current ETag",
        )
    }

    /// An unexpected failure. The caller sees only an error id, which is also
    /// on the log line that carries the real cause.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        Error::new(
            ErrorCode::Internal,
            "An internal error occurred; quote the errorId when reporting it",
        )
        .with("errorId", id)
        .with_internal(cause)
    }

    pub fn unavailable(cause: impl fmt::Display) -> Self {
        Error::new(
            ErrorCode::Unavailable,
            "The service is temporarily unavailable",
        )
        .with_internal(cause)
    }

    pub fn not_set_up() -> Self {
        Error::new(
            ErrorCode::NotSetUp,
            "Nephele has not been set up. You must set up Nephele using the API call /occm/setup/init",
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("details", &self.details)
            .field("internal", &self.internal)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code.number())?;
        if let Some(i) = &self.internal {
            write!(f, ": {i}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Collects every bad field of a request before failing, so that one 422
/// lists them all.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value if it parsed, records the field's error if not.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors.push(FieldError::new(field, reason));
                None
            }
        }
    }

    /// A required field: missing is an error, present is parsed.
    pub fn require<T, R>(
        &mut self,
        field: &str,
        value: Option<R>,
        parse: impl FnOnce(R) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            Some(v) => self.check(field, parse(v)),
            None => {
                self.errors.push(FieldError::new(field, "is required"));
                None
            }
        }
    }

    /// A field required only when `required` (a PUT), optional otherwise
    /// (a PATCH, where absent means unchanged).
    pub fn field<T, R>(
        &mut self,
        field: &str,
        value: Option<R>,
        required: bool,
        parse: impl FnOnce(R) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            Some(v) => self.check(field, parse(v)),
            None if required => {
                self.errors.push(FieldError::new(field, "is required"));
                None
            }
            None => None,
        }
    }

    pub fn push(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    /// Fails with every recorded error, if any.
    pub fn finish(self) -> Result<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_the_contract() {
        assert_eq!(ErrorCode::NotSetUp.number(), 1100);
        assert_eq!(ErrorCode::NotSetUp.status(), 420);
        assert_eq!(ErrorCode::PayloadTooLarge.number(), 3000);
        assert_eq!(ErrorCode::PayloadTooLarge.status(), 413);
        assert_eq!(ErrorCode::IdempotencyKeyReused.status(), 422);
        assert_eq!(ErrorCode::QuotaExceeded.status(), 400);
    }

    #[test]
    fn validation_lists_every_field() {
        let mut v = Validator::new();
        let a: Option<u32> = v.require("a", None::<u32>, Ok);
        let b = v.check::<u32>("b", Err("must be positive".into()));
        assert!(a.is_none() && b.is_none());
        let e = v.finish().unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(e.details().len(), 2);
        assert_eq!(e.details()[1].context["field"], "b");
    }

    #[test]
    fn internal_errors_hide_the_cause() {
        let e = Error::internal("db exploded");
        assert!(!e.message().contains("db"));
        assert!(e.details()[0].context["errorId"].is_string());
        assert_eq!(e.internal_message(), Some("db exploded"));
    }
}
