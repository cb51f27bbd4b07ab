//! The README's "Write your own scenario" example is `own_scenario.rs`, verbatim: it
//! compiles and passes as a test, so the README cannot rot.

#[test]
fn readme_shows_the_own_scenario_test_verbatim() {
    let readme = include_str!("../../README.md");
    let example = include_str!("own_scenario.rs");
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md's example differs from scenarios/tests/own_scenario.rs"
    );
    assert!(example.lines().count() <= 30, "the example stays short");
}
