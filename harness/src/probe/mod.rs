//! Commands run on lab members and parsers for what they print.
