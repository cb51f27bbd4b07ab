//! Named scenarios live in `tests/`; see the README.
