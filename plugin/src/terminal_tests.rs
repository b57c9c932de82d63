//! Unit tests of `terminal.rs`: status text cannot drive the terminal.

use super::safe;

#[test]
fn control_characters_are_shown_not_sent_to_the_terminal() {
    let forged = "ok\x1b[2J\x07\r\nNAMESPACE kube-system";
    assert_eq!(safe(forged, false), r"ok\u{1b}[2J\u{7}\u{d}\u{a}NAMESPACE kube-system");
    assert_eq!(safe(forged, true), "ok\\u{1b}[2J\\u{7}\\u{d}\nNAMESPACE kube-system");
    assert_eq!(safe("stage canary: 2 of 20 nodes", false), "stage canary: 2 of 20 nodes");
}
