//! End-to-end test harness crate; tests live in tests/tests.
