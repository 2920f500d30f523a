//! koopstream
