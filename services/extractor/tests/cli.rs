//! The binary's own command line.

#[test]
fn the_binary_answers_its_version() {
    imgfeat_testkit::version_of(env!("CARGO_BIN_EXE_imgfeat-extractor"));
}
