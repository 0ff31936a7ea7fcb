//! The package lifecycle over plain `git push` through the server (contract
//! §6): the scenario list of [`cadgate_integration::scenarios`] with the
//! cadgate server as the transport, in every layout, and the role matrix.

use cadgate_integration::scenarios::{self, CadgateServer, DIRECTORY, NESTED, ROOT};

#[test]
fn every_transition_at_the_repository_root() {
    scenarios::run_all(&CadgateServer::start(""), ROOT);
}

#[test]
fn every_transition_for_nested_package_paths() {
    scenarios::run_all(&CadgateServer::start(""), NESTED);
}

#[test]
fn every_transition_below_a_repository_directory() {
    scenarios::run_all(&CadgateServer::start(""), DIRECTORY);
}

#[test]
fn each_role_may_make_exactly_its_transitions() {
    scenarios::role_matrix(&CadgateServer::start(""), NESTED);
}
