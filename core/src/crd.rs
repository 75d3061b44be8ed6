//! CRD types (placeholder until filled).
