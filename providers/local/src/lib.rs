//! STUB: to be implemented (helper A).
