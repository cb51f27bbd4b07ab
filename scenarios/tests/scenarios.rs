//! The built-in scenarios, one test each (named as the scenario), on the lab
//! `CALICO_LAB_TOPOLOGY` names (the seed lab by default). The registry is
//! `calico_lab::scenario::SCENARIOS`; a scenario added there is a test here.

fn main() -> std::process::ExitCode {
    calico_lab_scenarios::run_as_tests(calico_lab::scenario::SCENARIOS)
}
