//! Property tests of name cleaning and percent-decoding: whatever a client sends, a cleaned
//! name never climbs out of the tree.

use fileserver::tree::clean_name;
use proptest::prelude::*;

proptest! {
    #[test]
    fn cleaned_names_stay_inside(name in "[a-zA-Z0-9./\\\\\\x00-\\x1f%-]{0,64}") {
        if let Ok(c) = clean_name(&name) {
            prop_assert!(!c.starts_with('/'));
            prop_assert!(!c.contains('\\'));
            prop_assert!(!c.contains('\0'));
            prop_assert!(!c.is_empty());
            for comp in c.split('/') {
                prop_assert!(comp != ".." && comp != "." && !comp.is_empty());
            }
        }
    }

    #[test]
    fn names_with_dotdot_components_are_refused(prefix in "[a-z/]{0,10}", suffix in "[a-z/]{0,10}") {
        let name = format!("{prefix}/../{suffix}");
        prop_assert!(clean_name(&name).is_err());
    }
}
